"""Rematerialised residual blocks (`remat=True`): the plain blocks' outputs, gradients and state, recomputed."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_clip.layers import ModifiedResNet, ResidualAttentionBlock, Transformer
from keras_clip.layers import rematerialization

# Recomputing a block runs the same ops on the same values: equal within float32 rounding.
TOLERANCE = 1e-6
rng = np.random.default_rng(0)
SEQUENCE = rng.normal(size=(3, 7, 32)).astype("float32")
IMAGES = rng.normal(size=(2, 64, 64, 3)).astype("float32")


def twins(layer_class, shape, **kwargs):
    """A plain layer and a `remat=True` layer with the same weights."""
    keras.utils.set_random_seed(0)
    plain, remat = layer_class(**kwargs), layer_class(**kwargs, remat=True)
    plain.build(shape)
    remat.build(shape)
    remat.set_weights(plain.get_weights())
    return plain, remat


def training_step(layer, inputs, graph):
    """(output, gradients of a weighted sum of the output w.r.t. the input and every trainable weight)."""

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            output = layer(x, training=True)
            weights = tf.cos(tf.reshape(tf.range(tf.size(output), dtype=output.dtype), tf.shape(output)))
            loss = tf.reduce_sum(output * weights)
        return output, tape.gradient(loss, [x] + layer.trainable_variables)

    step = tf.function(step) if graph else step
    return step(tf.constant(inputs))


def assert_close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=TOLERANCE * max(1.0, np.abs(theirs).max()))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("causal", [False, True], ids=["vision", "text"])
def test_transformer_gives_the_plain_output_and_gradients(causal, graph):
    plain, remat = twins(Transformer, SEQUENCE.shape, width=32, num_layers=3, num_heads=4, causal=causal)
    expected_output, expected_gradients = training_step(plain, SEQUENCE, graph)
    output, gradients = training_step(remat, SEQUENCE, graph)
    assert_close(output, expected_output)
    assert len(gradients) == 1 + 3 * 12  # the input, and each block's 12 weights
    for gradient, expected in zip(gradients, expected_gradients):
        assert gradient is not None
        assert_close(tf.convert_to_tensor(gradient), tf.convert_to_tensor(expected))


def count_block_calls(monkeypatch, block_class):
    calls = []
    original = block_class.call

    def counted(self, *args, **kwargs):
        calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(block_class, "call", counted)
    return calls


@pytest.mark.parametrize("remat", [False, True])
def test_blocks_run_again_in_the_backward_pass_only_with_remat_in_training(monkeypatch, remat):
    stack = Transformer(width=32, num_layers=2, num_heads=4, remat=remat)
    calls = count_block_calls(monkeypatch, ResidualAttentionBlock)
    training_step(stack, SEQUENCE, graph=False)
    assert len(calls) == (4 if remat else 2)  # each block twice: forward, and recomputed for the gradients
    calls.clear()
    stack(SEQUENCE, training=False)
    stack(SEQUENCE)
    assert len(calls) == 4  # inference: no rematerialisation


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_modified_resnet_gives_the_plain_output_gradients_and_batch_statistics(graph):
    shape = IMAGES.shape
    plain, remat = twins(ModifiedResNet, shape, layers=(1, 2, 1, 1), output_dim=16, num_heads=2,
                         image_resolution=64, width=8)  # fmt: skip
    expected_output, expected_gradients = training_step(plain, IMAGES, graph)
    output, gradients = training_step(remat, IMAGES, graph)
    assert_close(output, expected_output)
    for gradient, expected in zip(gradients, expected_gradients):
        assert gradient is not None
        assert_close(gradient, expected)
    # The recomputation must not update BatchNorm's moving statistics a second time.
    moved = 0
    for ours, theirs in zip(remat.non_trainable_weights, plain.non_trainable_weights):
        assert_close(ours.value, theirs.value)
        moved += int(np.abs(np.asarray(theirs.value) - (1.0 if "variance" in theirs.path else 0.0)).max() > 1e-3)
    assert moved > len(plain.non_trainable_weights) // 2  # a second update would show


@pytest.mark.parametrize("layer_class, kwargs", [
    (Transformer, dict(width=32, num_layers=2, num_heads=4)),
    (ModifiedResNet, dict(layers=(1, 1, 1, 1), output_dim=16, num_heads=2, image_resolution=64, width=8)),
])  # fmt: skip
def test_remat_round_trips_through_the_config(layer_class, kwargs):
    layer = layer_class(**kwargs, remat=True)
    config = layer.get_config()
    assert config["remat"] is True
    assert layer_class.from_config(config).remat is True
    assert layer_class(**kwargs).get_config()["remat"] is False


def test_rematerialized_call_keeps_a_block_usable_with_keras_variables():
    block = ResidualAttentionBlock(width=32, num_heads=4)
    block.build(SEQUENCE.shape)
    with tf.GradientTape() as tape:
        output = rematerialization.rematerialized_call(block, tf.constant(SEQUENCE), training=True)
        loss = tf.reduce_sum(output)
    gradients = tape.gradient(loss, block.trainable_variables)
    assert all(gradient is not None for gradient in gradients)
    assert all(isinstance(variable, keras.Variable) for variable in block.trainable_variables)
