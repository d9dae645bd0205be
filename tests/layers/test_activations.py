"""The MLP activations, and `dense_of_activation`: their projection's values and gradients, keeping only x."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.layers.activations import ACTIVATIONS, dense_of_activation, get_activation

# The plain formulas, differentiated by TensorFlow.
FORMULAS = {
    "quick_gelu": lambda x: x * tf.sigmoid(1.702 * x),
    "gelu": lambda x: 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
}
rng = np.random.default_rng(0)
# Ordinary values, the region around 0 where the slope changes, and large magnitudes (no overflow to NaN).
HIDDEN = np.concatenate([rng.normal(0, 3, 1000), np.linspace(-4, 4, 401), [-80, -30, -12, 12, 30, 80]])
HIDDEN = np.resize(HIDDEN, (2, 47, 24)).astype("float32")
KERNEL = rng.normal(0, 0.2, (24, 8)).astype("float32")
BIAS = rng.normal(0, 0.2, 8).astype("float32")


def plain_dense_of_activation(x, kernel, bias, name):
    return tf.matmul(FORMULAS[name](x), kernel) + bias


def output_and_gradients(function, name, graph, dtype=tf.float32):
    def run(x, kernel, bias):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel, bias])
            y = function(x, kernel, bias, name)
        weights = tf.cast(tf.cos(tf.reshape(tf.range(tf.size(y), dtype=tf.float32), tf.shape(y))), y.dtype)
        return y, tape.gradient(y, [x, kernel, bias], output_gradients=weights)

    run = tf.function(run) if graph else run
    y, gradients = run(*(tf.cast(value, dtype) for value in (HIDDEN, KERNEL, BIAS)))
    return np.asarray(y).astype("float32"), [np.asarray(g).astype("float32") for g in gradients]


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_dense_of_activation_is_the_formula(name, graph):
    output, gradients = output_and_gradients(dense_of_activation, name, graph)
    expected, expected_gradients = output_and_gradients(plain_dense_of_activation, name, graph)
    np.testing.assert_allclose(output, expected, atol=1e-5 * np.abs(expected).max())
    for gradient, theirs in zip(gradients, expected_gradients):
        assert np.isfinite(gradient).all()
        np.testing.assert_allclose(gradient, theirs, atol=1e-5 * np.abs(theirs).max())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_bfloat16(name):
    output, gradients = output_and_gradients(dense_of_activation, name, False, tf.bfloat16)
    expected, expected_gradients = output_and_gradients(plain_dense_of_activation, name, False)
    np.testing.assert_allclose(output, expected, atol=0.05 * np.abs(expected).max())
    for gradient, theirs in zip(gradients, expected_gradients):
        np.testing.assert_allclose(gradient, theirs, atol=0.05 * np.abs(theirs).max())


def forward_tensors_read_by_the_backward_pass(function, name):
    """Names of the forward pass's tensors of the hidden size that the gradient computation reads."""
    forward = set()

    @tf.function
    def backward(x, kernel, bias, output_gradient):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel, bias])
            y = function(x, kernel, bias, name)
        forward.update(op.name for op in tf.compat.v1.get_default_graph().get_operations())
        return tape.gradient(y, [x, kernel, bias], output_gradients=output_gradient)

    specs = [tf.TensorSpec(value.shape, tf.float32) for value in (HIDDEN, KERNEL, BIAS)]
    graph = backward.get_concrete_function(*specs, tf.TensorSpec(HIDDEN.shape[:-1] + (8,), tf.float32)).graph
    return {tensor.op.name for op in graph.get_operations() if op.name not in forward
            for tensor in op.inputs if tensor.op.name in forward and tensor.shape.num_elements() == HIDDEN.size}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_pass_keeps_only_the_input(name):
    # The plain formula's backward also reads the activation's sigmoid / erf / tanh and its output.
    assert forward_tensors_read_by_the_backward_pass(dense_of_activation, name) == {"x"}
    assert len(forward_tensors_read_by_the_backward_pass(plain_dense_of_activation, name)) >= 2


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_are_the_formulas(name):
    assert get_activation(name) is ACTIVATIONS[name]
    np.testing.assert_allclose(np.asarray(ACTIVATIONS[name](HIDDEN)), np.asarray(FORMULAS[name](HIDDEN)), atol=1e-5)
    with pytest.raises(ValueError, match="Unknown activation 'relu'; expected one of quick_gelu, gelu, gelu_tanh"):
        dense_of_activation(HIDDEN, KERNEL, BIAS, "relu")
