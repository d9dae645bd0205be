"""`keras-clip embed`, `index` and `search` on real photographs with a local model file."""

import json

import numpy as np

from keras_clip.cli import main
from keras_clip.serving.embedding import embed_texts
from keras_clip.serving.index import load_index
from keras_clip.serving.search import search
from keras_clip.text.sentencepiece_tokenizer import SentencePieceTokenizer
from tests.helpers import siglip_reference
from tests.helpers.cli import embeddings_file, failure, run
from tests.helpers.images import write_photos
from tests.helpers.sentencepiece_models import write_siglip_like_model
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

    # A collection in shards loads the model as asked, records its dtype, and skips what --max-pixels refuses.
    collection = arguments[:3] + [str(tmp_path / "collection")] + arguments[4:] + ["--dtype", "float16"]
    assert main(collection) == 0
    assert capsys.readouterr().out.startswith(f"Embedded 0 images in 1 shards into {tmp_path / 'collection'}")
    assert json.loads((tmp_path / "collection" / "keras_clip.json").read_text())["dtype"] == "float16"
    assert main(collection[:-1] + ["float32"]) == 1
    assert "holds the embeddings of other model" in capsys.readouterr().err


def test_index_then_search_prints_what_the_embeddings_file_gives(checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    out, index = tmp_path / "photos.npy", tmp_path / "photos.index"
    paths = embeddings_file(out, rng.normal(size=(6, 32)).astype(np.float32), checkpoint[0])
    status, printed, _ = run(capsys, "index", out, "--out", index)
    assert status == 0 and printed.strip() == f"Wrote an exact index of 6 rows to {index}"
    queries = ["a dog on a beach", "a red car"]
    from_index, from_file = (run(capsys, "search", source, *queries, "--top-k", "4")[1] for source in (index, out))
    assert from_index == from_file and from_index.count("\n") == 10
    assert load_index(index).paths == paths and load_index(index).model == checkpoint[0]

    more = embeddings_file(tmp_path / "more.npy", rng.normal(size=(2, 32)).astype(np.float32), checkpoint[0])
    status, printed, _ = run(capsys, "index", tmp_path / "more.npy", "--out", index, "--add")
    assert status == 0 and printed.strip() == f"Added 2 rows to {index}: 8 rows, exact"
    assert load_index(index).paths == paths + more


def test_a_large_collection_gets_an_approximate_index(checkpoint, tmp_path, capsys):
    embeddings_file(tmp_path / "many.npy", np.random.default_rng(0).normal(size=(3000, 32)).astype(np.float32),
                    checkpoint[0])  # fmt: skip
    status, printed, _ = run(capsys, "index", tmp_path / "many.npy", "--out", tmp_path / "many.index",
                             "--exact-below", "1000", "--recall", "0.9")  # fmt: skip
    index = load_index(tmp_path / "many.index")
    assert status == 0 and index.kind == "approximate" and index.recall["measured"] >= 0.9
    assert printed.strip() == (f"Wrote an approximate index of 3000 rows to {tmp_path / 'many.index'}, "
                               f"searching {index.ef_search} candidates: recall@10 {index.recall['measured']:.3f} "
                               "on held-out rows")  # fmt: skip
    status, printed, _ = run(capsys, "search", tmp_path / "many.index", "a dog", "--top-k", "2")
    assert status == 0 and len(printed.strip().split("\n")) == 3
    embeddings_file(tmp_path / "other.npy", np.ones((2, 32), np.float32), "RN50")
    status, message = failure(capsys, "index", tmp_path / "other.npy", "--out", tmp_path / "many.index", "--add")
    assert status == 1 and "other.npy was made by RN50 but" in message and "do not compare" in message


def test_serve_loads_the_index_and_its_model_once_and_serves_the_page(checkpoint, tmp_path, capsys, monkeypatch):
    import uvicorn
    from fastapi.testclient import TestClient

    paths = embeddings_file(tmp_path / "photos.npy", np.random.default_rng(1).normal(size=(6, 32)).astype(np.float32),
                            checkpoint[0])  # fmt: skip
    assert main(["index", str(tmp_path / "photos.npy"), "--out", str(tmp_path / "photos.index")]) == 0
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level: served.update(app=app, port=port))
    status, printed, _ = run(capsys, "serve", tmp_path / "photos.index", "--port", "8123")
    assert status == 0 and served["port"] == 8123
    assert printed.strip() == f"Serving 6 images of {tmp_path / 'photos.index'} on http://127.0.0.1:8123 (Ctrl+C stops)"
    answer = TestClient(served["app"]).get("/search", params={"q": "a dog", "k": 6}).json()
    assert sorted(item["path"] for item in answer["results"]) == sorted(paths)


def test_search_with_a_siglip_folder_tokenizes_with_its_sentencepiece_model(tmp_path, capsys):
    folder = siglip_reference.write_transformers_folder(
        tmp_path / "siglip", siglip_reference.reference_model(siglip_reference.siglip_config("siglip_b16"), seed=2)
    )
    write_siglip_like_model(tmp_path / "siglip" / "spiece.model")
    rng = np.random.default_rng(3)
    embeddings_file(tmp_path / "photos.npy", rng.normal(size=(5, 128)).astype(np.float32), folder)
    status, printed, _ = run(capsys, "search", tmp_path / "photos.npy", "a photo of a cat", "--top-k", "5")
    assert status == 0, printed
    from keras_clip.checkpoints.load import load_model

    model = load_model(folder, verbose=False)
    tokenizer = SentencePieceTokenizer(str(tmp_path / "siglip" / "spiece.model"), context_length=model.context_length)
    query = embed_texts(model, ["a photo of a cat"], verbose=False, tokenizer=tokenizer)
    rows, scores = search(np.load(tmp_path / "photos.npy"), query, top_k=5)
    assert [line.split()[1] for line in printed.strip().split("\n")[1:]] == [f"{s:.4f}" for s in scores[0]]
