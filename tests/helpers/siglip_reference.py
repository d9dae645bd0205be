"""Hugging Face transformers' `SiglipModel` as the reference of SigLIP checkpoints.

Reduced widths keep each model's real head width and MLP ratio (transformers' configs of the published
checkpoints: B/16 and L/16 64-wide heads and MLP ratio 4; So400m/14 72-wide heads, 1152 wide with an
MLP of 4304). SigLIP's image and text widths are equal (the text head projects to the image width).
"""

import json

import numpy as np

from tests.helpers.transformers_reference import move_layer_norms, reference_outputs  # noqa: F401 (shared)

RESOLUTION = 32
PATCH = 8
CONTEXT_LENGTH = 16
VOCAB_SIZE = 1000
# name -> (head width, heads, MLP width)
MODELS = {
    "siglip_b16": (64, 2, 512),
    "siglip_so400m": (72, 2, round(144 * 4304 / 1152)),
}


def siglip_config(name):
    """A transformers `SiglipConfig` dict of a reduced model."""
    head_width, heads, mlp_width = MODELS[name]
    width = head_width * heads
    common = dict(hidden_size=width, num_attention_heads=heads, num_hidden_layers=2, intermediate_size=mlp_width)
    text = dict(common, vocab_size=VOCAB_SIZE, max_position_embeddings=CONTEXT_LENGTH)
    vision = dict(common, image_size=RESOLUTION, patch_size=PATCH)
    return {"model_type": "siglip", "text_config": text, "vision_config": vision}


def reference_model(config, seed=0):
    """A random transformers `SiglipModel` (LayerNorms, logit scale and bias moved off their defaults), in eval mode."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(seed)
    model = SiglipModel(SiglipConfig(**config)).eval()
    move_layer_norms(model, seed)
    with torch.no_grad():
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-7.5)
    return model


def write_transformers_folder(folder, model):
    """`model.save_pretrained(folder)` (model.safetensors, config.json) and a SiglipImageProcessor config."""
    model.save_pretrained(folder)
    processor = {"do_resize": True, "size": {"height": RESOLUTION, "width": RESOLUTION}, "resample": 3,
                 "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5] * 3,
                 "image_std": [0.5] * 3, "image_processor_type": "SiglipImageProcessor"}  # fmt: skip
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return str(folder)


def random_siglip_tokens(count, seed=0):
    """Token ids [count, CONTEXT_LENGTH]: text, the end-of-sequence id 1, then padding with it (as SigLIP pads)."""
    generator = np.random.default_rng(seed)
    tokens = np.ones((count, CONTEXT_LENGTH), np.int32)
    for row in range(count):
        length = generator.integers(1, CONTEXT_LENGTH)
        tokens[row, :length] = generator.integers(2, VOCAB_SIZE, length)
    return tokens
