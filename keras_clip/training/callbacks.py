"""Callbacks that evaluate CLIP on validation data after epochs and put the numbers in the epoch logs.

The numbers are added to the `logs` dict that Keras hands every callback at an epoch's end, so
`History`, the progress bar, `TensorBoard`, `CSVLogger`, `EarlyStopping`, `ReduceLROnPlateau` and
`ModelCheckpoint(monitor=...)` see them. Keras calls callbacks in list order (`History` and the
progress bar last): list these before the callbacks that read their numbers. The evaluation itself
is `keras_clip.evaluation`'s (`evaluate_zero_shot`, `evaluate_image_folder`, `evaluate_retrieval`).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from keras_clip import evaluation
from keras_clip.data.sources import read_caption_index

MAX_TOP_K = 5  # keras_clip.evaluation keeps each image's 5 most probable classes

class EpochEvaluation(keras.callbacks.Callback):
    """Base class: runs `evaluate(model)` after every `frequency`-th epoch and adds its numbers to the logs.

    Subclasses define `evaluate(model) -> dict` of log names (with the prefix) to floats.
    `latest` holds the numbers of the last evaluation.
    """

    def __init__(self, frequency=1):
        super().__init__()
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
            raise ValueError(f"frequency must be a positive int (every how many epochs), got {frequency!r}")
        self.frequency = frequency
        self.latest = {}

    def evaluate(self, model):
        raise NotImplementedError

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.frequency:
            return
        self.latest = self.evaluate(self.model)
        if logs is not None:
            logs.update(self.latest)


def _check_ks(ks, what, largest=None):
    ks = (ks,) if isinstance(ks, int) else tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ValueError(f"{what} must be positive ints, got {ks!r}")
    if largest is not None and max(ks) > largest:
        raise ValueError(f"{what} can be at most {largest} (the evaluation keeps the {largest} best classes), got {ks}")
    return tuple(int(k) for k in ks)


def _is_path(data):
    return isinstance(data, (str, os.PathLike))


class ZeroShotAccuracy(EpochEvaluation):
    """Zero-shot top-k accuracy on labelled validation images, logged after epochs.

    After each epoch (or every `frequency` epochs) a `ZeroShotClassifier` is built from the model
    being trained, the class names and the templates, and `keras_clip.evaluation` measures its
    accuracy; the logs get `f"{prefix}zero_shot_top{k}"` for each k in `top_k` (fractions in [0, 1]).
    The last `ZeroShotResults` is kept in `results` (per-class table, confusion matrix).

    Args:
        data: the validation images: a `tf.data.Dataset` of `(image, label)` or `{"image", "label"}`
            (batched or not); an array (or list) of images with `labels`; or the path of a folder with
            one subfolder of images per class (see `keras_clip.evaluation.evaluate_image_folder`).
            Images are encoded bytes or pixels [H, W, C] (uint8, or float in [0, 255]) of any size,
            preprocessed here like OpenAI's evaluation; with `preprocessed=True`, model inputs [R, R, 3].
        labels: int labels in 0..len(classnames)-1, when `data` is an array of images.
        classnames: the name of each label (a folder's subfolder names are used if not given).
        templates: prompt templates with one `{}`, or "simple" (OpenAI's 7, the default: quicker to
            embed every epoch than "imagenet", OpenAI's 80).
        top_k: the k of top-k accuracy (each at most 5).
        prefix: start of the log names, e.g. "val_" -> "val_zero_shot_top1".
        batch_size: images per forward pass.
        preprocessed: the images are already preprocessed model inputs.
        skip_errors: skip (and count) images that cannot be decoded instead of raising `CorruptImageError`.
        frequency: evaluate after every `frequency`-th epoch (other epochs' logs lack the numbers).
        verbose: show the evaluation's progress bars.

    Example:
    >>> zero_shot = keras_clip.training.ZeroShotAccuracy(val_images, val_labels, ["cat", "dog"])
    >>> stop = keras.callbacks.EarlyStopping("val_zero_shot_top1", mode="max", patience=1)
    >>> history = model.fit(dataset, epochs=20, callbacks=[zero_shot, stop])
    >>> history.history["val_zero_shot_top1"]  # e.g. [0.62, 0.71, 0.7]: stopped after the first epoch without progress
    """

    def __init__(self, data, labels=None, classnames=None, templates="simple", top_k=(1, 5), prefix="val_",
                 batch_size=64, preprocessed=False, skip_errors=False, frequency=1, verbose=False):  # fmt: skip
        super().__init__(frequency)
        self.top_k = _check_ks(top_k, "top_k", MAX_TOP_K)
        self.folder = None
        if _is_path(data):
            if labels is not None:
                raise ValueError("An image folder's labels are its subfolders: do not pass labels with a folder")
            if not os.path.isdir(data):
                raise ValueError(f"{os.fspath(data)!r} is not a folder of class subfolders")
            self.folder, self.dataset = os.fspath(data), None
        else:
            if classnames is None:
                raise ValueError("ZeroShotAccuracy needs classnames=[...]: the name of each label")
            self.dataset = _labelled_dataset(data, labels)
        self.classnames = None if classnames is None else list(classnames)
        self.templates = templates
        self.prefix = prefix
        self.batch_size = batch_size
        self.preprocessed = preprocessed
        self.skip_errors = skip_errors
        self.verbose = verbose
        self.results = None

    def evaluate(self, model):
        options = dict(templates=self.templates, batch_size=self.batch_size, skip_errors=self.skip_errors,
                       verbose=self.verbose)  # fmt: skip
        if self.folder is not None:
            self.results = evaluation.evaluate_image_folder(model, self.folder, self.classnames, **options)
        else:
            self.results = evaluation.evaluate_zero_shot(
                model, self.dataset, self.classnames, preprocessed=self.preprocessed, **options
            )
        return {f"{self.prefix}zero_shot_top{k}": self.results.accuracy(k) for k in self.top_k}


def _labelled_dataset(data, labels):
    if isinstance(data, tf.data.Dataset):
        if labels is not None:
            raise ValueError("A dataset carries its own labels: pass (image, label) elements and no labels=")
        return data
    if labels is None:
        raise ValueError("Images given as an array need labels=[...], one int per image")
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D array of ints, got {labels.dtype} of shape {labels.shape}")
    if len(data) != len(labels):
        raise ValueError(f"{len(data)} images but {len(labels)} labels")
    return tf.data.Dataset.from_tensor_slices((data, labels.astype(np.int64)))


class RetrievalRecall(EpochEvaluation):
    """Image <-> text retrieval recall@K on validation (image, caption) pairs, logged after epochs.

    After each epoch (or every `frequency` epochs) `keras_clip.evaluation.evaluate_retrieval` ranks
    every caption for every image and every image for every caption; the logs get
    `f"{prefix}image_to_text_recall_at_{k}"` and `f"{prefix}text_to_image_recall_at_{k}"` for each k
    (fractions in [0, 1]). The last `RetrievalResults` is kept in `results` (`results.skipped` names the
    images left out with `skip_errors`).

    Args:
        data: the validation pairs: a `tf.data.Dataset` of `(image, caption or captions)` or
            `{"image", "caption"}`, one image per element (or batches); an array or list of images
            with `captions`; or a caption file (CSV/TSV/JSON lines) or captioned folder as
            `keras_clip.data.caption_dataset` reads them (an image on several rows has several captions).
            Images: encoded bytes or pixels of any size.
        captions: with images as an array: one caption (str) or a list of captions per image.
        ks: the K of recall@K.
        prefix: start of the log names, e.g. "val_" -> "val_image_to_text_recall_at_1".
        batch_size: images and captions per forward pass.
        skip_errors: skip images that are missing or cannot be decoded (with their captions) instead
            of raising an error naming the first.
        frequency: evaluate after every `frequency`-th epoch.
        verbose: show the evaluation's progress bars.

    Example:
    >>> recall = keras_clip.training.RetrievalRecall("validation.csv", ks=(1, 5))
    >>> backup = keras.callbacks.BackupAndRestore("backup/")
    >>> train = keras_clip.data.caption_dataset("train.csv", 224, 64)
    >>> history = model.fit(train, epochs=1, callbacks=[recall, backup])
    """

    def __init__(self, data, captions=None, ks=(1, 5, 10), prefix="val_", batch_size=64, skip_errors=False,
                 frequency=1, verbose=False):  # fmt: skip
        super().__init__(frequency)
        self.ks = _check_ks(ks, "ks")
        self.dataset, self.missing = _caption_pairs(data, captions, skip_errors)
        self.prefix = prefix
        self.batch_size = batch_size
        self.skip_errors = skip_errors
        self.verbose = verbose
        self.results = None

    def evaluate(self, model):
        self.results = evaluation.evaluate_retrieval(
            model, self.dataset, self.ks, self.batch_size, self.skip_errors, self.verbose
        )
        self.results.skipped = self.missing + self.results.skipped
        values = {}
        for direction, recalls in (("image_to_text", self.results.image_to_text),
                                   ("text_to_image", self.results.text_to_image)):  # fmt: skip
            values.update({f"{self.prefix}{direction}_recall_at_{k}": recalls[k] for k in self.ks})
        return values


def _caption_rows(captions):
    """Per image, a list of caption strings (a str is one caption)."""
    rows = [[row] if isinstance(row, (str, bytes)) else list(row) for row in captions]
    for number, row in enumerate(rows):
        if not row or not all(isinstance(text, (str, bytes)) for text in row):
            raise ValueError(f"Image {number} needs one caption (a string) or a non-empty list of strings, got {row!r}")
    return rows


def _pairs(images, rows):
    """Dataset of (image, captions [C_i]): the captions of image i are a vector of its own length."""
    flat = tf.constant([text for row in rows for text in row], tf.string)
    splits = tf.constant(np.cumsum([0] + [len(row) for row in rows]), tf.int64)
    images = tf.data.Dataset.from_tensor_slices(images)
    positions = tf.data.Dataset.range(len(rows))
    return tf.data.Dataset.zip(images, positions).map(lambda image, i: (image, flat[splits[i]:splits[i + 1]]))


def _caption_pairs(data, captions, skip_errors):
    """(dataset of (image, captions), paths of missing images left out)."""
    if isinstance(data, tf.data.Dataset):
        if captions is not None:
            raise ValueError("A dataset carries its own captions: pass (image, caption) elements and no captions=")
        return data, []
    if _is_path(data):
        if captions is not None:
            raise ValueError("A caption file or folder carries its own captions: do not pass captions=")
        index = read_caption_index(os.fspath(data))
        rows = index.captions
        if rows is None:  # a folder: one caption per non-empty line of each side-car file
            rows = [[line.strip() for line in tf.io.gfile.GFile(path).read().splitlines() if line.strip()]
                    for path in index.caption_files]  # fmt: skip
        missing = [path for path in index.image_paths if not tf.io.gfile.exists(path)]
        if missing and not skip_errors:
            raise FileNotFoundError(
                f"{len(missing)} validation image(s) of {os.fspath(data)!r} do not exist, e.g. {missing[0]!r}; "
                "pass skip_errors=True to leave them out"
            )
        left_out = set(missing)
        kept = [i for i, path in enumerate(index.image_paths) if path not in left_out and rows[i]]
        paths = tf.constant([index.image_paths[i] for i in kept], tf.string)
        pairs = _pairs(paths, _caption_rows([rows[i] for i in kept]))
        return pairs.map(lambda path, texts: (tf.io.read_file(path), texts)), missing
    if captions is None:
        raise ValueError("Images given as an array need captions=[...], one caption or list of captions per image")
    rows = _caption_rows(captions)
    if len(data) != len(rows):
        raise ValueError(f"{len(data)} images but {len(rows)} caption entries")
    return _pairs(data, rows), []
