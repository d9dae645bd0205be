"""`keras_clip.load(..., dtype=...)` and `build_model(..., dtype=...)`: reduced-precision models.

The models have random weights (OpenAI's reference code, seeded), stored as OpenAI stores its
releases (float16 matrices). The bound on the bfloat16 embeddings, cosine >= 0.999 to the
float32 ones, is for these random-weight models.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.checkpoints.dtypes import MODEL_DTYPES, model_dtype
from keras_clip.checkpoints.keras_files import save_model_file, save_weights_with_config
from keras_clip.checkpoints.load import load_model
from keras_clip.checkpoints.safetensors_io import read_safetensors
from keras_clip.checkpoints.stored_array import aligned_empty
from tests.helpers import checkpoint_files
from tests.helpers.model_inputs import random_images, random_tokens

MIN_COSINE = 0.999


def _cosines(reference, reduced):
    reference, reduced = np.asarray(reference), np.asarray(reduced)
    return np.sum(reference * reduced, -1) / np.linalg.norm(reference, axis=-1) / np.linalg.norm(reduced, axis=-1)


def _assert_rounded_once(reduced, full, dtype):
    """Every weight of `reduced` is the float32 model's, rounded once to `dtype`."""
    assert [w.path.split("/", 1)[1] for w in reduced.weights] == [w.path.split("/", 1)[1] for w in full.weights]
    for ours, reference in zip(reduced.weights, full.weights):
        assert ours.dtype == dtype, (ours.path, ours.dtype)
        expected = tf.cast(reference.value, dtype)
        np.testing.assert_array_equal(
            np.asarray(tf.cast(ours.value, "float32")), np.asarray(tf.cast(expected, "float32")), err_msg=ours.path
        )


@pytest.mark.parametrize("config_name", ["SMALL_VIT", "SMALL_RESNET"])
def test_bfloat16_load_from_a_torchscript_archive(tmp_path, config_name):
    config = getattr(checkpoint_files, config_name)
    _, state_dict = checkpoint_files.reference_state_dict(config, seed=30)
    path = checkpoint_files.write_torchscript(str(tmp_path / "model.pt"), config, state_dict, location="cuda:0")
    full = load_model(path, cache_dir=str(tmp_path / "float32_cache"))
    cache = str(tmp_path / "cache")
    cold = load_model(path, cache_dir=cache, dtype="bfloat16")
    warm = load_model(path, cache_dir=cache, dtype="bfloat16")
    for model in (cold, warm):
        _assert_rounded_once(model, full, "bfloat16")
        assert model.dtype_policy.name == "bfloat16"

    images, tokens = random_images(3, config["image_resolution"], seed=31), random_tokens(3, seed=31)
    for encode, inputs in (("encode_image", images), ("encode_text", tokens)):
        reduced = getattr(warm, encode)(inputs)
        assert reduced.dtype == "float32"
        cosines = _cosines(getattr(full, encode)(inputs), reduced)
        assert cosines.min() >= MIN_COSINE, (encode, cosines)
    logits, _ = warm({"images": images, "tokens": tokens})
    assert logits.dtype == "float32" and np.isfinite(np.asarray(logits)).all()

    # The cache the bfloat16 load wrote holds the checkpoint's values, not bfloat16 ones.
    (cache_file,) = (tmp_path / "cache" / "converted").glob("*.safetensors")
    stored = {np.dtype(array.dtype).name for array in read_safetensors(str(cache_file))[0].values()}
    assert stored == {"float16", "float32"}  # OpenAI's layout: float16 matrices, float32 norms and embeddings
    again = load_model(path, cache_dir=cache)
    for expected, actual in zip(full.weights, again.weights):
        assert actual.dtype == "float32"
        np.testing.assert_array_equal(actual.numpy(), expected.numpy(), err_msg=actual.path)


@pytest.fixture(scope="module")
def vit_state_dict():
    return checkpoint_files.reference_state_dict(checkpoint_files.SMALL_VIT, seed=32)[1]


def test_build_model_float16_and_mixed(vit_state_dict):
    full = keras_clip.build_model(vit_state_dict)
    _assert_rounded_once(keras_clip.build_model(vit_state_dict, dtype="float16"), full, "float16")
    mixed = keras_clip.build_model(vit_state_dict, dtype="mixed_bfloat16")
    assert mixed.text.transformer.resblocks[0].c_fc.compute_dtype == "bfloat16"
    for ours, reference in zip(mixed.weights, full.weights):
        assert ours.dtype == "float32"
        np.testing.assert_array_equal(ours.numpy(), reference.numpy())


def _aligned_copy(array):
    copy = aligned_empty(np.shape(array), np.float32)  # aligned as TensorFlow could share it
    copy[...] = array
    return copy


def test_a_callers_arrays_are_copied(vit_state_dict):
    state_dict = {key: _aligned_copy(value) for key, value in vit_state_dict.items()}
    model = keras_clip.build_model(state_dict)
    before = model.text.ln_final.gamma.numpy().copy()
    state_dict["ln_final.weight"][:] = 7.0
    np.testing.assert_array_equal(model.text.ln_final.gamma.numpy(), before)


@pytest.mark.parametrize("kind", ["keras", "weights.h5"])
def test_keras_files_load_in_another_dtype(tmp_path, vit_state_dict, kind):
    full = keras_clip.build_model(vit_state_dict)
    if kind == "keras":
        path = save_model_file(full, str(tmp_path / "model.keras"))
    else:
        path = save_weights_with_config(full, str(tmp_path / "model.weights.h5"))
    model, _ = keras_clip.load(path, dtype="bfloat16")
    _assert_rounded_once(model, full, "bfloat16")


@pytest.mark.parametrize("bad", ["int8", "bf16", "float64", 16])
def test_unsupported_dtype_is_named_before_any_download(tmp_path, vit_state_dict, bad):
    pattern = f"Unsupported dtype {bad!r} for a CLIP model; use None .* 'bfloat16'"
    with pytest.raises(ValueError, match=pattern):
        keras_clip.load("ViT-B/32", cache_dir=str(tmp_path), dtype=bad)
    assert not list(tmp_path.iterdir())  # nothing was downloaded
    with pytest.raises(ValueError, match=pattern):
        keras_clip.build_model(vit_state_dict, dtype=bad)


def test_policies_are_accepted_by_name_or_object():
    assert [model_dtype(name) for name in MODEL_DTYPES] == list(MODEL_DTYPES)
    assert model_dtype(None) is None
    assert model_dtype(keras.DTypePolicy("bfloat16")) == "bfloat16"
