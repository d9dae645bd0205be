"""Search indexes: exact ones against numpy's full sort, approximate ones (faiss) against their recall target."""

import json
import sys

import numpy as np
import pytest

from keras_clip.serving import index as index_module
from keras_clip.serving.index import build_index, load_index
from keras_clip.serving.search import search, top_inner_products


def normalized(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def clustered(count, dimension=64, seed=0):
    """Rows around 400 random centres (the same for every seed), as image embeddings group by subject; the
    groups overlap (noise twice the centres' scale), so that nearest neighbours are hard to find."""
    centres = np.random.default_rng(dimension).normal(size=(400, dimension))
    rng = np.random.default_rng(seed)
    return (centres[rng.integers(0, 400, count)] + 2.0 * rng.normal(size=(count, dimension))).astype(np.float32)


def numpy_top_k(rows, queries, k):
    """The reference: every cosine similarity, fully sorted (ties to the lower row)."""
    scores = normalized(queries.astype(np.float64)) @ normalized(rows.astype(np.float64)).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("block_rows", [7, 65536])
def test_top_inner_products_in_blocks_is_a_full_sort(block_rows):
    rng = np.random.default_rng(1)
    vectors = normalized(rng.normal(size=(100, 8))).astype(np.float32)
    vectors[50] = vectors[10]  # a tie for the first place: the lower row comes first
    queries = np.concatenate([vectors[10:11], rng.normal(size=(5, 8)).astype(np.float32)])
    indices, scores = top_inner_products(vectors, queries, 12, block_rows=block_rows)
    expected = np.argsort(-(queries.astype(np.float64) @ vectors.T.astype(np.float64)), axis=1, kind="stable")[:, :12]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, expected, 1), rtol=1e-6)
    assert list(indices[0][:2]) == [10, 50]


def test_an_exact_index_is_exact_search():
    rows, queries = clustered(3000), clustered(20, seed=1)
    index = build_index(rows)
    assert index.kind == "exact" and index.size == 3000 and index.dimension == 64
    indices, scores = index.search(queries, top_k=10)
    np.testing.assert_array_equal(indices, numpy_top_k(rows, queries, 10))
    np.testing.assert_array_equal(indices, search(rows, queries, top_k=10)[0])
    # Cosine similarities, within float32 rounding.
    np.testing.assert_allclose(scores, np.sort(normalized(queries) @ normalized(rows).T, axis=1)[:, ::-1][:, :10],
                               atol=1e-5)  # fmt: skip


def recall_at_10(index, rows, queries):
    found, _ = index.search(queries, top_k=10)
    expected = numpy_top_k(rows, queries, 10)
    return np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, expected)])


def test_an_approximate_index_reaches_its_recall_target():
    rows = clustered(20_000)
    index = build_index(rows, exact_below=10_000, recall=0.95)
    assert index.kind == "approximate" and index.size == 20_000
    assert index.recall["target"] == 0.95 and index.recall["measured"] >= 0.95
    # Fresh queries from the same clusters (not rows of the index): the measured recall holds for them too
    # (measured: 0.951; tuned on rows of the graph instead of held-out ones, it held 0.97 where these got 0.71).
    queries = clustered(300, seed=2)
    assert recall_at_10(index, rows, queries) >= 0.93
    index.ef_search = 10  # the tuning matters: the narrowest search misses much more (measured: 0.48)
    assert recall_at_10(index, rows, queries) < 0.7


@pytest.mark.parametrize("exact_below", [100_000, 1000], ids=["exact", "approximate"])
def test_save_load_and_add(tmp_path, exact_below):
    rows, more = clustered(4000), clustered(500, seed=3)
    paths = [f"photo_{i}.jpg" for i in range(4000)]
    index = build_index(rows, paths, model="ViT-B/32", exact_below=exact_below)
    index.save(tmp_path / "photos.index")
    loaded = load_index(tmp_path / "photos.index")
    assert (loaded.kind, loaded.size, loaded.model, loaded.paths, loaded.ef_search) == (
        index.kind, 4000, "ViT-B/32", paths, index.ef_search)  # fmt: skip
    queries = clustered(10, seed=4)
    np.testing.assert_array_equal(loaded.search(queries, 5)[0], index.search(queries, 5)[0])

    loaded.add(more, [f"new_{i}.jpg" for i in range(500)])
    assert loaded.size == 4500 and loaded.paths[4000] == "new_0.jpg"
    top, scores = loaded.search(more[:20], 1)
    assert (top[:, 0] >= 4000).all() and np.allclose(scores[:, 0], 1.0, atol=1e-5)  # each new row finds itself
    with pytest.raises(FileExistsError, match="already exists"):
        loaded.save(tmp_path / "photos.index")
    loaded.save(tmp_path / "photos.index", overwrite=True)
    assert load_index(tmp_path / "photos.index").size == 4500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos.index"]  # nothing left beside it


def test_adding_checks_paths_and_dimensions():
    index = build_index(clustered(100), [f"{i}.jpg" for i in range(100)])
    with pytest.raises(ValueError, match="one path per new row"):
        index.add(clustered(3))
    with pytest.raises(ValueError, match="the new rows have 16 dimensions but the index holds 64"):
        index.add(clustered(3, dimension=16), ["a", "b", "c"])
    with pytest.raises(ValueError, match="row 1 is not an embedding"):
        index.add(np.stack([np.ones(64), np.zeros(64)]), ["a", "b"])
    with pytest.raises(ValueError, match="queries have 16 dimensions"):
        index.search(clustered(1, dimension=16))
    assert index.size == 100
    with pytest.raises(ValueError, match="An approximate index needs at least 100 rows"):
        build_index(clustered(99), kind="approximate")


def test_a_failed_save_leaves_nothing(tmp_path, monkeypatch):
    index = build_index(clustered(50))

    def fail(folder):
        (tmp_path / "marker").write_text("the write began")
        raise OSError("disk full")

    monkeypatch.setattr(index, "_write", fail)
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "photos.index")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker"]


def test_broken_index_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not an index: it has no index.json"):
        load_index(tmp_path / "nothing")
    build_index(clustered(100), exact_below=50).save(tmp_path / "a")
    (tmp_path / "a" / "vectors.faiss").write_bytes(b"not faiss")
    with pytest.raises(ValueError, match="vectors.faiss is not a faiss index"):
        load_index(tmp_path / "a")
    (tmp_path / "a" / "vectors.faiss").unlink()
    with pytest.raises(FileNotFoundError, match="vectors.faiss is missing"):
        load_index(tmp_path / "a")
    build_index(clustered(100)).save(tmp_path / "b")
    metadata = json.loads((tmp_path / "b" / "index.json").read_text())
    (tmp_path / "b" / "index.json").write_text(json.dumps(dict(metadata, size=101, paths=None)))
    with pytest.raises(ValueError, match="vectors.npy holds 100 x 64, not 101 x 64 as index.json says"):
        load_index(tmp_path / "b")
    (tmp_path / "b" / "index.json").write_text("{")
    with pytest.raises(ValueError, match="index.json is not an index description"):
        load_index(tmp_path / "b")


def test_without_faiss_an_approximate_index_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    assert build_index(clustered(100)).kind == "exact"  # exact indexes need nothing more
    with pytest.raises(ImportError, match=r'pip install "keras-clip\[index\]"'):
        build_index(clustered(100), kind="approximate")
    assert index_module.DEFAULT_EXACT_BELOW == 100_000
