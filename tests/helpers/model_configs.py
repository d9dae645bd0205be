"""Architectures for tests: OpenAI's real ones, and reduced-width copies with real depth and structure."""

from keras_clip.models.presets import get_preset

# Reduced widths keep OpenAI's head rules (ViT heads = width // 64, ResNet heads = width * 32 // 64,
# text heads = width // 64, which is what build_model infers back from a state dict).
REDUCED_WIDTHS = dict(embed_dim=32, transformer_width=64, transformer_heads=1)
REDUCED_VIT_WIDTH = 64
REDUCED_RESNET_WIDTH = 8


def architecture(name):
    """A released model's constructor arguments, as a fresh dict."""
    return dict(get_preset(name).architecture)


def reduced_architecture(name):
    """`name`'s constructor arguments with small widths; depth, resolution, patching and stages unchanged."""
    config = architecture(name)
    config.update(REDUCED_WIDTHS)
    config["vision_width"] = REDUCED_RESNET_WIDTH if isinstance(config["vision_layers"], tuple) else REDUCED_VIT_WIDTH
    return config
