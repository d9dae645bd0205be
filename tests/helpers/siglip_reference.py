"""Hugging Face transformers' `SiglipModel` as the reference of SigLIP checkpoints.

Reduced widths keep each model's real head width and MLP ratio (transformers' configs of the published
checkpoints: B/16 and L/16 64-wide heads and MLP ratio 4; So400m/14 72-wide heads, 1152 wide with an
MLP of 4304). SigLIP's image and text widths are equal (the text head projects to the image width).
"""

import json

import numpy as np

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
    generator = np.random.default_rng(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1 and "norm" in name:
                parameter.add_(torch.from_numpy(generator.normal(0, 0.1, parameter.shape).astype(np.float32)))
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-7.5)
    return model


def reference_outputs(model, images_nhwc, tokens):
    """transformers' image and text embeddings and logits_per_image, as numpy."""
    import torch

    def features(output):
        return (output if isinstance(output, torch.Tensor) else output.pooler_output).numpy()

    with torch.no_grad():
        pixels = torch.from_numpy(np.ascontiguousarray(np.transpose(images_nhwc, (0, 3, 1, 2))))
        ids = torch.from_numpy(np.asarray(tokens, np.int64))
        return {
            "image_features": features(model.get_image_features(pixel_values=pixels)),
            "text_features": features(model.get_text_features(input_ids=ids)),
            "logits_per_image": model(input_ids=ids, pixel_values=pixels).logits_per_image.numpy(),
        }


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
