"""Exact cosine search over embeddings, and the side-car JSON (metadata) that says what each row of an
embeddings file is and which model made it."""

import json
import os

import numpy as np

from keras_clip.utils.atomic_files import save_json
from keras_clip.utils.normalization import l2_normalize


def search(embeddings, query_embeddings, top_k=5):
    """Cosine top-k: for each query row, `(indices, scores)` of the most similar embedding rows.

    Args:
        embeddings: [N, D] embeddings to search (normalised here).
        query_embeddings: [Q, D] queries.
        top_k: rows returned per query (at most N).

    Returns:
        `(indices, scores)`, int [Q, k] and float32 [Q, k], most similar first.

    Example:
    >>> image_embeddings = keras_clip.embed_images(model, "photos/")
    >>> rows, scores = keras_clip.search(image_embeddings, keras_clip.embed_texts(model, ["a dog"]), top_k=3)
    >>> rows.shape, scores.shape
    ((1, 3), (1, 3))
    """
    check_top_k(top_k)
    embeddings, queries = np.asarray(embeddings, np.float32), np.asarray(query_embeddings, np.float32)
    if embeddings.ndim != 2 or queries.ndim != 2 or embeddings.shape[1] != queries.shape[1]:
        raise ValueError(
            f"embeddings [N, D] and queries [Q, D] must share D; got shapes {embeddings.shape} and {queries.shape}"
        )
    return top_inner_products(np.asarray(l2_normalize(embeddings)), np.asarray(l2_normalize(queries)), int(top_k))


def check_top_k(top_k):
    """Raises a ValueError unless `top_k` is a positive int."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")


def check_embedding_rows(rows, name):
    """Raises a ValueError naming the first row of float [N, D] `rows` that is not finite or is all zero."""
    bad = ~np.isfinite(rows).all(axis=1) | ~rows.any(axis=1)
    if bad.any():
        raise ValueError(f"{name}: row {int(np.flatnonzero(bad)[0])} is not an embedding (not finite, or all zero); "
                         f"{int(bad.sum())} such row(s)")  # fmt: skip


def top_inner_products(vectors, queries, top_k, block_rows=65536):
    """`(indices, scores)` of each query's `top_k` largest inner products with `vectors`, largest first.

    Exact, over blocks of `block_rows` vectors (memory: queries x block_rows scores); ties go to the
    lower index.

    Args:
        vectors: float32 [N, D]; queries: float32 [Q, D]; top_k: positive int (at most N are returned).
    """
    top_k = min(top_k, len(vectors))
    best_indices = np.zeros((len(queries), 0), np.int64)
    best_scores = np.zeros((len(queries), 0), np.float32)
    for start in range(0, len(vectors), block_rows):
        scores = queries @ vectors[start : start + block_rows].T
        if scores.shape[1] > top_k:
            candidates = np.argpartition(-scores, top_k - 1, axis=1)[:, :top_k]
        else:
            candidates = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        indices = np.concatenate([best_indices, candidates + start], axis=1)
        scores = np.concatenate([best_scores, np.take_along_axis(scores, candidates, axis=1)], axis=1)
        order = np.lexsort((indices, -scores), axis=1)[:, :top_k]  # by score, then by index
        best_indices, best_scores = np.take_along_axis(indices, order, 1), np.take_along_axis(scores, order, 1)
    return best_indices, best_scores


def metadata_path(embeddings_path):
    """`photos.npy` -> `photos.json`: where the paths and model of an embeddings file are kept."""
    return os.path.splitext(os.fspath(embeddings_path))[0] + ".json"


def write_metadata(embeddings_path, paths, model_source):
    """Writes the side-car JSON of an embeddings file: which model made it and each row's file."""
    save_json(metadata_path(embeddings_path), {"model": model_source, "paths": list(paths)})


def read_embeddings(embeddings_path):
    """`(embeddings, paths, model source)` of an embeddings file and its side-car JSON, checked.

    Everything is checked before anything is used: the `.npy` header against the file's size (its data
    is mapped, never allocated from the header's word), float rows that are finite and not zero, a JSON
    object with a model name and one path (a string) per row. Memory: the file's size.

    Raises:
        FileNotFoundError: the `.npy` or its `.json` is missing.
        ValueError: either file is corrupt, or they disagree (rows vs paths).
    """
    embeddings_path = os.fspath(embeddings_path)
    sidecar = metadata_path(embeddings_path)
    for path in (embeddings_path, sidecar):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} does not exist (write both files with `keras-clip embed`)")
    embeddings = read_embedding_rows(embeddings_path)
    try:
        with open(sidecar, encoding="utf-8") as file:
            metadata = json.load(file)
        paths, model_source = metadata["paths"], metadata["model"]
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise ValueError(
            f"{sidecar} is not the metadata of an embeddings file (JSON with 'model' and 'paths'): {error}"
        ) from None
    if not isinstance(model_source, str) or not model_source:
        raise ValueError(f"{sidecar}: 'model' must name the model that made the embeddings, got {model_source!r:.80}")
    if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
        raise ValueError(f"{sidecar}: 'paths' must be a list of file paths (strings)")
    if len(paths) != len(embeddings):
        raise ValueError(f"{embeddings_path} has {len(embeddings)} rows but {sidecar} lists {len(paths)} paths")
    return embeddings, paths, model_source


def read_embedding_rows(path):
    """The float32 [N, D] rows of an `.npy` file, checked (see `read_embeddings`); errors name the file."""
    try:
        # Mapped: a header claiming more data than the file holds is refused instead of allocated.
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npy file: {error}") from None
    if not isinstance(mapped, np.ndarray):  # an .npz archive
        mapped.close()
        raise ValueError(f"{path} is not a readable .npy file: it is an .npz archive")
    if mapped.ndim != 2 or not np.issubdtype(mapped.dtype, np.floating) or mapped.dtype.itemsize > 8:
        raise ValueError(f"{path} holds {mapped.dtype} {mapped.shape}, not float embeddings [N, D]")
    if mapped.shape[0] == 0 or mapped.shape[1] == 0:
        raise ValueError(f"{path} holds no embeddings (shape {mapped.shape})")
    embeddings = np.array(mapped, dtype=np.float32)
    del mapped
    check_embedding_rows(embeddings, path)
    return embeddings
