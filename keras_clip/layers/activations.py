"""The activations of CLIP-style models' MLPs, by the names their configs use."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
def quick_gelu(x):
    """OpenAI's GELU approximation: `x * sigmoid(1.702 * x)` (OpenAI, MetaCLIP, DFN checkpoints)."""
    return x * ops.sigmoid(1.702 * x)


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
