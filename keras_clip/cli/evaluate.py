"""Zero-shot top-1 / top-5 accuracy on an image folder (one subfolder per class) or a TFDS dataset.

Examples:
  keras-clip evaluate photos/                       (photos/<class name>/<images>)
  keras-clip evaluate imagenet_v2 --split test --classnames imagenet --templates simple
  keras-clip evaluate oxford_iiit_pet --data-dir ~/tensorflow_datasets --per-class accuracy \\
      --confusion-matrix pets.png --json pets.json
"""

import json
import os
import sys

from keras_clip.cli.classify import add_model_arguments, load_classifier


def add_arguments(parser):
    parser.add_argument(
        "source", help="a folder with one subfolder of images per class, or a TensorFlow Datasets name"
    )
    parser.add_argument("--split", default="test", help="TFDS split, slicing allowed (default test)")
    parser.add_argument("--data-dir", default=None, help="TFDS data folder (default: TFDS' own)")
    parser.add_argument("--download", action="store_true", help="let TFDS download and prepare a missing dataset")
    parser.add_argument(
        "--classnames",
        default=None,
        help='class names in label order: comma-separated, "imagenet" (OpenAI\'s 1000 ImageNet names) or '
        "@FILE (one per line); default: the folder names or the TFDS label names",
    )
    add_model_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--skip-errors", action="store_true", help="skip and count images that cannot be decoded")
    parser.add_argument(
        "--per-class", nargs="?", const="name", choices=["name", "accuracy", "count"], default=None,
        help="print the per-class table, sorted by name (default), accuracy (worst first) or count",
    )  # fmt: skip
    parser.add_argument("--confusion-matrix", metavar="PATH", help="save a confusion matrix plot (needs matplotlib)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")


def parse_classnames(value):
    """`--classnames` -> list of names, or None."""
    if value is None:
        return None
    if value == "imagenet":
        from keras_clip.imagenet_classnames import IMAGENET_CLASSNAMES

        return list(IMAGENET_CLASSNAMES)
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as file:
            return [line.strip() for line in file if line.strip()]
    return [name.strip() for name in value.split(",") if name.strip()]


def _source(args):
    """LabelledImages of the folder or TFDS split, with --classnames applied."""
    from keras_clip.evaluation import image_folder, tfds_split

    if os.path.isdir(args.source) or os.sep in args.source or args.source.startswith("."):
        source = image_folder(args.source)  # a path: "not a directory" rather than TFDS' name syntax
    else:
        source = tfds_split(args.source, args.split, args.data_dir, args.download)
    classnames = parse_classnames(args.classnames)
    if classnames is not None:
        if len(classnames) != len(source.classnames):
            raise ValueError(f"{len(classnames)} class names given, but {args.source} has {len(source.classnames)}")
        source.classnames = classnames
    return source


def run(args):
    from keras_clip.evaluation import CorruptImageError, evaluate_labelled_images

    verbose = sys.stderr.isatty()
    try:
        source = _source(args)
        classifier = load_classifier(args.model, source.classnames, args.templates, args.cache_dir, verbose)
        results = evaluate_labelled_images(
            classifier, source, batch_size=args.batch_size, skip_errors=args.skip_errors, verbose=verbose
        )
    except CorruptImageError as error:
        print(f"keras-clip evaluate: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError) as error:
        lines = str(error).splitlines() or [""]
        # TFDS' "not found" error lists every dataset it knows: the first line says enough.
        print(f"keras-clip evaluate: error: {lines[0] if len(lines) > 10 else chr(10).join(lines)}", file=sys.stderr)
        return 2
    print(results.summary())
    for name in results.skipped:
        print(f"skipped (unreadable): {name}")
    if args.per_class:
        print(results.per_class_table(sort_by=args.per_class))
    if args.confusion_matrix:
        results.plot_confusion_matrix(args.confusion_matrix)
        print(f"confusion matrix: {args.confusion_matrix}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results.to_dict(), file, indent=2)
    return 0
