"""build_model's checks on OpenAI-named state dicts: every key used once, clear errors otherwise."""

import numpy as np
import pytest

import keras_clip
from tests.helpers.model_configs import reduced_architecture
from tests.helpers.openai_reference import random_reference_model


@pytest.fixture(scope="module")
def resnet_state_dict():
    return random_reference_model(reduced_architecture("RN50"))[1]


def test_float16_arrays_are_upcast(resnet_state_dict):
    assert resnet_state_dict["visual.conv1.weight"].dtype == np.float16
    model = keras_clip.build_model(resnet_state_dict)
    kernel = model.visual.conv1.kernel
    assert kernel.dtype == "float32"
    np.testing.assert_array_equal(
        kernel.numpy(), np.transpose(resnet_state_dict["visual.conv1.weight"], (2, 3, 1, 0)).astype(np.float32)
    )


def test_missing_key_is_named(resnet_state_dict):
    state_dict = dict(resnet_state_dict)
    del state_dict["visual.layer3.2.bn2.running_var"]
    with pytest.raises(keras_clip.StateDictError, match=r"missing keys \['visual.layer3.2.bn2.running_var'\]"):
        keras_clip.build_model(state_dict)


def test_unexpected_key_is_named(resnet_state_dict):
    state_dict = dict(resnet_state_dict, **{"visual.extra_head.weight": np.zeros(3, np.float32)})
    with pytest.raises(keras_clip.StateDictError, match=r"unexpected keys \['visual.extra_head.weight'\]"):
        keras_clip.build_model(state_dict)


def test_wrong_shape_names_key_and_both_shapes(resnet_state_dict):
    state_dict = dict(resnet_state_dict)
    state_dict["transformer.resblocks.4.mlp.c_fc.weight"] = np.zeros((256, 32), np.float16)
    with pytest.raises(
        keras_clip.StateDictError,
        match=r"'transformer.resblocks.4.mlp.c_fc.weight': the state dict has \(256, 32\).*expects \(64, 256\)",
    ):
        keras_clip.build_model(state_dict)


def test_unknown_architecture_is_refused():
    with pytest.raises(keras_clip.StateDictError, match="Unknown architecture"):
        keras_clip.build_model({"encoder.weight": np.zeros((2, 2))})


def test_inconsistent_metadata_is_refused(resnet_state_dict):
    state_dict = dict(resnet_state_dict, input_resolution=np.array(336))
    with pytest.raises(keras_clip.StateDictError, match="input_resolution=336.*224"):
        keras_clip.build_model(state_dict)
