"""OpenAI's nine released CLIP architectures, as data, and constructors by name."""

from keras_clip.model import CLIP

_TEXT = {"context_length": 77, "vocab_size": 49408}

# Sizes as in OpenAI's released checkpoints (the arguments `clip.model.build_model` reads back).
ARCHITECTURES = {
    "RN50": dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, transformer_width=512, transformer_heads=8, transformer_layers=12, **_TEXT),
    "RN101": dict(embed_dim=512, image_resolution=224, vision_layers=(3, 4, 23, 3), vision_width=64,
                  vision_patch_size=None, transformer_width=512, transformer_heads=8, transformer_layers=12, **_TEXT),
    "RN50x4": dict(embed_dim=640, image_resolution=288, vision_layers=(4, 6, 10, 6), vision_width=80,
                   vision_patch_size=None, transformer_width=640, transformer_heads=10, transformer_layers=12, **_TEXT),
    "RN50x16": dict(embed_dim=768, image_resolution=384, vision_layers=(6, 8, 18, 8), vision_width=96,
                    vision_patch_size=None, transformer_width=768, transformer_heads=12, transformer_layers=12,
                    **_TEXT),
    "RN50x64": dict(embed_dim=1024, image_resolution=448, vision_layers=(3, 15, 36, 10), vision_width=128,
                    vision_patch_size=None, transformer_width=1024, transformer_heads=16, transformer_layers=12,
                    **_TEXT),
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                     transformer_width=512, transformer_heads=8, transformer_layers=12, **_TEXT),
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                     transformer_width=512, transformer_heads=8, transformer_layers=12, **_TEXT),
    "ViT-L/14": dict(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024, vision_patch_size=14,
                     transformer_width=768, transformer_heads=12, transformer_layers=12, **_TEXT),
    "ViT-L/14@336px": dict(embed_dim=768, image_resolution=336, vision_layers=24, vision_width=1024,
                           vision_patch_size=14, transformer_width=768, transformer_heads=12, transformer_layers=12,
                           **_TEXT),
}


def available_models():
    """The names of OpenAI's released CLIP models, spelled as OpenAI spells them."""
    return list(ARCHITECTURES)


def architecture(name):
    """The CLIP constructor arguments of a named model (a fresh dict)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown CLIP model {name!r}; available models: {', '.join(available_models())}")
    return dict(ARCHITECTURES[name])


def create_model(name, **overrides):
    """A randomly initialised CLIP with the architecture of a released model.

    Args:
        name: one of `available_models()`, e.g. "ViT-B/32".
        **overrides: constructor arguments to change (e.g. `dtype="mixed_bfloat16"`).

    Example:
    >>> model = keras_clip.create_model("RN50")
    """
    config = architecture(name)
    config.update(overrides)
    config.setdefault("name", "clip_" + name.replace("/", "_").replace("@", "_").replace("-", "_").lower())
    return CLIP(**config)
