"""Every subcommand, given a missing file, a corrupt file or a bad option: one line on stderr, status 1 or 2."""

import numpy as np
import pytest

from keras_clip.cli import main
from tests.helpers.cli import failure, run
from tests.helpers.evaluation_data import CORRUPT_JPEG
from tests.helpers.images import write_photos


@pytest.fixture
def files(tmp_path):
    """A missing path, a corrupt checkpoint, a corrupt image and a good photograph."""
    corrupt_checkpoint = tmp_path / "corrupt.pt"
    corrupt_checkpoint.write_bytes(b"PK\x03\x04 truncated zip archive")
    corrupt_image = tmp_path / "broken.jpg"
    corrupt_image.write_bytes(CORRUPT_JPEG)
    return {
        "missing": tmp_path / "missing.jpg",
        "corrupt_checkpoint": corrupt_checkpoint,
        "corrupt_image": corrupt_image,
        "photo": write_photos(tmp_path / "photos", 1)[0],
        "folder": tmp_path / "photos",
    }


def test_models(capsys):
    status, out, _ = run(capsys, "models")
    assert status == 0 and out.split("\n")[:-1][:2] == ["RN50", "RN101"]
    assert failure(capsys, "models", "--bogus")[0] == 2  # it reads no file


def test_classify(checkpoint, files, capsys):
    model = ["--model", checkpoint[0], "--classnames", "cat,dog", "--templates", "simple"]
    status, message = failure(capsys, "classify", files["missing"], *model)
    assert status == 1 and str(files["missing"]) in message
    status, message = failure(capsys, "classify", files["corrupt_image"], *model)
    assert status == 1 and f"Could not decode {files['corrupt_image']}" in message
    status, message = failure(capsys, "classify", files["photo"], "--model", files["corrupt_checkpoint"],
                              "--classnames", "cat")  # fmt: skip
    assert status == 1 and "corrupt.pt" in message
    status, message = failure(capsys, "classify", files["photo"], *model, "--top-k", "0")
    assert status == 2 and "--top-k: expected a positive integer, got 0" in message
    assert failure(capsys, "classify", files["photo"], "--model", checkpoint[0])[1].endswith(
        'no class names: pass --classnames "cat,dog,..." (see keras-clip classify --help)'
    )


def test_evaluate(checkpoint, files, tmp_path, capsys):
    model = ["--model", checkpoint[0], "--templates", "simple"]
    status, message = failure(capsys, "evaluate", tmp_path / "no_folder", *model)
    assert status == 1 and "no_folder does not exist" in message
    (tmp_path / "classes" / "cat").mkdir(parents=True)
    (tmp_path / "classes" / "cat" / "broken.jpg").write_bytes(CORRUPT_JPEG)
    status, message = failure(capsys, "evaluate", tmp_path / "classes", *model)
    assert status == 1 and "broken.jpg" in message and "skip_errors" in message
    status, message = failure(capsys, "evaluate", tmp_path / "classes", *model, "--batch-size", "-3")
    assert status == 2 and "--batch-size" in message


def test_embed(checkpoint, files, tmp_path, capsys):
    out = tmp_path / "out.npy"
    status, message = failure(capsys, "embed", files["missing"], "--out", out, "--model", checkpoint[0])
    assert status == 1 and "missing.jpg does not exist" in message
    (tmp_path / "empty").mkdir()
    status, message = failure(capsys, "embed", tmp_path / "empty", "--out", out, "--model", checkpoint[0])
    assert status == 1 and "No image files" in message
    (files["folder"] / "broken.jpg").write_bytes(CORRUPT_JPEG)
    status, message = failure(capsys, "embed", files["folder"], "--out", out, "--model", checkpoint[0])
    assert status == 1 and "broken.jpg" in message and not out.exists()
    status, message = failure(capsys, "embed", files["folder"], "--out", out, "--model", files["corrupt_checkpoint"])
    assert status == 1 and "corrupt.pt" in message
    assert failure(capsys, "embed", files["folder"], "--out", out, "--batch-size", "zero")[0] == 2


def test_search(checkpoint, files, tmp_path, capsys):
    out = tmp_path / "photos.npy"
    assert main(["embed", str(files["folder"]), "--out", str(out), "--model", checkpoint[0]]) == 0
    status, message = failure(capsys, "search", files["missing"].with_suffix(".npy"), "a dog")
    assert status == 1 and "missing.npy does not exist" in message
    status, message = failure(capsys, "search", out, "a dog", "--top-k", "-1")
    assert status == 2 and "--top-k" in message
    np.save(tmp_path / "wide.npy", np.ones((1, 64), np.float32))
    (tmp_path / "wide.json").write_text((tmp_path / "photos.json").read_text())
    status, message = failure(capsys, "search", tmp_path / "wide.npy", "a dog")
    assert status == 1 and "embeds in 32 dimensions but" in message and "64" in message
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "corrupt.json").write_text((tmp_path / "photos.json").read_text())
    status, message = failure(capsys, "search", tmp_path / "corrupt.npy", "a dog")
    assert status == 1 and "corrupt.npy is not a readable .npy file" in message
    np.save(tmp_path / "long.npy", np.ones((5, 32), np.float32))
    (tmp_path / "long.json").write_text((tmp_path / "photos.json").read_text())
    status, message = failure(capsys, "search", tmp_path / "long.npy", "a dog")
    assert status == 1 and "has 5 rows but" in message


def test_export(checkpoint, files, tmp_path, capsys):
    status, message = failure(capsys, "export", tmp_path / "a", "--model", files["missing"])
    assert status == 1 and "missing.jpg" in message and "neither a released CLIP model" in message
    status, message = failure(capsys, "export", tmp_path / "a", "--model", files["corrupt_checkpoint"])
    assert status == 1 and "corrupt.pt" in message
    status, message = failure(capsys, "export", tmp_path / "a", "--model", checkpoint[0], "--templates", "simple")
    assert status == 2 and "--templates needs --classnames" in message
    status, message = failure(capsys, "export", tmp_path / "a", "--model", checkpoint[0], "--classnames",
                              f"@{files['missing']}")  # fmt: skip
    assert status == 2 and "class names file" in message and "does not exist" in message


def test_convert(checkpoint, files, tmp_path, capsys):
    status, message = failure(capsys, "convert", tmp_path / "a.keras", "--model", files["missing"])
    assert status == 1 and "missing.jpg" in message
    status, message = failure(capsys, "convert", tmp_path / "a.keras", "--model", files["corrupt_checkpoint"])
    assert status == 1 and "corrupt.pt" in message
    status, message = failure(capsys, "convert", tmp_path / "a.onnx", "--model", checkpoint[0])
    assert status == 2 and "must end in .keras or .weights.h5" in message
    assert not (tmp_path / "a.keras").exists()


def test_debug_shows_the_traceback(files, tmp_path):
    with pytest.raises(ValueError, match="neither a released CLIP model"):
        main(["--debug", "convert", str(tmp_path / "a.keras"), "--model", str(files["missing"])])
