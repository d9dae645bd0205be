"""A search index over embeddings: exact below a size, approximate (faiss) above it, tuned to a recall target.

Small collections are searched exactly (a matrix product over every row; nothing beyond numpy). From
`exact_below` rows on, `build_index` makes a faiss HNSW graph (each row linked to its near neighbours,
searched greedily from coarse layers to fine): a query visits a few thousand rows instead of all.
How many candidates a search keeps (`ef_search`, faiss' efSearch) is chosen when the index is built:
the fewest whose recall@10 against exact search reaches the target for 500 sampled rows held out of
the graph while it is measured (then added). HNSW rather than faiss' inverted lists (IVF), measured
on clustered 512-d rows (benchmarks/search.py): on 1M rows IVF (2,000 lists) needed 367 lists per query
for recall 0.95 (13.2 ms), HNSW 9.7 ms; on 200,000 rows IVF 0.7 ms, HNSW 0.2 ms. faiss is an optional
extra (`pip install "keras-clip[index]"`): a well-kept library for exactly this, faster than anything
written here would be.

An index is a folder: `index.json` (what it is, the model that made the vectors, each row's path,
the measured recall) and `vectors.npy` (exact) or `vectors.faiss` (approximate). Rows are
L2-normalised when added; scores are cosine similarities.
"""

import json
import os

import numpy as np
from tqdm import tqdm

from keras_clip.serving.search import check_embedding_rows, check_top_k, read_embedding_rows, top_inner_products
from keras_clip.utils.atomic_files import atomic_directory, save_json
from keras_clip.utils.normalization import l2_normalize

METADATA_FILE = "index.json"
EXACT_FILE = "vectors.npy"
APPROXIMATE_FILE = "vectors.faiss"
KINDS = ("exact", "approximate")
DEFAULT_EXACT_BELOW = 100_000
DEFAULT_RECALL = 0.95
RECALL_AT = 10
_TUNING_QUERIES = 500
_LINKS_PER_ROW = 32  # HNSW's M: on 200,000 rows, 32 reached recall 0.98 where 16 reached 0.91 (efSearch 64)
_MAX_EF_SEARCH = 4096
_MIN_APPROXIMATE_ROWS = 100  # a tenth of them are held out to measure the recall
_ADDED_PER_STEP = 50_000  # rows added to the graph between progress-bar updates


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError(
            'Approximate indexes need faiss: pip install "keras-clip[index]" (or faiss-cpu / faiss-gpu)'
        ) from None
    return faiss


def _normalized_rows(embeddings, name="embeddings"):
    rows = np.asarray(embeddings, np.float32)
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty [N, D] array, got shape {rows.shape}")
    check_embedding_rows(rows, name)
    return np.ascontiguousarray(np.asarray(l2_normalize(rows)), np.float32)


class EmbeddingIndex:
    """Cosine top-k search over embedding rows, exact or approximate; made by `build_index` or `load_index`.

    Args:
        kind: "exact" or "approximate".
        vectors: the L2-normalised rows (exact) or a faiss index holding them (approximate).
        paths: what each row is (e.g. its image file), or None.
        model: the model that made the embeddings (a name or path), or None.
        ef_search: candidates a search keeps (faiss' efSearch; approximate only).
        recall: {"target": ..., "measured": ...} found when `ef_search` was chosen (approximate only).

    Example:
    >>> embeddings, files = keras_clip.embed_images(model, "photos/", verbose=False, return_paths=True)
    >>> index = keras_clip.build_index(embeddings, paths=files, model="ViT-B/32")
    >>> rows, scores = index.search(keras_clip.embed_texts(model, ["a dog"], verbose=False), top_k=5)
    >>> rows.shape, index.kind
    ((1, 5), 'exact')
    >>> index.save("photos.index")
    """

    def __init__(self, kind, vectors, paths=None, model=None, ef_search=None, recall=None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.vectors, self.paths, self.model = kind, vectors, paths, model
        self.ef_search, self.recall = ef_search, recall

    @property
    def size(self):
        return int(self.vectors.ntotal if self.kind == "approximate" else len(self.vectors))

    @property
    def dimension(self):
        return int(self.vectors.d if self.kind == "approximate" else self.vectors.shape[1])

    def search(self, queries, top_k=5):
        """`(indices, scores)` of the `top_k` most similar rows for each query row, most similar first.

        Args:
            queries: [Q, D] query embeddings (normalised here).
            top_k: rows per query (at most the index's size).

        Returns:
            int64 [Q, k] row indices and float32 [Q, k] cosine similarities.
        """
        check_top_k(top_k)
        queries = _normalized_rows(queries, "queries")
        if queries.shape[1] != self.dimension:
            raise ValueError(f"queries have {queries.shape[1]} dimensions but the index holds {self.dimension}")
        top_k = min(int(top_k), self.size)
        if self.kind == "exact":
            return top_inner_products(self.vectors, queries, top_k)
        scores, indices = self.vectors.search(queries, top_k, params=_breadth(max(self.ef_search, top_k)))
        return indices, scores

    def vector(self, row):
        """The stored (L2-normalised) embedding of a row: float32 [D]. For "more like this" queries."""
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < self.size:
            raise IndexError(f"row must be an int in [0, {self.size}), got {row!r}")
        if self.kind == "exact":
            return np.array(self.vectors[row])
        return self.vectors.reconstruct(int(row))

    def add(self, embeddings, paths=None):
        """Adds rows (normalised here) after the existing ones; `paths` are required when the index has them.

        The approximate index links the new rows into its graph and keeps its `ef_search`: the measured
        recall was measured before; rebuild the index when the collection changes much.
        """
        rows = _normalized_rows(embeddings)
        if rows.shape[1] != self.dimension:
            raise ValueError(f"the new rows have {rows.shape[1]} dimensions but the index holds {self.dimension}")
        if (self.paths is None) != (paths is None) or (paths is not None and len(paths) != len(rows)):
            has = "has" if self.paths is not None else "has no"
            raise ValueError(f"pass one path per new row exactly when the index has paths (it {has} paths; "
                             f"{len(rows)} new rows)")  # fmt: skip
        if self.kind == "exact":
            self.vectors = np.concatenate([self.vectors, rows])
        else:
            _add_rows(self.vectors, rows, np.arange(self.size, self.size + len(rows)), verbose=False)
        if paths is not None:
            self.paths = list(self.paths) + [os.fspath(path) for path in paths]

    def save(self, folder, overwrite=False):
        """Writes the index to a folder, all of it or nothing (written aside, then renamed into place).

        Args:
            folder: the index's folder; it must not exist (or be empty) unless `overwrite`.
            overwrite: replace an existing folder at `folder` once the new index is whole.
        """
        with atomic_directory(folder, replace=overwrite) as temporary:
            self._write(temporary)

    def _write(self, folder):
        if self.kind == "exact":
            np.save(os.path.join(folder, EXACT_FILE), self.vectors)
        else:
            _faiss().write_index(self.vectors, os.path.join(folder, APPROXIMATE_FILE))
        save_json(os.path.join(folder, METADATA_FILE), {
            "kind": self.kind, "size": self.size, "dimension": self.dimension, "model": self.model,
            "paths": self.paths, "ef_search": self.ef_search, "recall": self.recall,
        })  # fmt: skip


def _breadth(ef_search):
    """faiss' search parameters for one call (not set on the index: concurrent searches may differ)."""
    parameters = _faiss().SearchParametersHNSW()
    parameters.efSearch = int(ef_search)
    return parameters


def _tune_ef_search(index, rows, indexed, held_out, target):
    """The smallest efSearch whose recall@10 for the `held_out` rows (the `indexed` ones are in `index`, these
    not yet) reaches `target`:
    doubling until it does, then bisecting. Returns (ef_search, measured recall).

    Held-out rows, not rows of the graph: a row in the graph is found through its own links, and its
    neighbours with it (measured: recall 0.97 for rows of the graph where fresh queries got 0.71).
    """
    queries = rows[held_out]
    expected, _ = top_inner_products(rows[indexed], queries, RECALL_AT)
    expected = [set(row) for row in indexed[expected]]

    def recall(ef_search):
        _, found = index.search(queries, RECALL_AT, params=_breadth(ef_search))
        return float(np.mean([len(e & set(f)) / len(e) for e, f in zip(expected, found)]))

    low, high = RECALL_AT - 1, RECALL_AT  # a search keeps at least its k results
    measured = recall(high)
    while measured < target and high < _MAX_EF_SEARCH:
        low, high = high, min(_MAX_EF_SEARCH, high * 2)
        measured = recall(high)
    while high - low > 1:
        middle = (low + high) // 2
        middle_recall = recall(middle)
        if middle_recall >= target:
            high, measured = middle, middle_recall
        else:
            low = middle
    return high, measured


def _add_rows(index, rows, ids, verbose):
    with tqdm(total=len(rows), unit="row", desc="Indexing", disable=not verbose) as bar:
        for start in range(0, len(rows), _ADDED_PER_STEP):
            index.add_with_ids(rows[start : start + _ADDED_PER_STEP], ids[start : start + _ADDED_PER_STEP])
            bar.update(min(_ADDED_PER_STEP, len(rows) - start))


def build_index(embeddings, paths=None, model=None, kind="auto", recall=DEFAULT_RECALL,
                exact_below=DEFAULT_EXACT_BELOW, seed=0, verbose=True):  # fmt: skip
    """An `EmbeddingIndex` of the rows: exact below `exact_below` rows, approximate (faiss HNSW) from there on.

    Args:
        embeddings: [N, D] embeddings (normalised here).
        paths: what each row is (N strings), kept with the index; or None.
        model: the model that made the embeddings, kept with the index (so queries are embedded alike).
        kind: "auto" (by `exact_below`), "exact" or "approximate".
        recall: the recall@10 against exact search the approximate index is tuned to (0 < recall <= 1).
        exact_below: collections with fewer rows are searched exactly.
        seed: which rows are the tuning queries.
        verbose: show a progress bar while rows are linked into the graph.

    Returns:
        An `EmbeddingIndex`; `index.recall["measured"]` is what tuning found.

    Example:
    >>> index = build_index(np.random.default_rng(0).normal(size=(2000, 64)), kind="approximate", verbose=False)
    >>> index.kind, index.size, index.recall["measured"] >= 0.95
    ('approximate', 2000, True)
    """
    if not 0.0 < recall <= 1.0:
        raise ValueError(f"recall must be in (0, 1], got {recall!r}")
    if kind not in ("auto",) + KINDS:
        raise ValueError(f"kind must be 'auto', 'exact' or 'approximate', got {kind!r}")
    rows = _normalized_rows(embeddings)
    if paths is not None:
        paths = [os.fspath(path) for path in paths]
        if len(paths) != len(rows):
            raise ValueError(f"{len(rows)} embeddings but {len(paths)} paths")
    if kind == "exact" or (kind == "auto" and len(rows) < exact_below):
        return EmbeddingIndex("exact", rows, paths, model)
    faiss = _faiss()
    if len(rows) < _MIN_APPROXIMATE_ROWS:
        raise ValueError(f"An approximate index needs at least {_MIN_APPROXIMATE_ROWS} rows to measure its recall "
                         f"(got {len(rows)}): use kind='exact'")  # fmt: skip
    # Row ids through an id map: the tuning rows join the graph last but keep their positions.
    index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(rows.shape[1], _LINKS_PER_ROW, faiss.METRIC_INNER_PRODUCT))
    held_out = np.sort(np.random.default_rng(seed).choice(len(rows), min(_TUNING_QUERIES, len(rows) // 10),
                                                          replace=False))  # fmt: skip
    indexed = np.setdiff1d(np.arange(len(rows)), held_out)
    _add_rows(index, rows[indexed], indexed, verbose)
    ef_search, measured = _tune_ef_search(index, rows, indexed, held_out, recall)
    _add_rows(index, rows[held_out], held_out, verbose=False)
    return EmbeddingIndex("approximate", index, paths, model, ef_search, {"target": recall, "measured": measured})


def load_index(folder):
    """The `EmbeddingIndex` saved in `folder`, checked against its metadata.

    Raises:
        FileNotFoundError: the folder or one of its files is missing.
        ValueError: a file is corrupt, or the files disagree.

    Example:
    >>> build_index(np.eye(4), paths=["a.jpg", "b.jpg", "c.jpg", "d.jpg"]).save("letters.index")
    >>> load_index("letters.index").paths
    ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg']
    """
    folder = os.fspath(folder)
    metadata_path = os.path.join(folder, METADATA_FILE)
    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(
            f"{folder} is not an index: it has no {METADATA_FILE} (build one with `keras-clip index`)"
        )
    try:
        with open(metadata_path, encoding="utf-8") as file:
            metadata = json.load(file)
        kind, size, dimension = metadata["kind"], metadata["size"], metadata["dimension"]
        paths, model, ef_search, recall = (metadata[key] for key in ("paths", "model", "ef_search", "recall"))
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise ValueError(f"{metadata_path} is not an index description: {error}") from None
    if kind not in KINDS:
        raise ValueError(f"{metadata_path}: unknown kind {kind!r}")
    if paths is not None and (not isinstance(paths, list) or len(paths) != size
                              or not all(isinstance(path, str) for path in paths)):  # fmt: skip
        raise ValueError(f"{metadata_path}: 'paths' must list one path (a string) per row ({size})")
    if kind == "exact":
        vectors = read_embedding_rows(_existing(folder, EXACT_FILE))
        if vectors.shape != (size, dimension):
            raise ValueError(f"{folder}/{EXACT_FILE} holds {vectors.shape[0]} x {vectors.shape[1]}, not {size} x "
                             f"{dimension} as {METADATA_FILE} says")  # fmt: skip
    else:
        try:
            vectors = _faiss().read_index(_existing(folder, APPROXIMATE_FILE))
        except RuntimeError as error:
            raise ValueError(f"{folder}/{APPROXIMATE_FILE} is not a faiss index: {error}") from None
        if vectors.ntotal != size or vectors.d != dimension:
            raise ValueError(f"{folder}/{APPROXIMATE_FILE} holds {vectors.ntotal} x {vectors.d}, not {size} x "
                             f"{dimension} as {METADATA_FILE} says")  # fmt: skip
    return EmbeddingIndex(kind, vectors, paths, model, ef_search, recall)


def _existing(folder, name):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: the index at {folder} is incomplete")
    return path
