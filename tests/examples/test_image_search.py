"""examples/image_search.py: embeds a folder once, then answers text queries from the saved embeddings."""

import os
import runpy

import numpy as np

from keras_clip.serving.embedding import embed_texts
from keras_clip.serving.search import search
from tests.helpers.images import write_photos
from tests.helpers.tiny_models import tiny_clip

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "image_search.py")


def test_image_search_embeds_once_and_ranks_by_cosine(tmp_path, capsys):
    model = tiny_clip()
    model.save(tmp_path / "tiny.keras")
    paths = write_photos(tmp_path / "photos", 4)
    main = runpy.run_path(EXAMPLE)["main"]
    argv = [str(tmp_path / "photos"), "a dog on a beach", "--model", str(tmp_path / "tiny.keras"), "--top-k", "2"]

    main(argv)
    embeddings_file = tmp_path / "photos.npy"
    first_output, written = capsys.readouterr().out, os.path.getmtime(embeddings_file)
    main(argv)
    assert capsys.readouterr().out == first_output
    assert os.path.getmtime(embeddings_file) == written  # reused, not recomputed

    rows, scores = search(np.load(embeddings_file), embed_texts(model, ["a dog on a beach"], verbose=False), top_k=2)
    expected = ["a dog on a beach"] + [f"  {s:.3f}  {paths[r]}" for r, s in zip(rows[0], scores[0])]
    assert first_output.strip("\n").split("\n")[-3:] == expected
