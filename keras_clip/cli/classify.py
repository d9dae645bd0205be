"""Classify images zero-shot among the class names you give, and print the most probable per image.

Examples:
  keras-clip classify cat.jpg street.png --classnames "cat,dog,car"
  keras-clip classify photos/*.jpg --classnames @pets.txt --model RN50 --templates "a photo of a {}." --top-k 2
  keras-clip classify photo.jpg --model pets.keras     (a saved ZeroShotClassifier: its own classes)

Each image that cannot be read or decoded is reported on one line; the others are classified, and
the exit status is then 1.
"""

import sys

from keras_clip.cli import arguments
from keras_clip.cli.loading import load_classifier


def add_arguments(parser):
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, GIF, BMP, WebP)")
    arguments.add_classnames(parser, "needed unless --model is a saved classifier")
    arguments.add_templates(parser)
    arguments.add_model(parser, help_extra="; or a saved ZeroShotClassifier (.keras)")
    arguments.add_max_pixels(parser)
    arguments.add_top_k(parser, "classes printed per image")
    arguments.add_batch_size(parser, 32)


def format_table(path, predictions):
    """The printed table of one image: rank, class name, probability."""
    width = max([len("class")] + [len(name) for name, _ in predictions])
    lines = [path, f"  rank  {'class':<{width}}  probability"]
    lines += [f"  {rank:>4}  {name:<{width}}  {100 * p:>10.2f}%" for rank, (name, p) in enumerate(predictions, 1)]
    return "\n".join(lines)


def _preprocess_file(path, preprocessing):
    import tensorflow as tf

    from keras_clip.image.preprocessing import preprocess_image

    import dataclasses

    return preprocess_image(tf.io.read_file(path), **dataclasses.asdict(preprocessing), path=path).numpy()


def run(args):
    import numpy as np
    import tensorflow as tf

    from keras_clip.cli import one_line

    classifier = load_classifier(args)
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
            batch.append(_preprocess_file(path, classifier.clip_model.preprocessing))
            paths.append(path)
        except (tf.errors.OpError, OSError) as error:
            failures += 1
            message = one_line(error)
            print(f"keras-clip classify: error: {message if path in message else f'{path}: {message}'}",
                  file=sys.stderr)  # fmt: skip
        if len(paths) >= args.batch_size:
            flush()
    flush()
    return 1 if failures else 0
