"""A checkpoint file without its config: what the weights cannot tell is never guessed silently.

The model is a reduced LAION-2B ViT-H/14 (GELU, 80-wide heads): loaded bare it would be wrong with
OpenAI's QuickGELU and 64-wide heads, so `load` warns, naming the options and how to pass them; with
`architecture=` (open_clip's name or the arguments) it equals transformers' CLIPModel within 1e-5.
A bare file whose SHA256 is a release's gets the release's architecture, without a warning.
"""

import dataclasses
import hashlib
import warnings

import numpy as np
import pytest

import keras_clip
from keras_clip.models import presets
from keras_clip.image.settings import Preprocessing
from tests.helpers import checkpoint_files
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.transformers_reference import (
    RESOLUTION,
    family_configs,
    hf_to_openai,
    reference_model,
    reference_outputs,
)

RELATIVE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def bare_file(tmp_path_factory):
    """(a bare open_clip-named safetensors file of the reduced ViT-H/14, reference outputs, inputs)."""
    folder = tmp_path_factory.mktemp("bare")
    transformers_config, _ = family_configs("laion2b_vit_h14")
    model = reference_model(transformers_config, seed=21)
    state_dict = hf_to_openai({key: value.detach().numpy() for key, value in model.state_dict().items()})
    path = checkpoint_files.write_safetensors(str(folder / "model.safetensors"), state_dict)
    images, tokens = random_images(2, RESOLUTION, seed=8), random_tokens(2, seed=8)
    return path, reference_outputs(model, images, tokens), (images, tokens)


def relative_error(model, bare_file):
    _, expected, (images, _) = bare_file
    reference = expected["image_features"]
    return np.abs(model.encode_image(images).numpy() - reference).max() / np.abs(reference).max()


def test_without_config_it_warns_naming_the_options(bare_file, tmp_path):
    with pytest.warns(UserWarning, match=r"activation and attention heads cannot be read.*architecture='ViT-H-14'"):
        guessed, _ = keras_clip.load(bare_file[0], cache_dir=tmp_path)
    assert relative_error(guessed, bare_file) > 100 * RELATIVE_TOLERANCE  # the warning is warranted


@pytest.mark.parametrize("architecture", [{"activation": "gelu", "vision_heads": 2}, "tiny-h14"])
def test_architecture_argument_loads_it_right(bare_file, tmp_path, monkeypatch, architecture):
    # "tiny-h14": an architecture name, as "ViT-H-14" is for the full-size model.
    sizes = dict(presets.SIZES["ViT-H-14"], embed_dim=32, image_resolution=RESOLUTION, vision_layers=2,
                 vision_width=160, transformer_width=64, transformer_heads=1, transformer_layers=2)  # fmt: skip
    monkeypatch.setitem(presets.SIZES, "tiny-h14", sizes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, _ = keras_clip.load(bare_file[0], cache_dir=tmp_path, architecture=architecture)
    assert relative_error(model, bare_file) <= RELATIVE_TOLERANCE
    with pytest.raises(keras_clip.StateDictError, match="The config says embed_dim=512 but the weights describe 32"):
        keras_clip.load(bare_file[0], cache_dir=tmp_path, architecture="ViT-B-16")


def test_a_release_by_its_sha256_needs_no_config(bare_file, tmp_path, monkeypatch):
    path = bare_file[0]
    with open(path, "rb") as file:
        sha256 = hashlib.sha256(file.read()).hexdigest()
    architecture = dict(keras_clip.load(path, cache_dir=tmp_path / "first", architecture={"activation": "gelu",
                                                                                          "vision_heads": 2})[0]
                        .architecture())  # fmt: skip
    release = dataclasses.replace(presets.PRESETS["ViT-B/32"], name="Test/tiny-h14", architecture=architecture,
                                  checkpoint=presets.CheckpointFile("model.safetensors", "https://example/m", sha256),
                                  preprocessing=Preprocessing(architecture["image_resolution"]))  # fmt: skip
    monkeypatch.setattr(presets, "_PRESETS", presets._PRESETS + (release,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, _ = keras_clip.load(path, cache_dir=tmp_path / "second")
    assert relative_error(model, bare_file) <= RELATIVE_TOLERANCE
