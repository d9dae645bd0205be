"""SigLIP checkpoints, as transformers publishes them (`SiglipModel` folders), against transformers.

Reduced models keep the real head widths and MLP ratios (tests/helpers/siglip_reference.py); they are
written with `save_pretrained` and loaded by `keras_clip.load` in a process where torch cannot be
imported. Embeddings and logits (with SigLIP's bias) must equal transformers' within
max |ours - reference| <= 1e-5 * max |reference|; the returned preprocessing is the folder's
(SiglipImageProcessor: squash to the square, bicubic, mean and std 0.5).
"""

import json

import numpy as np
import pytest

import keras_clip
from keras_clip.checkpoints.publisher_configs import transformers_architecture
from keras_clip.errors import CheckpointError
from tests.helpers import checkpoint_files
from tests.helpers.model_inputs import random_images
from tests.helpers.siglip_reference import (
    MODELS,
    RESOLUTION,
    random_siglip_tokens,
    reference_model,
    reference_outputs,
    siglip_config,
    write_transformers_folder,
)

RELATIVE_TOLERANCE = 1e-5
OUTPUTS = ("image_features", "text_features", "logits_per_image")

LOAD_SCRIPT = """
import json
import numpy as np
import keras_clip

job = json.load(open({job!r}))
inputs = np.load(job["inputs"])
results, preprocessing = {{}}, {{}}
for label, folder in job["folders"].items():
    model, preprocess = keras_clip.load(folder, cache_dir=job["cache"])
    images, tokens = inputs["images"], inputs["tokens"]
    results[label + ".image_features"] = model.encode_image(images).numpy()
    results[label + ".text_features"] = model.encode_text(tokens).numpy()
    results[label + ".logits_per_image"] = model({{"images": images, "tokens": tokens}})[0].numpy()
    config = preprocess.get_config()
    preprocessing[label] = {{key: config[key] for key in ("mean", "std", "interpolation", "resize_mode")}}
    preprocessing[label + ".model"] = {{key: getattr(model.preprocessing, key) for key in preprocessing[label]}}
np.savez(job["outputs"], **results)
json.dump(preprocessing, open(job["preprocessing"], "w"))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Every reduced SigLIP written as a transformers folder, loaded torch-free: (outputs, preprocessing, expected)."""
    folder = tmp_path_factory.mktemp("siglip")
    images, tokens = random_images(2, RESOLUTION, seed=3), random_siglip_tokens(3, seed=3)
    folders, expected = {}, {}
    for seed, name in enumerate(sorted(MODELS)):
        model = reference_model(siglip_config(name), seed=seed)
        expected[name] = reference_outputs(model, images, tokens)
        folders[name] = write_transformers_folder(folder / name, model)
    np.savez(folder / "inputs.npz", images=images, tokens=tokens)
    job = {"folders": folders, "inputs": str(folder / "inputs.npz"), "outputs": str(folder / "outputs.npz"),
           "preprocessing": str(folder / "preprocessing.json"), "cache": str(folder / "cache")}  # fmt: skip
    (folder / "job.json").write_text(json.dumps(job))
    result = checkpoint_files.run_without_torch(LOAD_SCRIPT.format(job=str(folder / "job.json")))
    assert result.returncode == 0, result.stderr[-5000:]
    return dict(np.load(folder / "outputs.npz")), json.loads((folder / "preprocessing.json").read_text()), expected


@pytest.mark.parametrize("name", sorted(MODELS))
def test_siglip_folder_matches_transformers(loaded, name):
    outputs, preprocessing, expected = loaded
    for output in OUTPUTS:
        ours, reference = outputs[f"{name}.{output}"], expected[name][output]
        error = np.abs(ours - reference).max() / np.abs(reference).max()
        assert error <= RELATIVE_TOLERANCE, f"{name} {output}: relative max error {error:.2e}"
    assert preprocessing[name] == {"mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic",
                                   "resize_mode": "squash"}  # fmt: skip
    assert preprocessing[name + ".model"] == preprocessing[name]  # the model carries it (embedding, exports)


def test_logit_bias_and_scale_are_the_checkpoints(loaded, tmp_path):
    # The reference's logits include its bias (-7.5) and scale (exp 2.3): a model without either differs.
    reference = reference_model(siglip_config("siglip_b16"), seed=sorted(MODELS).index("siglip_b16"))
    folder = write_transformers_folder(tmp_path / "model", reference)
    model, _ = keras_clip.load(folder, cache_dir=str(tmp_path / "cache"), verbose=False)
    assert float(model.logit_bias.numpy()) == pytest.approx(-7.5)
    assert float(model.logit_scale.numpy()) == pytest.approx(2.3)
    assert model.image_pooling == "map" and model.activation == "gelu_tanh" and not model.text_causal


def test_siglip2_naflex_is_named():
    with pytest.raises(CheckpointError, match="siglip2.*NaFlex"):
        transformers_architecture({"model_type": "siglip2"})


def test_config_without_the_pooling_head_is_named():
    config = siglip_config("siglip_b16")
    config["vision_config"]["vision_use_head"] = False
    with pytest.raises(CheckpointError, match="vision_use_head"):
        transformers_architecture(config)


def _transformers_parameter_count(config):
    import torch
    from transformers import SiglipConfig, SiglipModel

    with torch.device("meta"):
        return sum(p.numel() for p in SiglipModel(SiglipConfig(**config)).parameters())


def _config_of(architecture):
    """A transformers `SiglipConfig` dict of `CLIP` arguments (the sizes Google's config.json files state)."""
    vision = dict(hidden_size=architecture["vision_width"], num_hidden_layers=architecture["vision_layers"],
                  num_attention_heads=architecture["vision_heads"], intermediate_size=architecture["vision_mlp_width"],
                  image_size=architecture["image_resolution"],
                  patch_size=architecture["vision_patch_size"])  # fmt: skip
    text = dict(hidden_size=architecture["transformer_width"], num_hidden_layers=architecture["transformer_layers"],
                num_attention_heads=architecture["transformer_heads"],
                intermediate_size=architecture["transformer_mlp_width"], vocab_size=architecture["vocab_size"],
                max_position_embeddings=architecture["context_length"])  # fmt: skip
    return {"model_type": "siglip", "text_config": text, "vision_config": vision}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reduced_parameter_counts_equal_transformers(name):
    config = siglip_config(name)
    model = keras_clip.CLIP(**transformers_architecture(config))
    assert sum(int(np.prod(weight.shape)) for weight in model.weights) == _transformers_parameter_count(config)


@pytest.mark.full_size
@pytest.mark.parametrize("name", ["ViT-B-16-SigLIP/webli", "ViT-SO400M-14-SigLIP-384/webli"])
def test_full_size_parameter_counts_equal_transformers(name):
    architecture = keras_clip.models.presets.get_preset(name).architecture
    config = _config_of(architecture)
    assert transformers_architecture(config) == dict(architecture)
    model = keras_clip.create_model(name)
    assert sum(int(np.prod(weight.shape)) for weight in model.weights) == _transformers_parameter_count(config)
