"""Embedding many images or texts: pipelines that keep the model busy, with a progress bar."""

import dataclasses
import os

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_clip.errors import CorruptImageError
from keras_clip.image.decoding import decode_image
from keras_clip.image.files import list_image_files
from keras_clip.image.preprocessing import preprocess_image
from keras_clip.text.python_texts import texts_to_tensor
from keras_clip.text.tokenizer import text_tokenizer
from keras_clip.utils.atomic_files import save_npy
from keras_clip.utils.normalization import l2_normalize


def _preprocessing_threads():
    # Images of a batch decoded at once: one per core (a few, bounding the memory of large photographs).
    return max(1, min(os.cpu_count() or 1, 8))


def _without_autotuning(dataset):
    """Fixed parallelism instead of tf.data's autotuning, which can stall for seconds when an earlier
    iterator is torn down (TensorFlow 2.21), e.g. at every call of a function that loops over a dataset."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def check_model_first(model, function_name):
    """Raises a TypeError naming the new argument order when a call passes the data first."""
    if not hasattr(model, "encode_image"):
        raise TypeError(
            f"{function_name} takes the model first, then the data: {function_name}(model, ...); "
            f"got {type(model).__name__} as the model"
        )


def encoded_image_embedder(model, preprocessing=None):
    """`model.visual` on a batch of encoded images, decoded and preprocessed in the same graph (cached per
    `preprocessing`, a `Preprocessing`; None: the model's own).

    Preprocessing in the model's own graph runs it between the model's layers rather than beside
    them: on a few cores, decoding threads running next to the model's matrix products slow both.
    """
    preprocessing = preprocessing or model.preprocessing
    embedders = model.__dict__.setdefault("_encoded_image_embedders", {})  # not tracked by Keras
    if preprocessing not in embedders:
        settings, threads = dataclasses.asdict(preprocessing), _preprocessing_threads()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def embedder(encoded):
            images = preprocess_image(encoded, **settings, parallel_iterations=threads)
            return tf.cast(model.visual(images, training=False), tf.float32)

        embedders[preprocessing] = embedder
    return embedders[preprocessing]


def embed_encoded_batch(embedder, indices, paths, encoded, skip_errors, max_pixels):
    """`(features or None, kept)` of a batch of encoded images (`embedder`: `encoded_image_embedder`'s).

    If an image does not decode, it is found by decoding each eagerly: the first raises its
    CorruptImageError (index and path set), or, with `skip_errors`, all are left out."""
    try:
        return embedder(encoded).numpy(), np.ones(len(encoded), bool)
    except tf.errors.InvalidArgumentError:
        pass
    kept = np.ones(len(encoded), bool)
    for position, (index, path) in enumerate(zip(indices, paths)):
        try:
            decode_image(encoded[position], index=index, path=path, max_pixels=max_pixels)
        except CorruptImageError:
            if not skip_errors:
                raise
            kept[position] = False
    return (embedder(tf.boolean_mask(encoded, kept)).numpy() if kept.any() else None), kept


def _embed_pixel_dataset(model, dataset, batch_size, bar):
    """Pixel arrays [H, W, C] of any sizes: preprocessed in parallel tf.data threads."""
    settings, threads = dataclasses.asdict(model.preprocessing), _preprocessing_threads()
    dataset = dataset.map(lambda image: preprocess_image(image, **settings), num_parallel_calls=threads)
    features = []
    for batch in _without_autotuning(dataset.batch(batch_size).prefetch(2)):
        features.append(np.asarray(model.encode_image(batch)))
        bar.update(len(batch))
    return features


def _embed_encoded_dataset(model, preprocessing, dataset, batch_size, skip_errors, bar):
    """(index, path or "", encoded bytes) elements: read ahead by tf.data, decoded and embedded in the
    model's graph. Returns the features and the paths of the embedded elements."""
    embedder = encoded_image_embedder(model, preprocessing)
    features, kept_paths = [], []
    for indices, paths, encoded in _without_autotuning(dataset.batch(batch_size).prefetch(2)):
        paths = [path.decode() or None for path in paths.numpy()]
        batch_features, kept = embed_encoded_batch(embedder, indices.numpy().tolist(), paths, encoded, skip_errors,
                                                   preprocessing.max_pixels)  # fmt: skip
        if batch_features is not None:
            features.append(batch_features)
        kept_paths.extend(path for path, keep in zip(paths, kept) if keep)
        bar.update(len(paths))
    return features, kept_paths


def _read_files(paths, skip_errors):
    """(index, path, bytes) of each file; with `skip_errors`, missing or unreadable files are left out."""
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string) if paths else tf.zeros([0], tf.string))
    dataset = dataset.enumerate().map(
        lambda index, path: (index, path, tf.io.read_file(path)), num_parallel_calls=2, deterministic=True
    )
    return dataset.ignore_errors() if skip_errors else dataset


def embed_images(model, images, batch_size=32, normalize=True, output=None, skip_errors=False, verbose=True,
                 return_paths=False, max_pixels="model"):  # fmt: skip
    """Image embeddings of files, a folder or a tf.data.Dataset, as a numpy array.

    tf.data reads the files ahead of the model; each batch is then decoded and preprocessed (the
    model's own `model.preprocessing`, by `keras_clip.preprocess_image`, one image per core at a time)
    and embedded in one compiled graph. On 2 cores this runs at about 0.9 of the model's own throughput on
    preprocessed arrays (`benchmarks/embedding.py`).

    Args:
        model: a `keras_clip.CLIP`.
        images: a folder (searched recursively for image files, see `keras_clip.image.files`), a list
            of image paths, or a `tf.data.Dataset` of encoded image bytes (scalar tf.string), of
            (name, encoded bytes) pairs (names are used as paths), or of pixel arrays [H, W, C].
        batch_size: images per model call.
        normalize: L2-normalise the embeddings (what cosine search wants).
        output: optional `.npy` path to write the embeddings to (written to a temporary name,
            then renamed).
        skip_errors: skip unreadable or undecodable files instead of raising (see `return_paths`
            for which were kept).
        verbose: show a progress bar.
        return_paths: also return the list of the embedded files' paths (or names), row by row (None for
            a dataset input without names).
        max_pixels: encoded images of more pixels (width x height, read from their header) are refused
            before they are decoded (skipped with `skip_errors`); None: no limit. "model": the model's
            `preprocessing.max_pixels` (PIL's 178,956,970 unless `keras_clip.load(max_pixels=)` set it).

    Returns:
        float32 numpy array [N, embed_dim], or `(embeddings, paths)` with `return_paths`.

    Raises:
        CorruptImageError: an undecodable image (its `path` and `index` set; `ImageTooLargeError` for
            one of more than `max_pixels`), unless `skip_errors`.
        tf.errors.NotFoundError: a missing file, unless `skip_errors`.

    Example:
    >>> embeddings = keras_clip.embed_images(model, "photos/", output="photos.npy")
    """
    check_model_first(model, "embed_images")
    preprocessing = model.preprocessing
    if max_pixels != "model":
        preprocessing = dataclasses.replace(preprocessing, max_pixels=max_pixels)
    paths = list_image_files(images) if isinstance(images, (str, os.PathLike)) else None
    if paths is None and not isinstance(images, tf.data.Dataset):
        paths = [os.fspath(path) for path in images]
    total = None if paths is None else len(paths)
    kept_paths = None
    with tqdm(total=total, unit="image", desc="Embedding images", disable=not verbose) as bar:
        if paths is not None:
            files = _read_files(paths, skip_errors)
            features, kept_paths = _embed_encoded_dataset(model, preprocessing, files, batch_size, skip_errors, bar)
        elif isinstance(images.element_spec, tuple):  # (name, encoded bytes) pairs
            named = images.enumerate().map(lambda index, element: (index, *element))
            features, kept_paths = _embed_encoded_dataset(model, preprocessing, named, batch_size, skip_errors, bar)
        elif images.element_spec.dtype == tf.string:
            unnamed = images.enumerate().map(lambda index, encoded: (index, tf.constant(""), encoded))
            features, _ = _embed_encoded_dataset(model, preprocessing, unnamed, batch_size, skip_errors, bar)
        else:
            features = _embed_pixel_dataset(model, images, batch_size, bar)
    result = np.concatenate(features) if features else np.zeros((0, model.embed_dim), np.float32)
    if normalize and len(result):
        result = np.asarray(l2_normalize(result))
    if output is not None:
        save_npy(output, result)
    return (result, kept_paths) if return_paths else result


def embed_texts(model, texts, batch_size=256, normalize=True, output=None, verbose=True, tokenizer=None):
    """Text embeddings of a list of strings or a tf.data.Dataset of scalar strings, as a numpy array.

    Args:
        model: a `keras_clip.CLIP`.
        texts: strings, or a `tf.data.Dataset` of scalar tf.string.
        batch_size: texts per model call.
        normalize: L2-normalise the embeddings.
        output: optional `.npy` path to write them to (atomically).
        verbose: show a progress bar.
        tokenizer: the model's tokenizer (`keras_clip.get_tokenizer(name)`; needed for a SigLIP). None: CLIP's.

    Returns:
        float32 numpy array [N, embed_dim].

    Example:
    >>> queries = keras_clip.embed_texts(model, ["a dog on a beach", "a red car"])
    """
    check_model_first(model, "embed_texts")
    total = None
    if not isinstance(texts, tf.data.Dataset):
        texts = list(texts)
        total = len(texts)
        texts = tf.data.Dataset.from_tensor_slices(texts_to_tensor(texts, "embed_texts"))
    tokenizer = text_tokenizer(model, tokenizer, "texts", "embed_texts(model, texts, ")
    dataset = texts.batch(batch_size).map(tokenizer, num_parallel_calls=_preprocessing_threads()).prefetch(2)
    features = []
    with tqdm(total=total, unit="text", desc="Embedding texts", disable=not verbose) as bar:
        for tokens in _without_autotuning(dataset):
            features.append(np.asarray(model.encode_text(tokens)))
            bar.update(len(tokens))
    result = np.concatenate(features) if features else np.zeros((0, model.embed_dim), np.float32)
    if normalize and len(result):
        result = np.asarray(l2_normalize(result))
    if output is not None:
        save_npy(output, result)
    return result
