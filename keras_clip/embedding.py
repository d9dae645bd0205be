"""Embedding many images or texts: tf.data pipelines that keep the model busy, with a progress bar."""

import json
import os

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_clip.preprocessing import preprocess_image
from keras_clip.tokenizer import Tokenizer

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")


def image_files(folder):
    """Image files under `folder` (recursively), sorted, by their suffix."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder} is not a folder")
    paths = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_SUFFIXES)
    )
    if not paths:
        raise ValueError(f"No image files ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return paths


def _normalize(features):
    return features / np.linalg.norm(features, axis=-1, keepdims=True)


def _save_atomically(path, array):
    temporary = f"{path}.tmp-{os.getpid()}.npy"
    np.save(temporary, array)
    os.replace(temporary, path)


def embed_images(
    images, model, batch_size=32, normalize=True, output=None, skip_errors=False, progress=True, return_paths=False
):
    """Image embeddings of files, a folder or a tf.data.Dataset, as a numpy array.

    Files are read and preprocessed (OpenAI's pipeline, `keras_clip.preprocess_image`) by a
    parallel tf.data pipeline that prefetches while the model runs on the previous batch.

    Args:
        images: a folder (searched recursively for image files), a list of image paths, or a
            `tf.data.Dataset` of encoded image bytes (scalar tf.string) or pixel arrays [H, W, C].
        model: a `keras_clip.CLIP`.
        batch_size: images per model call.
        normalize: L2-normalise the embeddings (what cosine search wants).
        output: optional `.npy` path to write the embeddings to (written to a temporary name,
            then renamed).
        skip_errors: skip unreadable or undecodable files instead of raising (see `return_paths`
            for which were kept).
        progress: show a progress bar.
        return_paths: also return the list of the embedded files' paths, row by row (None for a
            dataset input).

    Returns:
        float32 numpy array [N, embed_dim], or `(embeddings, paths)` with `return_paths`.

    Example:
    >>> embeddings = keras_clip.embed_images("photos/", model, output="photos.npy")
    """
    paths = image_files(images) if isinstance(images, (str, os.PathLike)) else None
    if paths is None and not isinstance(images, tf.data.Dataset):
        paths = [os.fspath(path) for path in images]
    resolution = model.image_resolution
    if paths is not None:
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string) if paths else tf.zeros([0], tf.string))
        dataset = dataset.map(
            lambda path: (path, preprocess_image(tf.io.read_file(path), resolution)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        total = len(paths)
    else:
        dataset = images.map(
            lambda image: (tf.constant(""), preprocess_image(image, resolution)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        total = None
    if skip_errors:
        dataset = dataset.ignore_errors()
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    features, kept = [], []
    with tqdm(total=total, unit="image", desc="Embedding images", disable=not progress) as bar:
        for batch_paths, batch_images in dataset:
            features.append(np.asarray(model.encode_image(batch_images)))
            kept.extend(path.decode() for path in batch_paths.numpy())
            bar.update(len(batch_paths))
    result = np.concatenate(features) if features else np.zeros((0, model.embed_dim), np.float32)
    if normalize and len(result):
        result = _normalize(result)
    if output is not None:
        _save_atomically(output, result)
    if return_paths:
        return result, (kept if paths is not None else None)
    return result


def embed_texts(texts, model, batch_size=256, normalize=True, output=None, progress=True):
    """Text embeddings of a list of strings or a tf.data.Dataset of scalar strings, as a numpy array.

    Args:
        texts: strings, or a `tf.data.Dataset` of scalar tf.string.
        model: a `keras_clip.CLIP`.
        batch_size: texts per model call.
        normalize: L2-normalise the embeddings.
        output: optional `.npy` path to write them to (atomically).
        progress: show a progress bar.

    Returns:
        float32 numpy array [N, embed_dim].

    Example:
    >>> queries = keras_clip.embed_texts(["a dog on a beach", "a red car"], model)
    """
    total = None
    if not isinstance(texts, tf.data.Dataset):
        texts = list(texts)
        total = len(texts)
        texts = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string) if texts else tf.zeros([0], tf.string))
    tokenizer = Tokenizer(context_length=model.context_length, truncate=True)
    dataset = texts.batch(batch_size).map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    features = []
    with tqdm(total=total, unit="text", desc="Embedding texts", disable=not progress) as bar:
        for tokens in dataset:
            features.append(np.asarray(model.encode_text(tokens)))
            bar.update(len(tokens))
    result = np.concatenate(features) if features else np.zeros((0, model.embed_dim), np.float32)
    if normalize and len(result):
        result = _normalize(result)
    if output is not None:
        _save_atomically(output, result)
    return result


def write_index(path, paths, model_source):
    """Write the side-car JSON of an embeddings file: which model made it and each row's file."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump({"model": model_source, "paths": list(paths)}, file, indent=1)
    os.replace(temporary, path)


def index_path(embeddings_path):
    """`photos.npy` -> `photos.json`: where the paths and model of an embeddings file are kept."""
    return os.path.splitext(embeddings_path)[0] + ".json"


def search(embeddings, query_embeddings, top_k=5):
    """Cosine top-k: for each query row, `(indices, scores)` of the most similar embedding rows."""
    scores = _normalize(np.asarray(query_embeddings, np.float32)) @ _normalize(np.asarray(embeddings, np.float32)).T
    top_k = min(top_k, scores.shape[1])
    indices = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    return indices, np.take_along_axis(scores, indices, axis=1)
