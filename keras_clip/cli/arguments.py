"""Options shared by the `keras-clip` subcommands: one spelling and one syntax for each idea.

Nothing here imports TensorFlow: `keras-clip --help` answers at once.
"""

import argparse
import os

from keras_clip.image.settings import DEFAULT_MAX_PIXELS

DEFAULT_MODEL = "ViT-B/32"
DTYPES = ("float32", "bfloat16", "float16", "mixed_bfloat16", "mixed_float16")


class UsageError(Exception):
    """A wrong combination of options, found after parsing; reported like argparse's errors (status 2)."""


def positive_int(text):
    """argparse type: an int of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def max_pixels_value(text):
    """argparse type: a positive int, or "none" (no limit)."""
    if text.strip().lower() == "none":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'none', got {text!r}") from None


def add_max_pixels(parser):
    """`--max-pixels`: images claiming more pixels are refused before they are decoded."""
    parser.add_argument(
        "--max-pixels", type=max_pixels_value, default=DEFAULT_MAX_PIXELS, metavar="N",
        help="refuse images of more than N pixels (width x height, read from the file's header before decoding: "
        f"a guard against decompression bombs; default {DEFAULT_MAX_PIXELS}, PIL's limit; 'none': no limit)",
    )  # fmt: skip


def add_model(parser, default=DEFAULT_MODEL, help_extra=""):
    """`--model`, `--cache-dir` and `--dtype`: which CLIP to load and how."""
    default_help = f"default {default}" if default else "default: " + help_extra
    parser.add_argument(
        "--model",
        default=default,
        help="a released model name (`keras-clip models`) or a checkpoint: .pt, .safetensors, a model folder, "
        f".keras or .weights.h5 ({default_help})" + (help_extra if default else ""),
    )
    parser.add_argument("--cache-dir", help="where downloads and converted weights are kept "
                        "(default $KERAS_CLIP_CACHE or ~/.cache/keras_clip)")  # fmt: skip
    parser.add_argument("--dtype", choices=DTYPES, help="weights' precision (default: the checkpoint's float32)")


def add_batch_size(parser, default):
    parser.add_argument(
        "--batch-size", type=positive_int, default=default, help=f"images per model call (default {default})"
    )


def add_classnames(parser, required_help):
    parser.add_argument(
        "--classnames",
        metavar="NAMES",
        help='class names: a comma-separated list ("cat,dog,car"), @FILE (one per line), or "imagenet" '
        "(OpenAI's 1000 ImageNet names); " + required_help,
    )


def add_templates(parser):
    parser.add_argument(
        "--templates",
        metavar="TEMPLATES",
        help='prompt templates: "imagenet" (OpenAI\'s 80, default), "simple" (OpenAI\'s 7), one template with {} '
        'for the class name ("a photo of a {}."), or @FILE (one template per line)',
    )


def add_top_k(parser, what):
    parser.add_argument("--top-k", type=positive_int, default=5, help=f"{what} (default 5)")


def _read_lines(path, what):
    if not os.path.isfile(path):
        raise UsageError(f"{what} file {path} does not exist")
    with open(path, encoding="utf-8") as file:
        lines = [line.strip() for line in file if line.strip()]
    if not lines:
        raise UsageError(f"{what} file {path} is empty")
    return lines


def parse_classnames(value):
    """`--classnames` -> a list of names, or None when not given."""
    if value is None:
        return None
    if value == "imagenet":
        from keras_clip.text.imagenet_classnames import IMAGENET_CLASSNAMES

        return list(IMAGENET_CLASSNAMES)
    if value.startswith("@"):
        return _read_lines(value[1:], "class names")
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--classnames {value!r} names no class")
    return names


def parse_templates(value):
    """`--templates` -> a list of format strings with one {} each (checked); OpenAI's 80 when not given."""
    from keras_clip.text.templates import resolve_templates

    value = "imagenet" if value is None else value
    templates = _read_lines(value[1:], "templates") if value.startswith("@") else value
    try:
        return resolve_templates(templates)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None

