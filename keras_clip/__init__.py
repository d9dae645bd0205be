"""CLIP (Contrastive Language-Image Pre-training) for Keras 3 / TensorFlow."""

from keras_clip import training
from keras_clip.augmentation import TrainingAugmentation, augment_image
from keras_clip.checkpoints.openai_state_dict import StateDictError, build_model
from keras_clip.configs import available_models, create_model
from keras_clip.image_decoding import decode_image
from keras_clip.model import CLIP
from keras_clip.preprocessing import OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, ImagePreprocessor, preprocess_image
from keras_clip.tokenizer import Tokenizer, tokenize
from keras_clip.version import __version__

__all__ = [
    "CLIP",
    "ImagePreprocessor",
    "OPENAI_IMAGE_MEAN",
    "OPENAI_IMAGE_STD",
    "StateDictError",
    "Tokenizer",
    "TrainingAugmentation",
    "augment_image",
    "available_models",
    "build_model",
    "create_model",
    "decode_image",
    "preprocess_image",
    "tokenize",
    "training",
    "__version__",
]
