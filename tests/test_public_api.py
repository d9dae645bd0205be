"""The top-level names DESIGN.md promises, and what `import keras_clip` must not pull in."""

import subprocess
import sys

import keras_clip

PROMISED = [
    "CLIP", "Tokenizer", "ImagePreprocessor", "ZeroShotClassifier", "load", "build_model", "create_model",
    "available_models", "tokenize", "export_saved_model", "embed_images", "embed_texts", "data", "evaluation",
    "training", "IMAGENET_TEMPLATES", "SIMPLE_TEMPLATES", "IMAGENET_CLASSNAMES",
]


def test_promised_names_are_exported():
    assert set(PROMISED) <= set(keras_clip.__all__)
    missing = [name for name in keras_clip.__all__ if not hasattr(keras_clip, name)]
    assert not missing, missing


def test_data_modules_have_openai_sizes():
    assert len(keras_clip.IMAGENET_CLASSNAMES) == 1000
    assert len(keras_clip.IMAGENET_TEMPLATES) == 80
    assert len(keras_clip.SIMPLE_TEMPLATES) == 7


def test_import_stays_light():
    # torch is a test-only reference; tensorflow_datasets is imported when a TFDS split is evaluated.
    # (matplotlib is not checked: keras itself imports it.)
    code = (
        "import sys, keras_clip\n"
        "heavy = [m for m in ('torch', 'tensorflow_datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
