"""Tiny CLIP configurations for fast tests of training, zero-shot and export."""

import keras

import keras_clip

# One block per tower: these models test what lies around the towers (training steps, losses across replicas,
# export, zero-shot), where tracing TensorFlow functions takes most of the time, and it grows with the depth.
# The towers themselves are checked at full depth against the references (tests/models/test_clip.py).
TINY_VIT = dict(
    embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
    context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=1,
)

# SigLIP's layout at TINY_VIT's sizes (no image projection: the image width is the embedding width).
TINY_SIGLIP = dict(
    TINY_VIT, embed_dim=64, image_pooling="map", activation="gelu_tanh", layer_norm_epsilon=1e-6, text_causal=False,
    text_pooling="last", text_projection_bias=True, init_logit_scale=2.302585092994046, init_logit_bias=-10.0,
)


def tiny_clip(seed=0, **overrides):
    """A randomly initialised tiny ViT CLIP, the same for the same seed."""
    keras.utils.set_random_seed(seed)
    return keras_clip.CLIP(**dict(TINY_VIT, **overrides))
