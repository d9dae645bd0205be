"""Activation used throughout CLIP."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
def quick_gelu(x):
    """CLIP's GELU approximation: `x * sigmoid(1.702 * x)`."""
    return x * ops.sigmoid(1.702 * x)
