"""The top-level names DESIGN.md promises, and what `import keras_clip` must not pull in."""

import os
import subprocess
import sys

import keras_clip

PROMISED = [
    "CLIP", "Tokenizer", "ImagePreprocessor", "ZeroShotClassifier", "load", "build_model", "create_model",
    "available_models", "tokenize", "export_saved_model", "embed_images", "embed_texts", "data", "evaluation",
    "training", "IMAGENET_TEMPLATES", "SIMPLE_TEMPLATES", "IMAGENET_CLASSNAMES", "search", "CorruptImageError",
]


def test_promised_names_are_exported():
    assert set(PROMISED) <= set(keras_clip.__all__)
    missing = [name for name in keras_clip.__all__ if not hasattr(keras_clip, name)]
    assert not missing, missing


def test_data_modules_have_openai_sizes():
    assert len(keras_clip.IMAGENET_CLASSNAMES) == 1000
    assert len(keras_clip.IMAGENET_TEMPLATES) == 80
    assert len(keras_clip.SIMPLE_TEMPLATES) == 7


def _run(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_every_public_name_loads_without_torch_or_tfds():
    # torch is a test-only reference; tensorflow_datasets is imported when a TFDS split is evaluated.
    # With keras imported first, every public name loads at import (matplotlib is not checked: keras imports it).
    code = (
        "import sys, keras, keras_clip\n"
        "assert 'keras_clip.serving.export' in sys.modules and 'keras_clip.evaluation' in sys.modules\n"
        "print([m for m in ('torch', 'tensorflow_datasets') if m in sys.modules])\n"
    )
    assert _run(code) == ["[]"]


def test_names_load_on_first_use_and_register_saved_classes_when_keras_is_imported():
    code = (
        "import sys\nimport keras_clip\nprint('tensorflow' in sys.modules)\n"
        "keras_clip.CLIP\nprint('tensorflow' in sys.modules)\n"
    )
    assert _run(code) == ["False", "True"]
    code = "import keras, keras_clip\nprint(keras.saving.get_registered_object('keras_clip>ZeroShotClassifier'))"
    assert _run(code) == ["<class", "'keras_clip.models.zero_shot.ZeroShotClassifier'>"]
