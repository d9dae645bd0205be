"""CLIP (Contrastive Language-Image Pre-training) for Keras 3 / TensorFlow.

    model, preprocess = keras_clip.load("ViT-B/32")
    image_features = model.encode_image(preprocess(image_bytes))
    text_features = model.encode_text(keras_clip.tokenize(["a photo of a cat"]))

Public names load on first use, so `import keras_clip` (and `keras-clip --help`) does not import
TensorFlow. When Keras is already imported, they load at once: that registers keras_clip's classes
for `keras.saving.load_model`, which looks them up by name.
"""

import importlib
import sys

from keras_clip.version import __version__

# Public name -> the module that defines it (a subpackage's name maps to itself).
_PUBLIC = {
    "CLIP": "keras_clip.models.clip",
    "create_model": "keras_clip.models.clip",
    "available_models": "keras_clip.models.presets",
    "list_pretrained": "keras_clip.models.presets",
    "ZeroShotClassifier": "keras_clip.models.zero_shot",
    "load": "keras_clip.checkpoints.load",
    "build_model": "keras_clip.checkpoints.openai_state_dict",
    "tokenize": "keras_clip.text.tokenizer",
    "Tokenizer": "keras_clip.text.tokenizer",
    "SentencePieceTokenizer": "keras_clip.text.sentencepiece_tokenizer",
    "GemmaTokenizer": "keras_clip.text.gemma_tokenizer",
    "get_tokenizer": "keras_clip.checkpoints.tokenizers",
    "IMAGENET_TEMPLATES": "keras_clip.text.templates",
    "SIMPLE_TEMPLATES": "keras_clip.text.templates",
    "IMAGENET_CLASSNAMES": "keras_clip.text.imagenet_classnames",
    "decode_image": "keras_clip.image.decoding",
    "preprocess_image": "keras_clip.image.preprocessing",
    "ImagePreprocessor": "keras_clip.image.preprocessing",
    "OPENAI_IMAGE_MEAN": "keras_clip.image.settings",
    "OPENAI_IMAGE_STD": "keras_clip.image.settings",
    "augment_image": "keras_clip.image.augmentation",
    "TrainingAugmentation": "keras_clip.image.augmentation",
    "export_saved_model": "keras_clip.serving.export",
    "embed_images": "keras_clip.serving.embedding",
    "embed_texts": "keras_clip.serving.embedding",
    "search": "keras_clip.serving.search",
    "EmbeddingIndex": "keras_clip.serving.index",
    "build_index": "keras_clip.serving.index",
    "load_index": "keras_clip.serving.index",
    "CacheFolderError": "keras_clip.errors",
    "CheckpointError": "keras_clip.errors",
    "ChecksumError": "keras_clip.errors",
    "CorruptImageError": "keras_clip.errors",
    "ImageTooLargeError": "keras_clip.errors",
    "DownloadError": "keras_clip.errors",
    "InvalidTextError": "keras_clip.errors",
    "StateDictError": "keras_clip.errors",
    "UnsafeCheckpointError": "keras_clip.errors",
    "data": "keras_clip.data",
    "evaluation": "keras_clip.evaluation",
    "layers": "keras_clip.layers",
    "losses": "keras_clip.losses",
    "training": "keras_clip.training",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'keras_clip' has no attribute {name!r}")
    module = importlib.import_module(_PUBLIC[name])
    value = module if module.__name__ == f"keras_clip.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__


if "keras" in sys.modules:
    for _name in _PUBLIC:
        __getattr__(_name)
