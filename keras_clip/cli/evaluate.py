"""Zero-shot top-1 / top-5 accuracy on an image folder (one subfolder per class) or a TFDS dataset.

Examples:
  keras-clip evaluate photos/                       (photos/<class name>/<images>)
  keras-clip evaluate imagenet_v2 --split test --classnames imagenet --templates simple
  keras-clip evaluate oxford_iiit_pet --data-dir ~/tensorflow_datasets --per-class accuracy \\
      --confusion-matrix pets.png --json pets.json
"""

import os

from keras_clip.cli import arguments
from keras_clip.cli.loading import load_classifier, progress_bars


def add_arguments(parser):
    parser.add_argument(
        "source", help="a folder with one subfolder of images per class, or a TensorFlow Datasets name"
    )
    parser.add_argument("--split", default="test", help="TFDS split, slicing allowed (default test)")
    parser.add_argument("--data-dir", default=None, help="TFDS data folder (default: TFDS' own)")
    parser.add_argument("--download", action="store_true", help="let TFDS download and prepare a missing dataset")
    arguments.add_classnames(parser, "in label order; default: the folder names or the TFDS label names")
    arguments.add_templates(parser)
    arguments.add_model(parser, help_extra="; or a saved ZeroShotClassifier (.keras)")
    arguments.add_batch_size(parser, 64)
    parser.add_argument("--skip-errors", action="store_true", help="skip and count images that cannot be decoded")
    parser.add_argument(
        "--per-class", nargs="?", const="name", choices=["name", "accuracy", "count"], default=None,
        help="print the per-class table, sorted by name (default), accuracy (worst first) or count",
    )  # fmt: skip
    parser.add_argument("--confusion-matrix", metavar="PATH", help="save a confusion matrix plot (needs matplotlib)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")


def _is_path(source):
    return os.path.exists(source) or os.sep in source or source.startswith(".")


def _source(args):
    """LabelledImages of the folder or TFDS split, with --classnames applied."""
    from keras_clip.evaluation import image_folder, tfds_split

    if _is_path(args.source):
        source = image_folder(args.source)  # a path: "does not exist" rather than TFDS' name syntax
    else:
        source = tfds_split(args.source, args.split, args.data_dir, args.download)
    classnames = arguments.parse_classnames(args.classnames)
    if classnames is not None:
        if len(classnames) != len(source.classnames):
            raise arguments.UsageError(
                f"{len(classnames)} class names given, but {args.source} has {len(source.classnames)}"
            )
        source.classnames = classnames
    return source


def run(args):
    from keras_clip.evaluation import evaluate_labelled_images
    from keras_clip.utils.atomic_files import save_json

    source = _source(args)
    classifier = load_classifier(args, source.classnames)
    results = evaluate_labelled_images(
        classifier, source, batch_size=args.batch_size, skip_errors=args.skip_errors, verbose=progress_bars()
    )
    print(results.summary())
    for name in results.skipped:
        print(f"skipped (unreadable): {name}")
    if args.per_class:
        print(results.per_class_table(sort_by=args.per_class))
    if args.confusion_matrix:
        results.plot_confusion_matrix(args.confusion_matrix)
        print(f"confusion matrix: {args.confusion_matrix}")
    if args.json:
        save_json(args.json, results.to_dict())
    return 0
