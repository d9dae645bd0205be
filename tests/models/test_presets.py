"""The table of released models against its publishers' own files: OpenAI's clip.py is checked in
tests/checkpoints/test_download.py; here open_clip's model_configs/*.json and pretrained.py."""

import pytest

from keras_clip.checkpoints.publisher_configs import open_clip_architecture
from keras_clip.models import presets
from tests.helpers.open_clip_facts import model_config, pretrained_table
from tests.helpers.transformers_reference import transformers_config

OPEN_CLIP_RELEASES = [preset for preset in presets.PRESETS.values() if preset.checkpoint.hub_repo
                      and "SigLIP" not in preset.architecture_name]  # fmt: skip
SIGLIP_RELEASES = [preset for preset in presets.PRESETS.values() if "SigLIP" in preset.architecture_name]


@pytest.mark.parametrize("preset", OPEN_CLIP_RELEASES, ids=lambda preset: preset.name)
def test_release_is_open_clips(preset):
    entry = pretrained_table()[(preset.architecture_name, preset.tag)]
    assert entry["hf_hub"].rstrip("/") == preset.checkpoint.hub_repo
    config = model_config(preset.architecture_name)
    config["quick_gelu"] = entry["quick_gelu"]
    expected = open_clip_architecture(config)
    ours = dict(preset.architecture)
    for key, value in expected.items():  # ours holds only what differs from CLIP's defaults
        default = {"activation": "quick_gelu", "layer_norm_epsilon": 1e-5, "text_causal": True,
                   "text_pooling": "argmax", "text_projection_bias": False}.get(key)  # fmt: skip
        ours_value = ours.get(key, default)
        if key in ("vision_heads", "vision_mlp_width", "transformer_mlp_width") and key not in ours:
            width = ours["vision_width" if key.startswith("vision") else "transformer_width"]
            ours_value = width // 64 if key == "vision_heads" else 4 * width
        normalized = tuple(ours_value) if isinstance(ours_value, list) else ours_value
        assert normalized == (tuple(value) if isinstance(value, list) else value), (key, ours_value, value)
    settings = preset.preprocessing
    assert (settings.mean, settings.std) == (tuple(entry["mean"]), tuple(entry["std"]))
    assert (settings.interpolation, settings.resize_mode) == (entry["interpolation"], entry["resize_mode"])
    assert settings.image_resolution == config["vision_cfg"]["image_size"]


@pytest.mark.parametrize("preset", SIGLIP_RELEASES, ids=lambda preset: preset.name)
def test_siglip_release_is_open_clips(preset):
    """open_clip lists it (timm's copy of Google's weights) with these sizes and this preprocessing; the vision
    tower's sizes are in its timm model name (e.g. vit_so400m_patch14_siglip_384)."""
    entry = pretrained_table()[(preset.architecture_name, preset.tag)]
    config = model_config(preset.architecture_name)
    vision, text, ours = config["vision_cfg"], config["text_cfg"], preset.architecture
    assert (ours["embed_dim"], ours["image_resolution"]) == (config["embed_dim"], vision["image_size"])
    size = {768: "base", 1024: "large", 1152: "so400m", 1536: "giantopt"}[ours["vision_width"]]
    timm_name = f"vit_{size}_patch{ours['vision_patch_size']}_siglip_"
    assert vision["timm_model_name"].startswith(timm_name) and vision["timm_pool"] == "map", vision
    assert (ours["context_length"], ours["vocab_size"]) == (text["context_length"], text["vocab_size"])
    assert (ours["transformer_width"], ours["transformer_heads"], ours["transformer_layers"]) == (
        text["width"], text["heads"], text["layers"])  # fmt: skip
    assert ours["transformer_mlp_width"] == int(text["width"] * text.get("mlp_ratio", 4.0))
    assert ours["layer_norm_epsilon"] == text["norm_kwargs"]["eps"]
    assert ours["init_logit_bias"] == config["init_logit_bias"]
    assert not ours["text_causal"] and ours["text_pooling"] == text["pool_type"] and ours["text_projection_bias"]
    settings = preset.preprocessing
    assert (settings.mean, settings.std) == (tuple(entry["mean"]), tuple(entry["std"]))
    assert (settings.interpolation, settings.resize_mode) == (entry["interpolation"], entry["resize_mode"])
    assert preset.tokenizer == ("gemma_sentencepiece" if text["vocab_size"] == 256000 else "siglip_sentencepiece")


@pytest.mark.parametrize("name", presets.available_models())
def test_openai_release_has_open_clips_sizes(name):
    preset = presets.PRESETS[name]
    assert (preset.architecture_name, "openai") in pretrained_table()
    expected = open_clip_architecture(dict(model_config(preset.architecture_name), quick_gelu=True))
    for key in ("embed_dim", "image_resolution", "vision_width", "vision_patch_size", "transformer_width",
                "transformer_heads", "transformer_layers"):  # fmt: skip
        assert preset.architecture[key] == expected[key], key


def test_every_family_of_the_issue_is_in_the_table():
    wanted = {
        "laion400m": ["ViT-B-32", "ViT-B-16", "ViT-L-14"],
        "laion2b": ["ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-H-14", "ViT-g-14", "ViT-bigG-14"],
        "datacomp_xl": ["ViT-B-32", "ViT-B-16", "ViT-L-14"],
        "metaclip_400m": ["ViT-B-32", "ViT-B-16", "ViT-L-14"],
        "metaclip_fullcc": ["ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-H-14", "ViT-bigG-14"],
        "dfn2b": ["ViT-B-16", "ViT-L-14"],
        "dfn5b": ["ViT-H-14", "ViT-H-14-378"],
    }
    for family, architectures in wanted.items():
        for architecture in architectures:
            tags = [p.tag for p in presets.PRESETS.values() if p.architecture_name == architecture]
            assert any(tag.startswith(family) for tag in tags), (family, architecture, tags)


@pytest.mark.full_size
@pytest.mark.parametrize("name", ["ViT-H-14/laion2b_s32b_b79k", "ViT-g-14/laion2b_s34b_b88k",
                                  "ViT-bigG-14/laion2b_s39b_b160k"])  # fmt: skip
def test_full_size_parameter_count_equals_transformers(name):
    import numpy as np
    import torch
    from transformers import CLIPConfig, CLIPModel

    import keras_clip

    architecture = dict(presets.PRESETS[name].architecture)
    with torch.device("meta"):  # shapes only: no memory for the reference's weights
        reference = CLIPModel(CLIPConfig(**transformers_config(architecture)))
    expected = sum(parameter.numel() for parameter in reference.parameters())
    model = keras_clip.create_model(name, dtype="bfloat16")
    assert sum(int(np.prod(weight.shape)) for weight in model.trainable_weights) == expected
