"""LeanLayerNormalization: Keras' LayerNormalization outputs, its gradients, and a backward pass that reads only x."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_clip.layers.layer_normalization import LeanLayerNormalization

rng = np.random.default_rng(0)
SEQUENCE = (rng.normal(size=(3, 5, 16)) * 4 + 2).astype("float32")
ROWS = SEQUENCE[:, 0]


def twins(shape, **kwargs):
    """Keras' LayerNormalization and ours, with the same (non-trivial) gamma and beta."""
    keras_norm, lean = keras.layers.LayerNormalization(**kwargs), LeanLayerNormalization(**kwargs)
    keras_norm.build(shape)
    lean.build(shape)
    keras_norm.set_weights([rng.normal(1, 0.3, w.shape).astype("float32") for w in keras_norm.weights])
    lean.set_weights(keras_norm.get_weights())
    return keras_norm, lean


def value_and_gradients(layer, x, graph):
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        weights = tf.cast(tf.reshape(tf.range(tf.size(y)), tf.shape(y)), y.dtype)
        return y, tape.gradient(y, [x] + layer.trainable_variables, output_gradients=tf.sin(weights))

    y, gradients = (tf.function(run) if graph else run)(tf.constant(x))
    return np.asarray(y), [np.asarray(g) for g in gradients]


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("x", [SEQUENCE, ROWS], ids=["sequence", "rows"])
def test_keras_outputs_and_gradients(x, graph):
    keras_norm, lean = twins(x.shape, epsilon=1e-5)
    expected, expected_gradients = value_and_gradients(keras_norm, x, graph)
    value, gradients = value_and_gradients(lean, x, graph)
    np.testing.assert_array_equal(value, expected)
    assert len(gradients) == 3
    for gradient, theirs in zip(gradients, expected_gradients):
        np.testing.assert_allclose(gradient, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


def test_mixed_precision_outputs_and_gradients():
    keras_norm, lean = twins(SEQUENCE.shape, epsilon=1e-5, dtype="mixed_bfloat16")
    x = tf.cast(SEQUENCE, tf.bfloat16)
    expected, expected_gradients = value_and_gradients(keras_norm, x, graph=False)
    value, gradients = value_and_gradients(lean, x, graph=False)
    assert value.dtype == expected.dtype == tf.bfloat16.as_numpy_dtype
    np.testing.assert_array_equal(value, expected)
    for gradient, theirs in zip(gradients, expected_gradients):
        assert gradient.dtype == theirs.dtype
        theirs = theirs.astype("float32")
        np.testing.assert_allclose(gradient.astype("float32"), theirs, atol=0.02 * np.abs(theirs).max())


@pytest.mark.parametrize("kwargs", [dict(center=False), dict(scale=False), dict(axis=1)], ids=str)
def test_other_configurations_are_keras(kwargs):
    keras_norm, lean = twins(SEQUENCE.shape, **kwargs)
    np.testing.assert_array_equal(np.asarray(lean(SEQUENCE)), np.asarray(keras_norm(SEQUENCE)))
    assert LeanLayerNormalization.from_config(lean.get_config()).get_config() == lean.get_config()


def forward_tensors_read_by_the_backward_pass(layer):
    """Names of the forward pass's tensors of the input's size that the gradient computation reads."""
    forward = set()

    @tf.function
    def backward(x, output_gradient):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        forward.update(op.name for op in tf.compat.v1.get_default_graph().get_operations())
        return tape.gradient(y, [x] + layer.trainable_variables, output_gradients=output_gradient)

    spec = tf.TensorSpec(SEQUENCE.shape, tf.float32)
    graph = backward.get_concrete_function(spec, spec).graph
    return {tensor.op.name for op in graph.get_operations() if op.name not in forward
            for tensor in op.inputs if tensor.op.name in forward and tensor.shape.num_elements() == SEQUENCE.size}


def test_backward_pass_reads_only_the_input():
    keras_norm, lean = twins(SEQUENCE.shape, epsilon=1e-5)
    assert forward_tensors_read_by_the_backward_pass(lean) <= {"x", "output_gradient"}
    assert "x" in forward_tensors_read_by_the_backward_pass(lean)
    assert len(forward_tensors_read_by_the_backward_pass(keras_norm) - {"x", "output_gradient"}) >= 1


def test_inference_is_keras_layer_normalization(monkeypatch):
    keras_norm, lean = twins(SEQUENCE.shape, epsilon=1e-5)
    monkeypatch.setattr(tf, "custom_gradient", None)  # not reached outside training
    np.testing.assert_array_equal(np.asarray(lean(SEQUENCE)), np.asarray(keras_norm(SEQUENCE)))
    np.testing.assert_array_equal(np.asarray(lean(SEQUENCE, training=False)), np.asarray(keras_norm(SEQUENCE)))
