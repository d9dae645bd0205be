"""Hugging Face transformers' `CLIPModel` as the reference of the non-OpenAI checkpoint families.

Reduced widths keep each family's real head width, MLP ratio and activation (open_clip's
model_configs/*.json: ViT-H/14 80-wide heads, g/14 88-wide with MLP ratio 4.3637, bigG/14 104-wide with
4.9231; LAION-2B and DataComp GELU, MetaCLIP and DFN QuickGELU). A family's model is written both as a
transformers folder and as an open_clip folder (OpenAI's names + open_clip_config.json).
"""

import json

import numpy as np

from tests.helpers import checkpoint_files

TEXT_WIDTH = 64
PROJECTION = 32
RESOLUTION = 28
PATCH = 14
# family -> (vision head width, vision heads, MLP ratio, activation: transformers' name, open_clip's quick_gelu)
FAMILIES = {
    "laion2b_vit_h14": (80, 2, 4.0, "gelu"),
    "laion2b_vit_g14": (88, 2, 4.3637, "gelu"),
    "laion2b_vit_bigg14": (104, 2, 4.9231, "gelu"),
    "datacomp_vit_b32": (64, 2, 4.0, "gelu"),
    "metaclip_vit_h14": (80, 2, 4.0, "quick_gelu"),
    "dfn_vit_h14": (80, 2, 4.0, "quick_gelu"),
}
PREPROCESSING = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def family_configs(family):
    """(transformers CLIPConfig dict, open_clip model_cfg) of a family's reduced model."""
    head_width, heads, mlp_ratio, activation = FAMILIES[family]
    width = head_width * heads
    text = dict(hidden_size=TEXT_WIDTH, num_attention_heads=1, num_hidden_layers=2,
                intermediate_size=int(TEXT_WIDTH * mlp_ratio), hidden_act=activation, eos_token_id=49407)  # fmt: skip
    vision = dict(hidden_size=width, num_attention_heads=heads, num_hidden_layers=2, image_size=RESOLUTION,
                  patch_size=PATCH, intermediate_size=int(width * mlp_ratio), hidden_act=activation)  # fmt: skip
    transformers_config = {"model_type": "clip", "projection_dim": PROJECTION, "text_config": text,
                           "vision_config": vision}  # fmt: skip
    model_cfg = {
        "embed_dim": PROJECTION,
        "quick_gelu": activation == "quick_gelu",
        "vision_cfg": {"image_size": RESOLUTION, "layers": 2, "width": width, "head_width": head_width,
                       "mlp_ratio": mlp_ratio, "patch_size": PATCH},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": TEXT_WIDTH, "heads": 1, "layers": 2,
                     "mlp_ratio": mlp_ratio},
    }  # fmt: skip
    return transformers_config, model_cfg


def reference_model(transformers_config, seed=0):
    """A random transformers `CLIPModel` (LayerNorms moved off 1 and 0) in eval mode."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(**transformers_config)).eval()
    move_layer_norms(model, seed)
    return model


def move_layer_norms(model, seed):
    """Adds N(0, 0.1) noise to every LayerNorm weight and bias, so that leaving one out would show."""
    import torch

    generator = np.random.default_rng(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1 and ("norm" in name or "layrnorm" in name):  # sic: transformers' pre_layrnorm
                parameter.add_(torch.from_numpy(generator.normal(0, 0.1, parameter.shape).astype(np.float32)))


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
    """`model.save_pretrained(folder)` (model.safetensors, config.json) and a CLIPImageProcessor config."""
    model.save_pretrained(folder)
    processor = {"do_resize": True, "size": {"shortest_edge": RESOLUTION}, "resample": 3, "do_center_crop": True,
                 "crop_size": {"height": RESOLUTION, "width": RESOLUTION}, "image_mean": PREPROCESSING["mean"],
                 "image_std": PREPROCESSING["std"], "image_processor_type": "CLIPImageProcessor"}  # fmt: skip
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return str(folder)


def write_open_clip_folder(folder, model, model_cfg):
    """open_clip's layout: OpenAI-named weights (open_clip_model.safetensors) and open_clip_config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    hf_state_dict = {key: value.detach().numpy() for key, value in model.state_dict().items()}
    checkpoint_files.write_safetensors(str(folder / "open_clip_model.safetensors"), hf_to_openai(hf_state_dict))
    preprocess_cfg = dict(PREPROCESSING, interpolation="bicubic", resize_mode="shortest", size=RESOLUTION)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return str(folder)


def hf_to_openai(hf_state_dict):
    """transformers' `CLIPModel` names -> OpenAI's (the inverse of `checkpoint_files.openai_to_hf`)."""
    hf_state_dict = {key: np.asarray(value) for key, value in hf_state_dict.items() if not key.endswith("position_ids")}
    layers = {key.split(".")[3] for key in hf_state_dict if key.startswith("vision_model.encoder.layers.")}
    text_layers = {key.split(".")[3] for key in hf_state_dict if key.startswith("text_model.encoder.layers.")}
    result = {}
    for openai_name, hf_name in _openai_names(len(layers), len(text_layers)).items():
        if isinstance(hf_name, tuple):  # q, k, v joined into one input projection
            result[openai_name] = np.concatenate([hf_state_dict[part] for part in hf_name])
        elif openai_name in ("visual.proj", "text_projection"):  # Linear [out, in] -> x @ proj [in, out]
            result[openai_name] = np.ascontiguousarray(hf_state_dict[hf_name].T)
        else:
            result[openai_name] = hf_state_dict[hf_name]
    return result


def _openai_names(vision_layers, text_layers):
    names = {
        "logit_scale": "logit_scale",
        "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
        "positional_embedding": "text_model.embeddings.position_embedding.weight",
        "ln_final.weight": "text_model.final_layer_norm.weight",
        "ln_final.bias": "text_model.final_layer_norm.bias",
        "text_projection": "text_projection.weight",
        "visual.proj": "visual_projection.weight",
        "visual.class_embedding": "vision_model.embeddings.class_embedding",
        "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
        "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    }
    for part in ("weight", "bias"):
        names[f"visual.ln_pre.{part}"] = f"vision_model.pre_layrnorm.{part}"
        names[f"visual.ln_post.{part}"] = f"vision_model.post_layernorm.{part}"
    towers = (("transformer.resblocks.", "text_model.", text_layers),
              ("visual.transformer.resblocks.", "vision_model.", vision_layers))  # fmt: skip
    for openai_prefix, hf_prefix, count in towers:
        for layer in range(count):
            source, target = f"{openai_prefix}{layer}.", f"{hf_prefix}encoder.layers.{layer}."
            for part in ("weight", "bias"):
                names[f"{source}attn.in_proj_{part}"] = tuple(f"{target}self_attn.{q}_proj.{part}" for q in "qkv")
                names[f"{source}attn.out_proj.{part}"] = f"{target}self_attn.out_proj.{part}"
                names[f"{source}ln_1.{part}"] = f"{target}layer_norm1.{part}"
                names[f"{source}ln_2.{part}"] = f"{target}layer_norm2.{part}"
                names[f"{source}mlp.c_fc.{part}"] = f"{target}mlp.fc1.{part}"
                names[f"{source}mlp.c_proj.{part}"] = f"{target}mlp.fc2.{part}"
    return names


def transformers_config(architecture):
    """A transformers CLIPConfig dict with the sizes of our `CLIP` arguments (ViT towers)."""
    vision_width, text_width = architecture["vision_width"], architecture["transformer_width"]
    return {
        "projection_dim": architecture["embed_dim"],
        "vision_config": dict(hidden_size=vision_width, num_hidden_layers=architecture["vision_layers"],
                              num_attention_heads=architecture.get("vision_heads", vision_width // 64),
                              intermediate_size=architecture.get("vision_mlp_width", 4 * vision_width),
                              image_size=architecture["image_resolution"],
                              patch_size=architecture["vision_patch_size"]),
        "text_config": dict(hidden_size=text_width, num_hidden_layers=architecture["transformer_layers"],
                            num_attention_heads=architecture["transformer_heads"], intermediate_size=4 * text_width,
                            max_position_embeddings=77, vocab_size=49408),
    }  # fmt: skip
