"""Released CLIP models, as data: one record per checkpoint, and lookups by name.

Each `Preset` says what the checkpoint is (the `CLIP` constructor arguments), where its file is
and how to verify it, how images and texts must be prepared for it, and what its publisher
reports. Everything else in the package (`create_model`, `load`, the command line) reads this
table; nothing here imports TensorFlow, so `keras-clip models` answers at once.
"""

import dataclasses
import types
from typing import Optional

from keras_clip.image.settings import Preprocessing

OPENAI_BASE_URL = "https://openaipublic.azureedge.net/clip/models"


@dataclasses.dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint's file: its name, where it is published, and its SHA256 (None: not published)."""

    file_name: str
    url: str
    sha256: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Preset:
    """One released checkpoint.

    Attributes:
        name: the name users type, spelled as its publisher spells it (e.g. "ViT-B/32").
        architecture: `keras_clip.CLIP` constructor arguments (read-only; `dict(...)` it to change it).
        checkpoint: the published file.
        preprocessing: the image preprocessing the checkpoint was trained with.
        tokenizer: "clip_bpe" (OpenAI's byte-pair encoding).
        context_length: tokens per text.
        imagenet_top1: the publisher's reported zero-shot ImageNet top-1 (%), documentation only.
    """

    name: str
    architecture: dict
    checkpoint: CheckpointFile
    preprocessing: Preprocessing
    tokenizer: str = "clip_bpe"
    context_length: int = 77
    imagenet_top1: Optional[float] = None


def _openai(name, file_name, sha256, imagenet_top1, embed_dim, image_resolution, vision_layers, vision_width,
            vision_patch_size, transformer_width, transformer_heads):  # fmt: skip
    architecture = types.MappingProxyType(dict(
        embed_dim=embed_dim,
        image_resolution=image_resolution,
        vision_layers=vision_layers,
        vision_width=vision_width,
        vision_patch_size=vision_patch_size,
        context_length=77,
        vocab_size=49408,
        transformer_width=transformer_width,
        transformer_heads=transformer_heads,
        transformer_layers=12,
    ))
    # OpenAI's clip/clip.py `_MODELS`: the SHA256 is the URL's second-to-last path part.
    checkpoint = CheckpointFile(file_name, f"{OPENAI_BASE_URL}/{sha256}/{file_name}", sha256)
    return Preset(name, architecture, checkpoint, Preprocessing(image_resolution), imagenet_top1=imagenet_top1)


# Sizes as `clip.model.build_model` reads them back from OpenAI's checkpoints; top-1 from OpenAI's paper
# and model card where they state it.
_PRESETS = (
    _openai("RN50", "RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762", 59.6,
            1024, 224, (3, 4, 6, 3), 64, None, 512, 8),
    _openai("RN101", "RN101.pt", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599", None,
            512, 224, (3, 4, 23, 3), 64, None, 512, 8),
    _openai("RN50x4", "RN50x4.pt", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd", None,
            640, 288, (4, 6, 10, 6), 80, None, 640, 10),
    _openai("RN50x16", "RN50x16.pt", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa", None,
            768, 384, (6, 8, 18, 8), 96, None, 768, 12),
    _openai("RN50x64", "RN50x64.pt", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c", None,
            1024, 448, (3, 15, 36, 10), 128, None, 1024, 16),
    _openai("ViT-B/32", "ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", 63.2,
            512, 224, 12, 768, 32, 512, 8),
    _openai("ViT-B/16", "ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", 68.6,
            512, 224, 12, 768, 16, 512, 8),
    _openai("ViT-L/14", "ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", 75.3,
            768, 224, 24, 1024, 14, 768, 12),
    _openai("ViT-L/14@336px", "ViT-L-14-336px.pt",
            "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", 76.2,
            768, 336, 24, 1024, 14, 768, 12),
)  # fmt: skip

PRESETS = {preset.name: preset for preset in _PRESETS}


def available_models():
    """The names of OpenAI's released CLIP models, spelled as OpenAI spells them (as `clip.available_models()`)."""
    return [name for name, preset in PRESETS.items() if preset.checkpoint.url.startswith(OPENAI_BASE_URL)]


def get_preset(name):
    """The `Preset` of a released model's name.

    Raises:
        ValueError: the name is not a released model's; the message lists the known names.
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown CLIP model {name!r}; available models: {', '.join(PRESETS)}")
    return PRESETS[name]


def model_name(name):
    """The Keras model name of a released model: "ViT-B/32" -> "clip_vit_b_32"."""
    return "clip_" + name.replace("/", "_").replace("@", "_").replace("-", "_").lower()
