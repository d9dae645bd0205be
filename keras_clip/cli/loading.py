"""Loading what `--model`, `--classnames` and `--templates` name, for every subcommand alike."""

import dataclasses
import json
import os
import sys
import zipfile

from keras_clip.cli.arguments import UsageError, parse_classnames, parse_templates


def progress_bars():
    """Progress bars only on a terminal: piped or logged output stays one line per result."""
    return sys.stderr.isatty()


def load_clip(args):
    """The CLIP model `--model` names (with `--cache-dir` and `--dtype`, and `--max-pixels` where given)."""
    from keras_clip.checkpoints.load import load_model

    model = load_model(args.model, cache_dir=args.cache_dir, dtype=args.dtype, verbose=progress_bars())
    return with_max_pixels(model, args)


def with_max_pixels(model, args):
    """The model, its preprocessing set to refuse images of more than `--max-pixels` (for subcommands that have it)."""
    if hasattr(args, "max_pixels"):
        model.preprocessing = dataclasses.replace(model.preprocessing, max_pixels=args.max_pixels)
    return model


def model_tokenizer(args, model):
    """The tokenizer of a SigLIP `--model` (from its files), or None for a CLIP (CLIP's tokenizer)."""
    if model.logit_bias is None:
        return None
    from keras_clip.checkpoints.tokenizers import get_tokenizer

    return get_tokenizer(args.model, context_length=model.context_length, verbose=progress_bars())


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


def load_classifier(args, classnames=None):
    """A ZeroShotClassifier: the saved one `--model` names, or one built on the CLIP `--model` from
    `--classnames` (or the data's own `classnames`) and `--templates`.

    Raises:
        UsageError: no class names for a CLIP model, or class names or templates for a saved classifier.
    """
    given = parse_classnames(args.classnames)
    if is_saved_classifier(args.model):
        import keras

        classifier = keras.saving.load_model(args.model)
        with_max_pixels(classifier.clip_model, args)
        if (given is not None and given != classifier.classnames) or args.templates is not None:
            raise UsageError(
                f"{args.model} is a classifier with its own {len(classifier.classnames)} classes and templates; "
                "leave out --classnames and --templates, or pass a CLIP model to use others"
            )
        return classifier
    classnames = given if given is not None else classnames
    if not classnames:
        raise UsageError('no class names: pass --classnames "cat,dog,..."')
    templates = parse_templates(args.templates)
    from keras_clip.models.zero_shot import ZeroShotClassifier

    model = load_clip(args)
    return ZeroShotClassifier(model, classnames, templates=templates, verbose=progress_bars(),
                              tokenizer=model_tokenizer(args, model))  # fmt: skip
