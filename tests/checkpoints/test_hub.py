"""Released checkpoints on the Hugging Face Hub, and any open_clip repository there, through huggingface_hub.

A local server (tests/helpers/fake_hub.py) answers as the Hub does, `HF_ENDPOINT` points at it and
`HF_HUB_CACHE` at a test folder: nothing is downloaded from the internet. The model is a reduced
LAION-2B ViT-H/14 (GELU, 80-wide heads: tests/helpers/transformers_reference.py); outputs are checked
against transformers' CLIPModel within 1e-5 relative, as in test_model_families.py.
"""

import dataclasses
import json

import numpy as np
import pytest

import keras_clip
from keras_clip.checkpoints.publisher_configs import open_clip_architecture
from keras_clip.errors import ChecksumError, DownloadError
from keras_clip.models import presets
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
REPO = "test-owner/CLIP-tiny-laion2B"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """(files of the repository {name: bytes}, open_clip model_cfg, reference outputs, inputs)."""
    folder = tmp_path_factory.mktemp("published")
    transformers_config, model_cfg = family_configs("laion2b_vit_h14")
    model = reference_model(transformers_config, seed=11)
    images, tokens = random_images(2, RESOLUTION, seed=5), random_tokens(2, seed=5)
    state_dict = hf_to_openai({key: value.detach().numpy() for key, value in model.state_dict().items()})
    files = {
        "open_clip_model.safetensors": checkpoint_files.write_safetensors(str(folder / "w.safetensors"), state_dict),
        "open_clip_pytorch_model.bin": checkpoint_files.write_torch_state_dict(str(folder / "w.bin"), state_dict),
    }
    files = {name: (folder / path).read_bytes() for name, path in files.items()}
    preprocess_cfg = {"mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear", "resize_mode": "squash"}
    files["open_clip_config.json"] = json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}).encode()
    return files, model_cfg, reference_outputs(model, images, tokens), (images, tokens)


@pytest.fixture
def released(published, monkeypatch):
    """A release "ViT-Tiny-14/laion2b_test" whose weights are in REPO (the table entry a real one would have)."""
    _, model_cfg, _, _ = published
    architecture = open_clip_architecture(model_cfg)
    preset = presets.Preset(
        name="ViT-Tiny-14/laion2b_test", architecture_name="ViT-Tiny-14", tag="laion2b_test",
        architecture=architecture, checkpoint=presets.CheckpointFile(presets.HUB_FILES[0], hub_repo=REPO),
        preprocessing=keras_clip.image.settings.Preprocessing(RESOLUTION, mean=(0.5,) * 3, std=(0.5,) * 3),
    )  # fmt: skip
    monkeypatch.setitem(presets.PRESETS, preset.name, preset)
    monkeypatch.setattr(presets, "_PRESETS", presets._PRESETS + (preset,))
    return preset


def assert_matches(model, published):
    _, _, expected, (images, tokens) = published
    for name, ours in (("image_features", model.encode_image(images)), ("text_features", model.encode_text(tokens))):
        error = np.abs(np.asarray(ours) - expected[name]).max() / np.abs(expected[name]).max()
        assert error <= RELATIVE_TOLERANCE, f"{name}: relative max error {error:.2e}"


def publish(hub, published, names):
    files = published[0]
    for name in names:
        hub.publish(REPO, name, files[name])


def test_release_downloads_once_then_loads_offline(hub, published, released, monkeypatch):
    publish(hub, published, ["open_clip_pytorch_model.bin"])  # no safetensors file: the .bin is taken
    model, preprocess = keras_clip.load("ViT-Tiny-14/laion2b_test", verbose=False)
    assert_matches(model, published)
    assert preprocess.settings.mean == (0.5,) * 3 and model.activation == "gelu" and model.vision_heads == 2
    downloads = [path for method, path in hub.requests if method == "GET"]
    assert len(downloads) == 1 and downloads[0].endswith("/open_clip_pytorch_model.bin")
    hub.close()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again, _ = keras_clip.load("ViT-Tiny-14", pretrained="laion2b_test", verbose=False)
    assert_matches(again, published)
    assert ("ViT-Tiny-14", "laion2b_test") in keras_clip.list_pretrained()


def test_any_open_clip_repository_by_hf_hub_name(hub, published):
    publish(hub, published, ["open_clip_model.safetensors", "open_clip_config.json"])
    model, preprocess = keras_clip.load(f"hf-hub:{REPO}", verbose=False)
    assert_matches(model, published)
    assert (preprocess.settings.interpolation, preprocess.settings.resize_mode) == ("bilinear", "squash")
    assert not any(path.endswith(".bin") and method == "GET" for method, path in hub.requests)


def test_bytes_that_are_not_the_published_ones_are_refused(hub, published, released, tmp_path):
    publish(hub, published, ["open_clip_model.safetensors"])
    corrupted = bytearray(published[0]["open_clip_model.safetensors"])
    corrupted[-100] ^= 0xFF
    hub.served[(REPO, "open_clip_model.safetensors")] = bytes(corrupted)
    with pytest.raises(ChecksumError, match="not the published"):
        keras_clip.load("ViT-Tiny-14/laion2b_test", verbose=False)
    assert not list((tmp_path / "keras_clip").glob("**/*.safetensors"))  # nothing converted is kept


def test_missing_repository_and_files_are_named(hub, published):
    with pytest.raises(DownloadError, match="test-owner/missing"):
        keras_clip.load("hf-hub:test-owner/missing", verbose=False)
    hub.publish(REPO, "README.md", b"no weights here")
    with pytest.raises(DownloadError, match="has none of open_clip_model.safetensors, open_clip_pytorch_model.bin"):
        keras_clip.load(f"hf-hub:{REPO}", verbose=False)


def test_unknown_tag_is_named():
    with pytest.raises(ValueError, match="Unknown CLIP model 'ViT-B-32/laion9b'.*list_pretrained"):
        keras_clip.load("ViT-B-32", pretrained="laion9b")


def test_registry_lists_every_family():
    pretrained = keras_clip.list_pretrained()
    for architecture, tag in [("ViT-B-32", "openai"), ("ViT-B-32", "laion2b_s34b_b79k"), ("ViT-H-14", "dfn5b"),
                              ("ViT-H-14-378", "dfn5b"), ("ViT-bigG-14", "metaclip_fullcc"),
                              ("ViT-L-14", "datacomp_xl_s13b_b90k"), ("ViT-g-14", "laion2b_s34b_b88k")]:  # fmt: skip
        assert (architecture, tag) in pretrained
    assert keras_clip.available_models()[0] == "RN50" and len(keras_clip.available_models()) == 9
    assert dataclasses.asdict(presets.get_preset("ViT-H-14/dfn5b").preprocessing)["resize_mode"] == "squash"


def test_keras_spelling_from_preset(hub, published, released):
    publish(hub, published, ["open_clip_model.safetensors"])
    model = keras_clip.CLIP.from_preset("ViT-Tiny-14", pretrained="laion2b_test", verbose=False)
    assert isinstance(model, keras_clip.CLIP)
    assert_matches(model, published)
