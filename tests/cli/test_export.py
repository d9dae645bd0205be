"""`keras-clip export`: a CLIP model or a zero-shot classifier from a checkpoint, written as a SavedModel."""

import os

import numpy as np
import pytest
from tensorflow.core.protobuf import saved_model_pb2

import keras_clip.serving.export as serving_export
from keras_clip.cli import main
from keras_clip.models.clip import CLIP
from keras_clip.models.zero_shot import ZeroShotClassifier
from keras_clip.text.templates import SIMPLE_TEMPLATES
from tests.helpers.cli import failure
from tests.helpers.tiny_models import tiny_clip


@pytest.fixture
def exported(monkeypatch):
    """Captures what the command would export instead of writing it."""
    calls = []
    def export_saved_model(obj, path, top_k, tokenizer=None):
        assert tokenizer is None  # CLIP models: CLIP's tokenizer
        calls.append((obj, path, top_k))
        return path

    monkeypatch.setattr(serving_export, "export_saved_model", export_saved_model)
    return calls


def _signature_names(export_dir):
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    return set(saved_model.meta_graphs[0].signature_def) - {"__saved_model_init_op"}


def test_export_with_classnames_writes_a_classifier_savedmodel(checkpoint, tmp_path, capsys):
    export_dir = str(tmp_path / "pets" / "1")
    args = ["export", export_dir, "--model", checkpoint[0], "--classnames", "cat,dog,hamster", "--templates",
            "a photo of a {}.", "--top-k", "2"]
    assert main(args) == 0
    assert f"Exported the zero-shot classifier over 3 classes to {export_dir}" in capsys.readouterr().out
    assert _signature_names(export_dir) == {
        "classify", "serving_default", "encode_image", "encode_text", "encode_tokens", "encode_pixels", "similarity"
    }


def test_export_without_classnames_exports_the_clip_model(checkpoint, tmp_path, exported):
    assert main(["export", str(tmp_path / "clip" / "1"), "--model", checkpoint[0]]) == 0
    (obj, path, top_k), = exported
    assert isinstance(obj, CLIP) and path == str(tmp_path / "clip" / "1") and top_k == 5
    np.testing.assert_array_equal(obj.logit_scale.numpy(), checkpoint[1].logit_scale.numpy())


def test_classnames_and_templates_from_files_and_names(checkpoint, tmp_path, exported):
    classnames = tmp_path / "classnames.txt"
    classnames.write_text("red panda\n\ncrème brûlée\n", encoding="utf-8")
    assert main(["export", str(tmp_path / "a"), "--model", checkpoint[0], "--classnames", f"@{classnames}",
                 "--templates", "simple"]) == 0  # fmt: skip
    templates = tmp_path / "templates.txt"
    templates.write_text("a photo of a {}.\nart of the {}.\n", encoding="utf-8")
    assert main(["export", str(tmp_path / "b"), "--model", checkpoint[0], "--classnames", "imagenet",
                 "--templates", f"@{templates}"]) == 0  # fmt: skip
    (first, _, _), (second, _, _) = exported
    assert isinstance(first, ZeroShotClassifier) and isinstance(second, ZeroShotClassifier)
    assert first.classnames == ["red panda", "crème brûlée"] and first.templates == SIMPLE_TEMPLATES
    assert len(second.classnames) == 1000 and second.templates == ["a photo of a {}.", "art of the {}."]


def test_a_saved_classifier_is_exported_with_its_own_classes(tmp_path, exported, capsys):
    path = str(tmp_path / "pets.keras")
    ZeroShotClassifier(tiny_clip(seed=4), ["cat", "dog"], templates="a photo of a {}.", verbose=False).save(path)
    assert main(["export", str(tmp_path / "pets" / "1"), "--model", path, "--top-k", "1"]) == 0
    (obj, _, top_k), = exported
    assert isinstance(obj, ZeroShotClassifier) and obj.classnames == ["cat", "dog"] and top_k == 1
    status, message = failure(capsys, "export", tmp_path / "other", "--model", path, "--classnames", "car")
    assert status == 2 and "is a classifier with its own 2 classes" in message


def test_max_pixels_is_baked_into_the_export(checkpoint, tmp_path, exported, capsys):
    pets = str(tmp_path / "pets.keras")
    ZeroShotClassifier(tiny_clip(seed=4), ["cat", "dog"], templates="a photo of a {}.", verbose=False).save(pets)
    for model, option, expected in [(checkpoint[0], [], 178_956_970), (checkpoint[0], ["--max-pixels", "1000"], 1000),
                                    (checkpoint[0], ["--max-pixels", "none"], None),
                                    (pets, ["--max-pixels", "2000"], 2000)]:  # fmt: skip
        assert main(["export", str(tmp_path / "out"), "--model", model, *option]) == 0
        obj = exported[-1][0]
        assert (obj if isinstance(obj, CLIP) else obj.clip_model).preprocessing.max_pixels == expected, option
    for bad in ("0", "-5", "1e6", "lots"):
        status, message = failure(capsys, "export", tmp_path / "out", "--model", checkpoint[0], "--max-pixels", bad)
        assert status == 2 and "--max-pixels: expected a positive integer or 'none'" in message, message
