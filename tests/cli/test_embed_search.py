"""`keras-clip embed` then `keras-clip search` on real photographs with a local model file."""

import json

import numpy as np

from keras_clip.cli import main
from keras_clip.serving.embedding import embed_texts
from keras_clip.serving.search import search
from tests.helpers.images import write_photos
from tests.helpers.tiny_models import tiny_clip


def test_embed_then_search(tmp_path, capsys):
    model = tiny_clip()
    model.save(tmp_path / "tiny.keras")
    paths = write_photos(tmp_path / "photos", 4)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    (tmp_path / "photos" / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "photos.npy"

    arguments = ["embed", str(tmp_path / "photos"), "--out", str(out), "--model", str(tmp_path / "tiny.keras")]
    assert main(arguments + ["--skip-errors"]) == 0
    captured = capsys.readouterr()
    assert "Wrote 4 embeddings of size 32" in captured.out
    assert "; skipped 1 unreadable files (--verbose lists them)" in captured.out and not captured.err
    assert main(arguments + ["--skip-errors", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith("; skipped 1 unreadable files")
    assert captured.err.strip() == f"skipped (unreadable): {tmp_path / 'photos' / 'broken.png'}"
    index = json.loads((tmp_path / "photos.json").read_text())
    assert index["paths"] == paths and np.load(out).shape == (4, 32)

    assert main(["search", str(out), "a dog on a beach", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    rows, scores = search(np.load(out), embed_texts(model, ["a dog on a beach"], verbose=False), top_k=3)
    assert lines[0] == "'a dog on a beach':"
    assert [line.split()[1:] for line in lines[1:]] == [[f"{s:.4f}", paths[r]] for r, s in zip(rows[0], scores[0])]


def test_embed_refuses_images_over_max_pixels(tmp_path, capsys):
    tiny_clip().save(tmp_path / "tiny.keras")
    paths = write_photos(tmp_path / "photos", 2)
    arguments = ["embed", str(tmp_path / "photos"), "--out", str(tmp_path / "photos.npy"), "--model",
                 str(tmp_path / "tiny.keras"), "--max-pixels", "1000"]  # fmt: skip
    assert main(arguments) == 1
    assert f"Could not decode {paths[0]}: its " in capsys.readouterr().err
    capsys.readouterr()
    assert main(arguments + ["--skip-errors"]) == 1  # every image refused: nothing to write
    assert "none of the 2 image files" in capsys.readouterr().err
    assert not (tmp_path / "photos.npy").exists()
