"""`keras-clip export`: a CLIP model or a zero-shot classifier from a checkpoint, written as a SavedModel."""

import os

import numpy as np
import pytest
from tensorflow.core.protobuf import saved_model_pb2

import keras_clip.cli.export as export_command
from keras_clip.cli import main
from keras_clip.model import CLIP
from keras_clip.templates import SIMPLE_TEMPLATES
from keras_clip.zero_shot import ZeroShotClassifier
from tests.helpers.tiny_models import tiny_clip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.keras"
    tiny_clip(seed=3).save(path)
    return str(path)


@pytest.fixture
def exported(monkeypatch):
    """Captures what the command would export instead of writing it."""
    calls = []
    def export_saved_model(obj, path, top_k):
        calls.append((obj, path, top_k))
        return path

    monkeypatch.setattr(export_command, "export_saved_model", export_saved_model)
    return calls


def _signature_names(export_dir):
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    return set(saved_model.meta_graphs[0].signature_def) - {"__saved_model_init_op"}


def test_export_with_labels_writes_a_classifier_savedmodel(checkpoint, tmp_path, capsys):
    export_dir = str(tmp_path / "pets" / "1")
    args = ["export", checkpoint, export_dir, "--labels", "cat,dog", "hamster", "--templates", "a photo of a {}.",
            "--top-k", "2"]
    assert main(args) == 0
    assert f"Exported the zero-shot classifier over 3 classes to {export_dir}" in capsys.readouterr().out
    assert _signature_names(export_dir) == {
        "classify", "serving_default", "encode_image", "encode_text", "encode_tokens", "encode_pixels", "similarity"
    }


def test_export_without_labels_exports_the_clip_model(checkpoint, tmp_path, exported):
    assert main(["export", checkpoint, str(tmp_path / "clip" / "1")]) == 0
    (obj, path, top_k), = exported
    assert isinstance(obj, CLIP) and path == str(tmp_path / "clip" / "1") and top_k == 5
    np.testing.assert_array_equal(obj.logit_scale.numpy(), tiny_clip(seed=3).logit_scale.numpy())


def test_labels_and_templates_from_files_and_names(checkpoint, tmp_path, exported):
    labels = tmp_path / "labels.txt"
    labels.write_text("red panda\n\ncrème brûlée\n", encoding="utf-8")
    assert main(["export", checkpoint, str(tmp_path / "a"), "--labels", str(labels), "--templates", "simple"]) == 0
    templates = tmp_path / "templates.txt"
    templates.write_text("a photo of a {}.\nart of the {}.\n", encoding="utf-8")
    assert main(["export", checkpoint, str(tmp_path / "b"), "--labels", "imagenet", "--templates", str(templates)]) == 0
    (first, _, _), (second, _, _) = exported
    assert isinstance(first, ZeroShotClassifier) and isinstance(second, ZeroShotClassifier)
    assert first.classnames == ["red panda", "crème brûlée"] and first.templates == SIMPLE_TEMPLATES
    assert len(second.classnames) == 1000 and second.templates == ["a photo of a {}.", "art of the {}."]


def test_a_saved_classifier_is_exported_with_its_own_labels(tmp_path, exported):
    path = str(tmp_path / "pets.keras")
    ZeroShotClassifier(tiny_clip(seed=4), ["cat", "dog"], templates="a photo of a {}.", verbose=False).save(path)
    assert main(["export", path, str(tmp_path / "pets" / "1"), "--top-k", "1"]) == 0
    (obj, _, top_k), = exported
    assert isinstance(obj, ZeroShotClassifier) and obj.classnames == ["cat", "dog"] and top_k == 1
    with pytest.raises(SystemExit, match="is a classifier with its own labels"):
        main(["export", path, str(tmp_path / "other"), "--labels", "car"])


def test_bad_options_name_the_problem(checkpoint, tmp_path, exported):
    with pytest.raises(SystemExit, match="--templates needs --labels"):
        main(["export", checkpoint, str(tmp_path / "x"), "--templates", "simple"])
    with pytest.raises(SystemExit, match="labels file .*missing.txt does not exist"):
        main(["export", checkpoint, str(tmp_path / "x"), "--labels", str(tmp_path / "missing.txt")])
    with pytest.raises(ValueError, match="neither a released CLIP model"):
        main(["export", str(tmp_path / "nowhere.pt"), str(tmp_path / "x")])
    assert not exported
