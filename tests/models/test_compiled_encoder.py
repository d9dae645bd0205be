"""Eager encode_image / encode_text run a cached compiled graph equal to the plain Keras call."""

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.models.compiled_encoder import CompiledEncoder, used_token_positions
from tests.helpers.model_inputs import EOT, random_images, random_tokens
from tests.helpers.openai_reference import random_reference_model
from tests.helpers.tiny_models import TINY_VIT, tiny_clip

TOLERANCE = 1e-5


def test_fast_path_equals_the_plain_keras_call():
    model = tiny_clip()
    images, tokens = random_images(5, 32), random_tokens(5)
    np.testing.assert_allclose(
        np.asarray(model.encode_image(images)), np.asarray(model.visual(images)), atol=TOLERANCE, rtol=0
    )
    np.testing.assert_allclose(
        np.asarray(model.encode_text(tokens)), np.asarray(model.text(tokens)), atol=TOLERANCE, rtol=0
    )
    assert model._compiled("visual").tracing_count() == 1
    assert model._compiled("text").tracing_count() == 1


def test_varying_batch_sizes_trace_once():
    model = tiny_clip()
    for batch in (1, 2, 3, 7, 16, 33, 70):
        assert model.encode_image(random_images(batch, 32)).shape == (batch, 32)
        assert model.encode_text(random_tokens(batch)).shape == (batch, 32)
    assert model._compiled("visual").tracing_count() == 1
    assert model._compiled("text").tracing_count() == 1


def test_inputs_of_any_eager_kind():
    model = tiny_clip()
    images = random_images(2, 32)
    expected = np.asarray(model.visual(images))
    for value in (images, images.astype("float64"), tf.constant(images), images.tolist()):
        np.testing.assert_allclose(np.asarray(model.encode_image(value)), expected, atol=TOLERANCE, rtol=0)
    assert model.encode_image(np.zeros((0, 32, 32, 3), "float32")).shape == (0, 32)


def test_inside_tf_function_the_tower_is_called_directly():
    model = tiny_clip()
    images = random_images(3, 32)
    graph = tf.function(model.encode_image)
    np.testing.assert_allclose(np.asarray(graph(images)), np.asarray(model.encode_image(images)), atol=TOLERANCE)
    assert "_compiled_encoders" not in model.__dict__ or "visual" in model.__dict__["_compiled_encoders"]


def test_xla_chunks_are_padded_to_a_bounded_set_of_shapes():
    model = tiny_clip()
    spec = tf.TensorSpec((None, 77), tf.int32)
    encoder = CompiledEncoder(model.text, spec, 32, jit_compile=True, chunk_size=8)
    tokens = random_tokens(19)
    np.testing.assert_allclose(np.asarray(encoder(tokens)), np.asarray(model.text(tokens)), atol=1e-4, rtol=0)
    assert [encoder._padded_size(n) for n in (1, 3, 5, 8)] == [1, 4, 8, 8]


@pytest.mark.parametrize("shape", [(2, 16, 16, 3), (2, 32, 32)])
def test_wrong_shape_is_named_on_the_fast_path(shape):
    with pytest.raises(ValueError, match=r"\(batch, 32, 32, 3\)"):
        tiny_clip().encode_image(np.zeros(shape, "float32"))


CAPTIONS = ["a photo of a cat", "a diagram", "two dogs playing in the snow on a sunny winter afternoon", ""]


def test_token_positions_after_the_last_eot_are_cut_to_a_multiple_of_eight():
    tokens = keras_clip.tokenize(CAPTIONS)
    last_eot = int(np.max(np.argmax(tokens, axis=1)))
    assert used_token_positions(tokens, 77) == -(-(last_eot + 1) // 8) * 8 < 77
    assert used_token_positions(random_tokens(4), 77) == 77  # the last row fills the context
    assert used_token_positions(np.zeros((0, 77), "int32"), 77) == 77


def test_cut_captions_match_openai_reference():
    # The cut is exact because attention is causal: positions after EOT never reach the pooled one.
    reference, state_dict = random_reference_model(TINY_VIT)
    model = keras_clip.build_model(state_dict)
    tokens = keras_clip.tokenize(CAPTIONS)
    import torch

    with torch.no_grad():
        expected = reference.encode_text(torch.from_numpy(tokens.astype(np.int64))).numpy()
    got = np.asarray(model.encode_text(tokens))
    # Relative to the largest feature, as the model core's parity tests (float32 vs float32).
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-5
    np.testing.assert_allclose(got, np.asarray(model.text(tokens)), atol=TOLERANCE, rtol=0)


def test_ids_after_eot_do_not_change_the_embedding():
    model = tiny_clip()
    tokens = keras_clip.tokenize(CAPTIONS)
    noisy = tokens.copy()
    for row in noisy:  # ids below EOT after each row's EOT: still pooled at the same position
        end = int(np.argmax(row))
        row[end + 1:] = np.arange(1, 77 - end) % (EOT - 1) + 1
    np.testing.assert_allclose(
        np.asarray(model.encode_text(noisy)), np.asarray(model.text(tokens)), atol=TOLERANCE, rtol=0
    )


def test_xla_path_cuts_tokens_and_traces_once():
    model = tiny_clip()
    spec = tf.TensorSpec((None, 77), tf.int32)
    encoder = CompiledEncoder(model.text, spec, 32, jit_compile=True, chunk_size=8, trim_tokens=True)
    tokens = keras_clip.tokenize(CAPTIONS * 2)
    np.testing.assert_allclose(np.asarray(encoder(tokens)), np.asarray(model.text(tokens)), atol=1e-4, rtol=0)
    np.asarray(encoder(tokens[:3]))
    np.asarray(encoder(tokens[4:7]))  # same cut length and padded chunk size as the call above
    assert encoder.tracing_count() == 1  # XLA then compiles one program per (chunk size, cut length)
