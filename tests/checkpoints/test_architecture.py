"""The CLIP arguments of a state dict: read back from its shapes, and a config's checked against them."""

import pytest

import keras_clip
from keras_clip.checkpoints.architecture import infer_architecture, with_architecture
from tests.helpers.model_configs import reduced_architecture
from tests.helpers.openai_reference import random_reference_model


@pytest.mark.parametrize("name", ["ViT-L/14@336px", "RN50x4"])
def test_infer_architecture_reads_back_the_configuration(name):
    config = reduced_architecture(name)
    inferred = infer_architecture(random_reference_model(config)[1])
    mlp_widths = {"transformer_mlp_width": 4 * config["transformer_width"]}
    if not isinstance(config["vision_layers"], tuple):
        mlp_widths["vision_mlp_width"] = 4 * config["vision_width"]
    assert inferred == dict(config, **mlp_widths)


def test_a_config_may_not_contradict_the_weights():
    weights = {"embed_dim": 512, "vision_width": 768, "vision_patch_size": 32, "image_resolution": 224}
    assert with_architecture(weights, {"vision_heads": 12, "embed_dim": 512})["vision_heads"] == 12
    with pytest.raises(keras_clip.StateDictError, match="config says vision_width=1024 but the weights describe 768"):
        with_architecture(weights, {"vision_width": 1024})
