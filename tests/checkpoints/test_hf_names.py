"""Hugging Face transformers `CLIPModel` names -> OpenAI's, checked against transformers' own model."""

import numpy as np
import pytest

import keras_clip
from keras_clip.checkpoints.hf_names import hf_to_openai, is_hf_clip
from keras_clip.checkpoints.load import load_model
from tests.helpers import checkpoint_files
from tests.helpers.model_inputs import random_images, random_tokens

# Tolerance of the model core: max |ours - reference| <= 1e-4 * max |reference|.
RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def vit_state_dict():
    return checkpoint_files.reference_state_dict(checkpoint_files.SMALL_VIT, seed=2)[1]


def test_round_trip_through_transformers_names(vit_state_dict):
    hf = checkpoint_files.openai_to_hf(vit_state_dict)
    assert is_hf_clip(hf) and not is_hf_clip(vit_state_dict)
    mapped = hf_to_openai(hf)
    assert set(mapped) == set(vit_state_dict)
    for key, expected in vit_state_dict.items():
        np.testing.assert_array_equal(np.asarray(mapped[key]), expected, err_msg=key)


def test_missing_attention_part_is_named(vit_state_dict):
    hf = checkpoint_files.openai_to_hf(vit_state_dict)
    del hf["vision_model.encoder.layers.1.self_attn.k_proj.bias"]
    missing = r"missing vision_model\.encoder\.layers\.1\.self_attn\.k_proj\.bias"
    with pytest.raises(keras_clip.StateDictError, match=missing):
        hf_to_openai(hf)


def test_unknown_transformers_key_is_reported_by_build_model(vit_state_dict):
    hf = checkpoint_files.openai_to_hf(vit_state_dict)
    hf["vision_model.encoder.layers.0.extra.weight"] = np.zeros(3, np.float32)
    unexpected = r"unexpected keys \['vision_model.encoder.layers.0.extra.weight'\]"
    with pytest.raises(keras_clip.StateDictError, match=unexpected):
        keras_clip.build_model(hf_to_openai(hf))


def _random_transformers_clip(seed):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    text = dict(vocab_size=49408, hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    vision = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2, image_size=64,
                  patch_size=16, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)
    torch.manual_seed(seed)
    model = transformers.CLIPModel(config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1 and name.endswith("weight"):  # LayerNorm gains away from 1
                parameter.copy_(1 + 0.1 * torch.randn(parameter.shape, generator=generator))
            elif parameter.ndim == 1:
                parameter.copy_(0.02 * torch.randn(parameter.shape, generator=generator))
    return model


@pytest.mark.parametrize("file_name", ["model.safetensors", "pytorch_model.bin"])
def test_transformers_checkpoint_matches_transformers_outputs(tmp_path, file_name):
    torch = pytest.importorskip("torch")
    model = _random_transformers_clip(seed=3)
    path = str(tmp_path / file_name)
    if file_name.endswith(".safetensors"):
        model.save_pretrained(str(tmp_path))
    else:
        torch.save(model.state_dict(), path)
    images, tokens = random_images(2, 64, seed=4), random_tokens(3, seed=5)
    with torch.no_grad():
        pixel_values = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        input_ids = torch.from_numpy(tokens.astype(np.int64))
        expected_image = model.get_image_features(pixel_values=pixel_values).pooler_output.numpy()
        expected_text = model.get_text_features(input_ids=input_ids).pooler_output.numpy()
        expected_logits = model(input_ids=input_ids, pixel_values=pixel_values).logits_per_image.numpy()
    # A transformers download folder is found by its file name.
    ours = load_model(str(tmp_path) if file_name.endswith(".safetensors") else path, cache_dir=str(tmp_path / "cache"))
    for actual, expected in (
        (ours.encode_image(images).numpy(), expected_image),
        (ours.encode_text(tokens).numpy(), expected_text),
        (ours({"images": images, "tokens": tokens})[0].numpy(), expected_logits),
    ):
        assert np.abs(actual - expected).max() <= RELATIVE_TOLERANCE * np.abs(expected).max()
