"""The top-level names DESIGN.md promises, and what `import keras_clip` must not pull in."""

import json
import os
import sys

import pytest

import keras_clip
from tests.helpers.background import Job

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


def _fresh_python(code):
    """`code` run by a fresh Python, in the background from the start of the run."""
    return Job([sys.executable, "-c", code], env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def _stdout(job):
    process = job.result()
    assert process.returncode == 0, process.stderr[-2000:]
    return process.stdout


# What `import keras, keras_clip` loads and registers (one process for both tests that need it).
KERAS_FIRST = _fresh_python(
    "import json, sys, keras, keras_clip\n"
    "loaded = [m for m in ('keras_clip.serving.export', 'keras_clip.evaluation') if m in sys.modules]\n"
    "heavy = [m for m in ('torch', 'tensorflow_datasets') if m in sys.modules]\n"
    "registered = keras.saving.get_registered_object('keras_clip>ZeroShotClassifier')\n"
    "print(json.dumps({'loaded': loaded, 'heavy': heavy, 'registered': repr(registered)}))\n"
)
KERAS_CLIP_ALONE = _fresh_python(
    "import sys\nimport keras_clip\nprint('tensorflow' in sys.modules)\n"
    "keras_clip.CLIP\nprint('tensorflow' in sys.modules)\n"
)


@pytest.mark.background(KERAS_FIRST)
def test_every_public_name_loads_without_torch_or_tfds():
    # torch is a test-only reference; tensorflow_datasets is imported when a TFDS split is evaluated.
    # With keras imported first, every public name loads at import (matplotlib is not checked: keras imports it).
    keras_first = json.loads(_stdout(KERAS_FIRST).strip().splitlines()[-1])
    assert keras_first["loaded"] == ["keras_clip.serving.export", "keras_clip.evaluation"]
    assert keras_first["heavy"] == []


@pytest.mark.background(KERAS_CLIP_ALONE, KERAS_FIRST)
def test_names_load_on_first_use_and_register_saved_classes_when_keras_is_imported():
    assert _stdout(KERAS_CLIP_ALONE).split() == ["False", "True"]
    keras_first = json.loads(_stdout(KERAS_FIRST).strip().splitlines()[-1])
    assert keras_first["registered"] == "<class 'keras_clip.models.zero_shot.ZeroShotClassifier'>"
