"""Embedding many images or texts: pipelines that keep the model busy, with a progress bar."""

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


def _preprocessing_threads():
    # Images of a batch decoded at once: one per core (a few, bounding the memory of large photographs).
    return max(1, min(os.cpu_count() or 1, 8))


def _without_autotuning(dataset):
    """Fixed parallelism instead of tf.data's autotuning, which can stall for seconds when an earlier
    iterator is torn down (TensorFlow 2.21), e.g. at every call of a function that loops over a dataset."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def encoded_image_embedder(model):
    """`model.visual` on a batch of encoded images, decoded and preprocessed in the same graph (cached).

    Preprocessing in the model's own graph runs it between the model's layers rather than beside
    them: on a few cores, decoding threads running next to the model's matrix products slow both.
    """
    embedder = model.__dict__.get("_encoded_image_embedder")
    if embedder is None:
        resolution, threads = model.image_resolution, _preprocessing_threads()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def embedder(encoded):
            images = preprocess_image(encoded, resolution, parallel_iterations=threads)
            return tf.cast(model.visual(images, training=False), tf.float32)

        model.__dict__["_encoded_image_embedder"] = embedder  # not tracked by Keras
    return embedder


def _embed_encoded_batch(embedder, encoded, names, skip_errors):
    """Embeds a batch; on an undecodable image, finds it: skipped, or named in the error."""
    try:
        return embedder(encoded).numpy(), np.ones(len(names), bool)
    except tf.errors.InvalidArgumentError:
        pass
    features, kept = [], []
    for index, name in enumerate(names):
        try:
            features.append(embedder(encoded[index : index + 1]).numpy())
            kept.append(True)
        except tf.errors.InvalidArgumentError as error:
            if not skip_errors:
                message = error.message.replace("the image at index 0 of the batch", name)
                raise tf.errors.InvalidArgumentError(None, None, f"Could not embed {name}: {message}") from None
            kept.append(False)
    return np.concatenate(features) if features else None, np.asarray(kept)


def _embed_pixel_dataset(dataset, model, batch_size, bar):
    """Pixel arrays [H, W, C] of any sizes: preprocessed in parallel tf.data threads."""
    resolution, threads = model.image_resolution, _preprocessing_threads()
    dataset = dataset.map(lambda image: preprocess_image(image, resolution), num_parallel_calls=threads)
    features = []
    for batch in _without_autotuning(dataset.batch(batch_size).prefetch(2)):
        features.append(np.asarray(model.encode_image(batch)))
        bar.update(len(batch))
    return features


def _embed_encoded_dataset(dataset, model, batch_size, skip_errors, bar):
    """(name, encoded bytes) elements: read ahead by tf.data, decoded and embedded in the model's graph."""
    embedder = encoded_image_embedder(model)
    features, kept = [], []
    for names, encoded in _without_autotuning(dataset.batch(batch_size).prefetch(2)):
        names = [name.decode() for name in names.numpy()]
        batch_features, batch_kept = _embed_encoded_batch(embedder, encoded, names, skip_errors)
        if batch_features is not None:
            features.append(batch_features)
        kept.extend(name for name, keep in zip(names, batch_kept) if keep)
        bar.update(len(names))
    return features, kept


def _named_files(paths, skip_errors):
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string) if paths else tf.zeros([0], tf.string))
    dataset = dataset.map(lambda path: (path, tf.io.read_file(path)), num_parallel_calls=2, deterministic=True)
    return dataset.ignore_errors() if skip_errors else dataset  # missing or unreadable files


def _named_elements(dataset):
    return dataset.enumerate().map(
        lambda index, encoded: (tf.strings.join(["dataset element ", tf.strings.as_string(index)]), encoded)
    )


def embed_images(
    images, model, batch_size=32, normalize=True, output=None, skip_errors=False, progress=True, return_paths=False
):
    """Image embeddings of files, a folder or a tf.data.Dataset, as a numpy array.

    tf.data reads the files ahead of the model; each batch is then decoded and preprocessed
    (OpenAI's pipeline, `keras_clip.preprocess_image`, one image per core at a time) and embedded
    in one compiled graph. On 2 cores this runs at about 0.9 of the model's own throughput on
    preprocessed arrays (`benchmarks/embedding.py`).

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

    Raises:
        tf.errors.InvalidArgumentError: an undecodable image (named by its path), unless `skip_errors`.
        tf.errors.NotFoundError: a missing file, unless `skip_errors`.

    Example:
    >>> embeddings = keras_clip.embed_images("photos/", model, output="photos.npy")
    """
    paths = image_files(images) if isinstance(images, (str, os.PathLike)) else None
    if paths is None and not isinstance(images, tf.data.Dataset):
        paths = [os.fspath(path) for path in images]
    total = None if paths is None else len(paths)
    with tqdm(total=total, unit="image", desc="Embedding images", disable=not progress) as bar:
        if paths is not None:
            files = _named_files(paths, skip_errors)
            features, kept = _embed_encoded_dataset(files, model, batch_size, skip_errors, bar)
        elif images.element_spec.dtype == tf.string:
            features, _ = _embed_encoded_dataset(_named_elements(images), model, batch_size, skip_errors, bar)
        else:
            features = _embed_pixel_dataset(images, model, batch_size, bar)
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
    dataset = texts.batch(batch_size).map(tokenizer, num_parallel_calls=_preprocessing_threads()).prefetch(2)
    features = []
    with tqdm(total=total, unit="text", desc="Embedding texts", disable=not progress) as bar:
        for tokens in _without_autotuning(dataset):
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
