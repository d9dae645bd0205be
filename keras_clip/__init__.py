"""CLIP (Contrastive Language-Image Pre-training) for Keras 3 / TensorFlow.

    model, preprocess = keras_clip.load("ViT-B/32")
    image_features = model.encode_image(preprocess(image_bytes))
    text_features = model.encode_text(keras_clip.tokenize(["a photo of a cat"]))
"""

from keras_clip import data, evaluation, training
from keras_clip.augmentation import TrainingAugmentation, augment_image
from keras_clip.checkpoints.errors import ChecksumError, CheckpointError, DownloadError, UnsafeCheckpointError
from keras_clip.checkpoints.load import load
from keras_clip.checkpoints.openai_state_dict import StateDictError, build_model
from keras_clip.configs import available_models, create_model
from keras_clip.embedding import embed_images, embed_texts, search
from keras_clip.export import export_saved_model
from keras_clip.image_decoding import decode_image
from keras_clip.imagenet_classnames import IMAGENET_CLASSNAMES
from keras_clip.model import CLIP
from keras_clip.preprocessing import OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, ImagePreprocessor, preprocess_image
from keras_clip.templates import IMAGENET_TEMPLATES, SIMPLE_TEMPLATES
from keras_clip.tokenizer import Tokenizer, tokenize
from keras_clip.version import __version__
from keras_clip.zero_shot import ZeroShotClassifier

__all__ = [
    "CLIP",
    "ChecksumError",
    "CheckpointError",
    "DownloadError",
    "IMAGENET_CLASSNAMES",
    "IMAGENET_TEMPLATES",
    "ImagePreprocessor",
    "OPENAI_IMAGE_MEAN",
    "OPENAI_IMAGE_STD",
    "SIMPLE_TEMPLATES",
    "StateDictError",
    "Tokenizer",
    "TrainingAugmentation",
    "UnsafeCheckpointError",
    "ZeroShotClassifier",
    "augment_image",
    "available_models",
    "build_model",
    "create_model",
    "data",
    "decode_image",
    "embed_images",
    "embed_texts",
    "evaluation",
    "export_saved_model",
    "load",
    "preprocess_image",
    "search",
    "tokenize",
    "training",
    "__version__",
]
