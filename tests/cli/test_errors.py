"""Every subcommand, given a missing file, a corrupt file or a bad option: one line on stderr, status 1 or 2."""

import argparse
import json
import sys

import numpy as np
import pytest

from keras_clip.cli import build_parser, main
from keras_clip.cli.arguments import positive_int
from tests.helpers.background import Job
from tests.helpers.cli import embeddings_file, failure, run
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
    status, message = failure(capsys, "embed", files["folder"], "--out", tmp_path / "out.txt")
    assert status == 2 and "--out must end in .npy (an embeddings file) or name a folder" in message
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "broken.jpg").write_bytes(CORRUPT_JPEG)
    status, message = failure(capsys, "embed", tmp_path / "unreadable", "--out", out, "--model", checkpoint[0],
                              "--skip-errors")  # fmt: skip
    assert status == 1 and "none of the 1 image files under" in message and "nothing written" in message
    assert not out.exists()


def test_embed_hides_what_libjpeg_prints(checkpoint, files, tmp_path, capfd):
    """libjpeg wrote "Input file read error" per corrupt JPEG to file descriptor 2, around our output."""
    (files["folder"] / "broken.jpg").write_bytes(CORRUPT_JPEG)
    capfd.readouterr()
    assert main(["embed", str(files["folder"]), "--out", str(tmp_path / "out.npy"), "--model", checkpoint[0],
                 "--skip-errors", "--verbose"]) == 0  # fmt: skip
    out, err = capfd.readouterr()
    assert "skipped 1 unreadable files" in out
    assert err.splitlines() == [f"skipped (unreadable): {files['folder'] / 'broken.jpg'}"]


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


def test_index(checkpoint, files, tmp_path, capsys):
    out, index = tmp_path / "photos.npy", tmp_path / "photos.index"
    embeddings_file(out, np.ones((3, 32), np.float32), checkpoint[0])
    status, message = failure(capsys, "index", files["missing"].with_suffix(".npy"), "--out", index)
    assert status == 1 and "missing.npy does not exist" in message
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "corrupt.json").write_text((tmp_path / "photos.json").read_text())
    status, message = failure(capsys, "index", tmp_path / "corrupt.npy", "--out", index)
    assert status == 1 and "corrupt.npy is not a readable .npy file" in message
    status, message = failure(capsys, "index", out, "--out", index, "--recall", "1.5")
    assert status == 2 and "--recall: expected a number in (0, 1], got 1.5" in message
    status, message = failure(capsys, "index", out, "--out", index, "--add")
    assert status == 1 and "photos.index is not an index: it has no index.json" in message
    assert main(["index", str(out), "--out", str(index)]) == 0
    status, message = failure(capsys, "index", out, "--out", index)
    assert status == 2 and "already exists: choose a new --out, or pass --add" in message
    (index / "vectors.npy").write_bytes(b"\x93NUMPY garbage")
    status, message = failure(capsys, "search", index, "a dog")
    assert status == 1 and "vectors.npy" in message


def test_serve(checkpoint, files, tmp_path, capsys):
    status, message = failure(capsys, "serve", tmp_path / "missing.index")
    assert status == 1 and "missing.index is not an index: it has no index.json" in message
    (tmp_path / "broken.index").mkdir()
    (tmp_path / "broken.index" / "index.json").write_text("[1, 2")
    status, message = failure(capsys, "serve", tmp_path / "broken.index")
    assert status == 1 and "index.json is not an index description" in message
    status, message = failure(capsys, "serve", tmp_path / "broken.index", "--port", "http")
    assert status == 2 and "--port: expected a positive integer" in message


HUGE_HEADER = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 100000), }"


def bad_index(folder, name, embeddings=None, header=None, index=None):
    """`name`.npy (an array, or a header and a little data) and `name`.json (default: a good index)."""
    if header is not None:
        data = b"\x93NUMPY\x01\x00v\x00" + header.ljust(117).encode() + b"\n" + b"\0" * 64
        (folder / f"{name}.npy").write_bytes(data)
    else:
        np.save(folder / f"{name}.npy", embeddings)
    index = index if index is not None else json.loads((folder / "photos.json").read_text())
    (folder / f"{name}.json").write_text(json.dumps(index))
    return folder / f"{name}.npy"


def test_search_checks_the_files_before_printing(checkpoint, files, tmp_path, capsys):
    out = tmp_path / "photos.npy"
    assert main(["embed", str(files["folder"]), "--out", str(out), "--model", checkpoint[0]]) == 0
    good = json.loads((tmp_path / "photos.json").read_text())
    cases = {
        # A 192-byte file whose header claims 40 TB: refused from the file's size, nothing allocated.
        "is not a readable .npy file: mmap length is greater than file size":
            bad_index(tmp_path, "huge", header=HUGE_HEADER),
        "row 0 is not an embedding (not finite, or all zero); 1 such row(s)":
            bad_index(tmp_path, "nan", np.full((1, 32), np.nan, np.float32)),
        "holds no embeddings (shape (0, 32))": bad_index(tmp_path, "empty", np.ones((0, 32), np.float32),
                                                         index=dict(good, paths=[])),
        "'paths' must be a list of file paths (strings)": bad_index(tmp_path, "ints", np.ones((1, 32), np.float32),
                                                                    index=dict(good, paths=[7])),
        "'model' must name the model": bad_index(tmp_path, "nomodel", np.ones((1, 32), np.float32),
                                                 index=dict(good, model=None)),
    }  # fmt: skip
    for expected, path in cases.items():
        status, printed, err = run(capsys, "search", path, "a dog")
        assert status == 1 and err.count("\n") == 1 and expected in err and not printed, (path, err)


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


def numeric_options():
    """(subcommand, option) for every option of every subcommand that takes a number."""
    parser = build_parser()
    subcommands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return [(name, action.option_strings[-1]) for name, subparser in subcommands.choices.items()
            for action in subparser._actions if action.type in (int, float, positive_int)]  # fmt: skip


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_every_numeric_option_takes_positive_integers_only(value, capsys):
    options = numeric_options()
    assert {("embed", "--batch-size"), ("search", "--top-k"), ("classify", "--top-k")} <= set(options)
    for command, option in options:
        status, message = failure(capsys, command, option, value)
        assert status == 2 and f"argument {option}: expected a positive integer" in message, message


EMPTY_FOLDER = Job([sys.executable, "-m", "keras_clip.cli", "embed", "{folder}", "--out", "{folder}/x.npy"])


@pytest.mark.background(EMPTY_FOLDER)
def test_a_failure_in_a_fresh_process_is_one_line():
    """TensorFlow's libraries printed start-up notes to file descriptor 2 (absl, CUDA, oneDNN) around our line."""
    result = EMPTY_FOLDER.result()
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("keras-clip embed: error: No image files") and not result.stdout
