"""CLIP (Contrastive Language-Image Pre-training) for Keras 3 / TensorFlow."""

from keras_clip.checkpoints.openai_state_dict import StateDictError, build_model
from keras_clip.configs import available_models, create_model
from keras_clip.model import CLIP
from keras_clip.version import __version__

__all__ = ["CLIP", "StateDictError", "available_models", "build_model", "create_model", "__version__"]
