"""Export a CLIP model (or, with --labels, a zero-shot classifier) as a SavedModel for TensorFlow Serving.

Examples:
  keras-clip export ViT-B/32 models/clip/1
  keras-clip export ViT-B/32 models/pets/1 --labels "cat,dog,hamster" --templates "a photo of a {}."
  keras-clip export clip.keras models/imagenet/1 --labels imagenet --templates simple --top-k 5
  keras-clip export pets.keras models/pets/2      (a saved ZeroShotClassifier: its own labels)
"""

import os
import time

import keras

from keras_clip.checkpoints.load import load
from keras_clip.cli.classify import is_saved_classifier
from keras_clip.export import export_saved_model
from keras_clip.imagenet_classnames import IMAGENET_CLASSNAMES
from keras_clip.templates import NAMED_TEMPLATES
from keras_clip.zero_shot import ZeroShotClassifier

NAMED_LABELS = {"imagenet": IMAGENET_CLASSNAMES}


def add_arguments(parser):
    parser.add_argument(
        "model", metavar="MODEL",
        help="released model name (`keras-clip models`), checkpoint path, or a saved ZeroShotClassifier (.keras)",
    )
    parser.add_argument("export_dir", metavar="EXPORT_DIR", help="SavedModel directory to create, e.g. models/clip/1")
    parser.add_argument(
        "--labels", nargs="+", metavar="LABELS",
        help='class names, export a zero-shot classifier: labels or comma-separated labels ("cat,dog"), '
        '"imagenet" (the 1000 ImageNet classes) or a .txt file with one class name per line',
    )
    parser.add_argument(
        "--templates", nargs="+", metavar="TEMPLATE",
        help="prompt templates with one {} for the class name, a name (" + ", ".join(NAMED_TEMPLATES)
        + ") or a .txt file with one template per line (default: imagenet)",
    )
    parser.add_argument("--top-k", type=int, default=5, help="labels returned per image by `classify` (default 5)")


def read_list(values, names, what, separator=None):
    """Command-line values as a list: a known name, a .txt file (one entry per line), or the values
    themselves (each split at `separator`, if given)."""
    if len(values) == 1 and values[0] in names:
        return list(names[values[0]])
    if len(values) == 1 and values[0].endswith(".txt"):
        if not os.path.isfile(values[0]):
            raise SystemExit(f"keras-clip export: {what} file {values[0]} does not exist")
        with open(values[0], encoding="utf-8") as file:
            entries = [line.strip() for line in file if line.strip()]
        if not entries:
            raise SystemExit(f"keras-clip export: {what} file {values[0]} is empty")
        return entries
    if separator:
        values = [part.strip() for value in values for part in value.split(separator)]
    return [value for value in values if value]


def build_exported(args):
    """The CLIP model, or the zero-shot classifier the labels and templates ask for."""
    if args.templates and not args.labels:
        raise SystemExit("keras-clip export: --templates needs --labels (templates build the classifier's classes)")
    if is_saved_classifier(args.model):
        if args.labels:
            raise SystemExit(
                f"keras-clip export: {args.model} is a classifier with its own labels; leave out --labels and "
                "--templates, or pass a CLIP model to use other labels"
            )
        return keras.saving.load_model(args.model)
    model, _ = load(args.model)
    if not args.labels:
        return model
    labels = read_list(args.labels, NAMED_LABELS, "labels", separator=",")
    templates = read_list(args.templates, NAMED_TEMPLATES, "templates") if args.templates else "imagenet"
    return ZeroShotClassifier(model, labels, templates=templates)


def run(args):
    exported = build_exported(args)
    start = time.perf_counter()
    export_dir = export_saved_model(exported, args.export_dir, top_k=args.top_k)
    if isinstance(exported, ZeroShotClassifier):
        kind = f"zero-shot classifier over {len(exported.classnames)} classes"
    else:
        kind = "CLIP model"
    print(f"Exported the {kind} to {export_dir} in {time.perf_counter() - start:.1f} s")
    print(f"Signatures: saved_model_cli show --dir {export_dir} --all")
