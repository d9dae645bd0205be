"""Publisher configs -> keras_clip's arguments: what they state is used, what cannot be honoured is named."""

import pytest

from keras_clip.checkpoints.publisher_configs import (
    open_clip_architecture,
    open_clip_preprocessing,
    transformers_architecture,
    transformers_preprocessing,
)
from keras_clip.errors import CheckpointError
from tests.helpers.transformers_reference import family_configs


def test_transformers_pooling_follows_its_eos_token_id():
    config, _ = family_configs("laion2b_vit_h14")
    assert transformers_architecture(config)["text_pooling"] == "eos"
    config["text_config"]["eos_token_id"] = 2  # the legacy id: transformers pools at the argmax of the ids
    assert "text_pooling" not in transformers_architecture(config)


@pytest.mark.parametrize("change, named", [
    (lambda config: config["vision_config"].update(hidden_act="relu"), "hidden_act"),
    (lambda config: config["text_config"].update(layer_norm_eps=1e-6), "layer_norm_eps"),
    (lambda config: config.update(model_type="siglip2"), "model_type 'siglip2'"),
])  # fmt: skip
def test_transformers_values_that_cannot_be_honoured_are_named(change, named):
    config, _ = family_configs("laion2b_vit_h14")
    change(config)
    with pytest.raises(CheckpointError, match=named):
        transformers_architecture(config, "folder/config.json")


@pytest.mark.parametrize("change, named", [
    (lambda config: config["vision_cfg"].update(timm_model_name="vit_base_patch16_224"), "vision_cfg.timm_model_name"),
    (lambda config: config["text_cfg"].update(hf_model_name="roberta-base"), "text_cfg.hf_model_name"),
    (lambda config: config["text_cfg"].update(pool_type="mean"), "text_cfg.pool_type"),
    (lambda config: config.update(init_logit_bias=-10), "init_logit_bias"),
    (lambda config: config["vision_cfg"].update(norm_kwargs={"eps": 1e-6}), "norm_kwargs"),
])  # fmt: skip
def test_open_clip_values_that_cannot_be_honoured_are_named(change, named):
    _, config = family_configs("laion2b_vit_h14")
    change(config)
    with pytest.raises(CheckpointError, match=named):
        open_clip_architecture(config, "folder/open_clip_config.json")


def test_open_clip_sizes_and_options():
    _, config = family_configs("laion2b_vit_g14")
    architecture = open_clip_architecture(config)
    assert (architecture["vision_heads"], architecture["vision_mlp_width"]) == (2, int(176 * 4.3637))
    assert architecture["activation"] == "gelu" and architecture["layer_norm_epsilon"] == 1e-5
    config["quick_gelu"] = True
    config["patch_dropout"] = 0.5  # training only: ignored
    assert open_clip_architecture(config)["activation"] == "quick_gelu"


def test_preprocessing_configs():
    settings = open_clip_preprocessing({"mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear",
                                        "resize_mode": "squash"}, 224)  # fmt: skip
    assert (settings.mean, settings.interpolation, settings.resize_mode) == ((0.5,) * 3, "bilinear", "squash")
    with pytest.raises(CheckpointError, match="preprocess_cfg.interpolation"):
        open_clip_preprocessing({"interpolation": "lanczos"}, 224)
    settings = transformers_preprocessing({"resample": 2, "image_mean": [0.1, 0.2, 0.3]}, 336)
    assert (settings.image_resolution, settings.interpolation, settings.mean) == (336, "bilinear", (0.1, 0.2, 0.3))
    with pytest.raises(CheckpointError, match="resample"):
        transformers_preprocessing({"resample": 1}, 224)
