"""Tiny CLIP configurations for fast tests of training, zero-shot and export."""

import keras

import keras_clip

TINY_VIT = dict(
    embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
    context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=2,
)


def tiny_clip(seed=0, **overrides):
    """A randomly initialised tiny ViT CLIP, the same for the same seed."""
    keras.utils.set_random_seed(seed)
    return keras_clip.CLIP(**dict(TINY_VIT, **overrides))
