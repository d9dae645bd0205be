"""Classify images zero-shot among the labels you give, and print the most probable labels per image.

Examples:
  keras-clip classify cat.jpg street.png --labels "cat,dog,car"
  keras-clip classify photos/*.jpg --labels "cat,dog" --model RN50 --templates "a photo of a {}." --top-k 2
  keras-clip classify photo.jpg --model pets.keras     (a saved ZeroShotClassifier: its own labels)
"""

import json
import os
import sys
import zipfile

import numpy as np
import tensorflow as tf

DEFAULT_MODEL = "ViT-B/32"


def add_model_arguments(parser):
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"an OpenAI model name (see `keras-clip models`; default {DEFAULT_MODEL}), or a checkpoint file: "
        ".pt, .safetensors, .keras (also a saved ZeroShotClassifier) or .weights.h5",
    )
    parser.add_argument("--cache-dir", default=None, help="where downloaded and converted weights are cached")
    parser.add_argument(
        "--templates",
        default="imagenet",
        help='prompt templates: "imagenet" (OpenAI\'s 80, default), "simple" (OpenAI\'s 7), or one template '
        'with {} for the label, e.g. "a photo of a {}."',
    )


def add_arguments(parser):
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, GIF, BMP, WebP)")
    parser.add_argument(
        "--labels",
        action="append",
        help='comma-separated labels, e.g. "cat,dog,car" (may be repeated); optional with a saved classifier',
    )
    add_model_arguments(parser)
    parser.add_argument("--top-k", type=int, default=5, help="labels printed per image (default 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")


def parse_labels(values):
    """`--labels` values -> list of labels (comma-separated, stripped, empty ones dropped)."""
    labels = [label.strip() for value in values or [] for label in value.split(",")]
    return [label for label in labels if label]


def is_saved_classifier(path):
    """True for a `.keras` file holding a ZeroShotClassifier."""
    if not (os.path.isfile(path) and zipfile.is_zipfile(path)):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return False
    return config.get("class_name") == "ZeroShotClassifier"


def load_classifier(model, labels, templates, cache_dir=None, verbose=True):
    """A ZeroShotClassifier: a saved one (`model` a .keras file; `labels` must then be empty or equal its
    classes), or one built from `labels` and `templates` on the CLIP `model` (a name or a checkpoint)."""
    import keras

    from keras_clip.checkpoints.load import load_model
    from keras_clip.zero_shot import ZeroShotClassifier

    if is_saved_classifier(model):
        classifier = keras.saving.load_model(model)
        if labels and labels != classifier.classnames:
            raise ValueError(
                f"{model} is a classifier for {len(classifier.classnames)} saved labels; leave out --labels "
                "or pass a CLIP model to use other labels"
            )
        return classifier
    if not labels:
        raise ValueError('no labels: pass --labels "cat,dog,..."')
    return ZeroShotClassifier(load_model(model, cache_dir=cache_dir), labels, templates=templates, verbose=verbose)


def _preprocess_file(path, resolution):
    from keras_clip.image_decoding import naming_decoding_errors
    from keras_clip.preprocessing import preprocess_image

    with open(path, "rb") as file:
        data = file.read()
    with naming_decoding_errors(path):
        return preprocess_image(tf.constant(data), resolution)


def format_table(path, predictions):
    """The printed table of one image: rank, label, probability."""
    width = max([len("label")] + [len(label) for label, _ in predictions])
    lines = [path, f"  rank  {'label':<{width}}  probability"]
    lines += [f"  {rank:>4}  {label:<{width}}  {100 * p:>10.2f}%" for rank, (label, p) in enumerate(predictions, 1)]
    return "\n".join(lines)


def run(args):
    try:
        classifier = load_classifier(
            args.model, parse_labels(args.labels), args.templates, args.cache_dir, verbose=sys.stderr.isatty()
        )
    except (ValueError, TypeError) as error:
        print(f"keras-clip classify: error: {error}", file=sys.stderr)
        return 2
    failures = 0
    paths, batch = [], []

    def flush():
        if paths:
            for path, predictions in zip(paths, classifier.predict_labels(np.stack(batch), top_k=args.top_k)):
                print(format_table(path, predictions))
            paths.clear()
            batch.clear()

    for path in args.images:
        try:
            batch.append(_preprocess_file(path, classifier.image_resolution).numpy())
            paths.append(path)
        except (OSError, tf.errors.OpError) as error:
            failures += 1
            message = getattr(error, "message", None) or str(error)
            print(f"keras-clip classify: {message if path in message else f'{path}: {message}'}", file=sys.stderr)
        if len(paths) >= args.batch_size:
            flush()
    flush()
    return 1 if failures else 0
