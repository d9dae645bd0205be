"""Batches of preprocessed images from a tf.data dataset, naming or skipping images that fail to decode.

A failed decode inside tf.data normally ends the whole iteration with the decoder's message and
no clue which element it was. Here each element carries its position, failures are dropped by
`ignore_errors`, and the gaps in the positions tell which elements failed: the first one is
decoded again eagerly to raise a `CorruptImageError` with its index and path, or all are counted
and named when the caller asks for skipping. A last marker element (never decoded) carries the
total count, so failures at the very end are seen too.
"""

import dataclasses

import tensorflow as tf
from tqdm.auto import tqdm

from keras_clip.errors import CorruptImageError, describe_image
from keras_clip.image.preprocessing import preprocess_image

SKIP_HINT = "pass skip_errors=True to skip and count such images"


def _is_batched(image_spec):
    if image_spec.dtype == tf.string:
        return image_spec.shape.rank == 1
    return image_spec.shape.rank == 4


def _preprocess_one(image, preprocessing, preprocessed, path=None):
    """One element's image (encoded bytes, or pixels [H, W, C]) -> float32 [R, R, 3]."""
    if preprocessed and image.dtype != tf.string:
        images = tf.cast(image, tf.float32)
    else:
        images = preprocess_image(image, **dataclasses.asdict(preprocessing),
                                  path=path if image.dtype == tf.string else None)  # fmt: skip
    side = preprocessing.image_resolution
    return tf.ensure_shape(images, [side, side, 3])


class ImageStream:
    """Iterates over `(images, extras, positions)` batches of a dataset of `(image, *extras)` elements.

    Args:
        dataset: a `tf.data.Dataset` of tuples `(image, *extras)`, batched or not. Images are encoded
            bytes (`tf.string`), pixels [H, W, C] (uint8 0..255 or float in [0, 255]), or, with
            `preprocessed=True`, model inputs [R, R, 3]. Extras (labels, captions, ...) are
            passed through (components of varying shape come out as `tf.RaggedTensor`).
        preprocessing: the model's `Preprocessing` (`model.preprocessing`; its image resolution, mean/std,
            interpolation and resize mode).
        batch_size: images per batch.
        skip_errors: skip images that fail and count them (`skipped`), instead of raising.
        read: optional function applied to the image component first (e.g. `tf.io.read_file` for paths).
        path_of: `position -> path or None`, the file of the element at a position (for messages).
        preprocessed: the images are already preprocessed.
        total: number of elements if known (for the progress bar).
        description: the progress bar's label; `verbose=False` hides it.

    After iteration, `skipped` describes the skipped elements (their paths, else "the image at index i")
    and `num_elements` is the count of all elements, skipped or not.

    Raises (while iterating):
        CorruptImageError: an element failed to read or decode and `skip_errors` is False.
    """

    def __init__(self, dataset, preprocessing, batch_size=64, skip_errors=False, read=None, path_of=None,
                 preprocessed=False, total=None, description="Images", verbose=True):  # fmt: skip
        if not isinstance(dataset, tf.data.Dataset):
            raise TypeError(f"Expected a tf.data.Dataset, got {type(dataset).__name__}")
        if not isinstance(dataset.element_spec, tuple):
            raise TypeError(f"Dataset elements must be tuples (image, ...), got {dataset.element_spec}")
        if _is_batched(dataset.element_spec[0]):
            dataset = dataset.unbatch()
        self.source = dataset
        self.preprocessing = preprocessing
        self.image_resolution = preprocessing.image_resolution
        self.batch_size = int(batch_size)
        self.skip_errors = bool(skip_errors)
        self.read = read
        self.path_of = path_of or (lambda position: None)
        self.preprocessed = preprocessed
        self.total = total if total is not None else _known_cardinality(dataset)
        self.description = description
        self.verbose = verbose
        self.skipped = []
        self.num_elements = 0

    def describe(self, position):
        """How messages name the element at `position`: its path, else its index."""
        return describe_image(position, self.path_of(position))

    def _prepare(self, image, path=None):
        if self.read is not None:
            image = self.read(image)
        return _preprocess_one(image, self.preprocessing, self.preprocessed, path)

    def _pipeline(self):
        resolution = self.image_resolution
        image_spec = self.source.element_spec[0]
        if image_spec.dtype == tf.string:
            marker_image = tf.constant(b"")
        else:
            marker_image = tf.zeros([0] * (image_spec.shape.rank - 1) + [image_spec.shape[-1] or 3], image_spec.dtype)
        marker_extras = tuple(_empty_like(spec) for spec in self.source.element_spec[1:])
        marker = tf.data.Dataset.from_tensors(((marker_image,) + marker_extras, False))
        elements = self.source.map(lambda *element: (element, True)).concatenate(marker).enumerate()

        def prepare(position, element_and_real):
            element, real = element_and_real
            images = tf.cond(
                real, lambda: self._prepare(element[0]), lambda: tf.zeros([resolution, resolution, 3], tf.float32)
            )
            return images, tuple(element[1:]), position, real

        prepared = elements.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return prepared.ignore_errors().ragged_batch(self.batch_size).prefetch(tf.data.AUTOTUNE)

    def _fail(self, position):
        """Raises the CorruptImageError of the element at `position` (index and path set)."""
        path = self.path_of(position)
        element = next(iter(self.source.skip(position).take(1)), None)
        reason = "it failed in the input pipeline"
        if element is not None:
            try:
                self._prepare(element[0], path)
            except CorruptImageError as error:
                reason = error.reason
            except (tf.errors.OpError, ValueError) as error:  # e.g. a file that cannot be read
                reason = getattr(error, "message", None) or str(error)
        raise CorruptImageError(f"{reason} ({SKIP_HINT})", position, path)

    def _account_gap(self, expected, position):
        for missing in range(expected, position):
            if not self.skip_errors:
                self._fail(missing)
            self.skipped.append(self.describe(missing))

    def __iter__(self):
        self.skipped = []
        expected = 0
        ended = False
        with tqdm(total=self.total, desc=self.description, unit="image", disable=not self.verbose) as progress:
            for images, extras, positions, real in self._pipeline():
                positions, real = positions.numpy(), real.numpy()
                for position, is_real in zip(positions, real):
                    self._account_gap(expected, position)
                    progress.update(position + 1 - expected if is_real else position - expected)
                    expected = position + 1
                if not real[-1]:  # the end marker, always the last element
                    ended = True
                    self.num_elements = int(positions[-1])
                    images, extras, positions = images[:-1], tuple(extra[:-1] for extra in extras), positions[:-1]
                if len(positions):
                    yield images, extras, positions
        if not ended:
            raise RuntimeError("The dataset's end marker was lost: its iteration failed outside the images")


def _empty_like(spec):
    """A value of `spec`'s dtype and rank, for the end marker (which is never decoded or returned)."""
    if not isinstance(spec, tf.TensorSpec):
        raise TypeError(f"Dataset components must be tensors, got {spec}")
    shape = [0 if size is None else size for size in spec.shape]
    return tf.fill(shape, "") if spec.dtype == tf.string else tf.zeros(shape, spec.dtype)


def _known_cardinality(dataset):
    count = int(dataset.cardinality())
    return count if count >= 0 else None
