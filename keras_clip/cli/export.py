"""Export a CLIP model (or, with --classnames, a zero-shot classifier) as a SavedModel for TensorFlow Serving.

Examples:
  keras-clip export models/clip/1 --model ViT-B/32
  keras-clip export models/pets/1 --classnames "cat,dog,hamster" --templates "a photo of a {}."
  keras-clip export models/imagenet/1 --model clip.keras --classnames imagenet --templates simple --top-k 5
  keras-clip export models/pets/2 --model pets.keras     (a saved ZeroShotClassifier: its own classes)
"""

import time

from keras_clip.cli import arguments
from keras_clip.cli.loading import is_saved_classifier, load_classifier, load_clip, model_tokenizer


def add_arguments(parser):
    parser.add_argument("export_dir", metavar="EXPORT_DIR", help="SavedModel directory to create, e.g. models/clip/1")
    arguments.add_model(parser, help_extra="; or a saved ZeroShotClassifier (.keras)")
    arguments.add_max_pixels(parser)
    arguments.add_classnames(parser, "exports a zero-shot classifier with a `classify` signature")
    arguments.add_templates(parser)
    arguments.add_top_k(parser, "classes returned per image by `classify`")


def run(args):
    from keras_clip.serving import export

    if args.templates is not None and args.classnames is None and not is_saved_classifier(args.model):
        raise arguments.UsageError("--templates needs --classnames (templates build the classifier's classes)")
    if args.classnames is not None or is_saved_classifier(args.model):
        exported = load_classifier(args)
        kind = f"zero-shot classifier over {len(exported.classnames)} classes"
    else:
        exported = load_clip(args)
        kind = "CLIP model"
    start = time.perf_counter()
    model = exported if kind == "CLIP model" else exported.clip_model
    tokenizer = model_tokenizer(args, model) if model.logit_bias is not None else None
    export_dir = export.export_saved_model(exported, args.export_dir, top_k=args.top_k, tokenizer=tokenizer)
    print(f"Exported the {kind} to {export_dir} in {time.perf_counter() - start:.1f} s")
    print(f"Signatures: saved_model_cli show --dir {export_dir} --all")
    return 0
