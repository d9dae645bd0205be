"""The activations of CLIP-style models' MLPs, by the names their configs use, and their training form.

In training, `dense_of_activation(x, kernel, bias, name)` computes the MLP's output projection of the
activation, `activation(x) @ kernel + bias`, with a gradient that keeps only `x`. Plain autodiff keeps
`x`, the activation's sigmoid / erf / tanh and its output, three tensors of the MLP's widest size
(4 x width per position); the backward pass recomputes the other two instead (elementwise, cheap):
about 0.5 GB of ViT-B/32's activations at batch 32. The recomputation uses other ops than the forward
pass (a tanh where the forward has a sigmoid, erfc for erf), so that TensorFlow's common-subexpression
elimination cannot merge the two and keep the forward's tensors alive after all. Outputs are those of
the plain formulas; gradients agree with autodiff's to float32 rounding.
"""

import math

import keras
import tensorflow as tf
from keras import ops

QUICK_GELU_SCALE = 1.702
GELU_TANH_CUBIC = 0.044715
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@keras.saving.register_keras_serializable(package="keras_clip")
def quick_gelu(x):
    """OpenAI's GELU approximation: `x * sigmoid(1.702 * x)` (OpenAI, MetaCLIP, DFN checkpoints)."""
    return x * ops.sigmoid(QUICK_GELU_SCALE * x)


@keras.saving.register_keras_serializable(package="keras_clip")
def gelu(x):
    """The exact GELU, `x * Phi(x)` with the normal CDF (torch's `nn.GELU()`; LAION-2B, DataComp checkpoints)."""
    return ops.gelu(x, approximate=False)


@keras.saving.register_keras_serializable(package="keras_clip")
def gelu_tanh(x):
    """GELU with the tanh approximation (torch's `nn.GELU(approximate="tanh")`; SigLIP)."""
    return ops.gelu(x, approximate=True)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": gelu, "gelu_tanh": gelu_tanh}


def get_activation(name):
    """The activation function of a name in `ACTIVATIONS`.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _quick_gelu_and_derivative(x):
    s = 0.5 * (1.0 + tf.tanh((0.5 * QUICK_GELU_SCALE) * x))  # sigmoid(1.702 x)
    return x * s, s * (1.0 + QUICK_GELU_SCALE * x * (1.0 - s))


def _gelu_and_derivative(x):
    cdf = 0.5 * tf.math.erfc(x * -math.sqrt(0.5))  # Phi(x)
    pdf = tf.exp(-0.5 * tf.square(x)) * (1.0 / math.sqrt(2.0 * math.pi))
    return x * cdf, cdf + x * pdf


def _gelu_tanh_and_derivative(x):
    x_squared = tf.square(x)
    t = 2.0 * tf.sigmoid((2.0 * SQRT_2_OVER_PI) * (x + GELU_TANH_CUBIC * x * x_squared)) - 1.0  # tanh(inner)
    slope = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x_squared)
    return 0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * (1.0 - tf.square(t)) * slope


# Each activation and its derivative, recomputed in the backward pass by other ops than the forward's.
RECOMPUTED = {"quick_gelu": _quick_gelu_and_derivative, "gelu": _gelu_and_derivative,
              "gelu_tanh": _gelu_tanh_and_derivative}  # fmt: skip


def dense_of_activation(x, kernel, bias, name):
    """`activation(x) @ kernel + bias` (a Dense layer on the activation) whose gradient keeps only `x`.

    Args:
        x: [..., features], the MLP's hidden pre-activation.
        kernel: [features, units], in `x`'s dtype.
        bias: [units], in `x`'s dtype.
        name: the activation, a name in `ACTIVATIONS`.

    Example:
    >>> dense_of_activation(tf.ones((2, 5, 8)), tf.ones((8, 4)), tf.zeros(4), "quick_gelu").shape
    TensorShape([2, 5, 4])
    """
    activation, recomputed = get_activation(name), RECOMPUTED[name]

    @tf.custom_gradient
    def project(x, kernel, bias):
        outputs = ops.add(ops.matmul(activation(x), kernel), bias)  # as keras.layers.Dense computes it

        def gradient(output_gradient):
            features, units = kernel.shape
            activated, derivative = recomputed(x)
            activated = tf.reshape(activated, (-1, features))
            output_gradient = tf.reshape(output_gradient, (-1, units))
            kernel_gradient = tf.matmul(activated, output_gradient, transpose_a=True)
            bias_gradient = tf.reduce_sum(output_gradient, axis=0)
            activated_gradient = tf.reshape(tf.matmul(output_gradient, kernel, transpose_b=True), tf.shape(x))
            return activated_gradient * derivative, kernel_gradient, bias_gradient

        return outputs, gradient

    return project(x, kernel, bias)
