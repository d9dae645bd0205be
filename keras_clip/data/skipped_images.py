"""Counting the samples a caption dataset skips, and reporting them during `model.fit`.

A sample is skipped when its image is missing, unreadable or not a decodable image, or when it has
no caption. `tf.data`'s `ignore_errors` drops such samples without saying how many; the pipeline
numbers the samples before decoding and counts the numbers missing after it (`full_epochs.py`).
"""

import logging

import keras
import tensorflow as tf

_logger = logging.getLogger("keras_clip.data")


class SkippedImages:
    """How many samples a caption dataset skipped (image corrupt or missing, or no caption).

    A `CaptionDatasetState` holds one, as `state.skipped_images`. The count covers every pass over
    the dataset since it was made (or since `reset()`): each unreadable sample of a pass that the
    pass reached before its batches were full is counted once (a sample read again to refill a pass
    is not counted again; nor is one of the last, dropped partial batch that was never needed). It
    is up to date as soon as a batch comes out: at the end of an epoch it holds the epoch's count.

    Example:
    >>> state = keras_clip.data.CaptionDatasetState()
    >>> dataset = keras_clip.data.caption_dataset("captions.csv", 224, 64, state=state)
    >>> for batch in dataset: pass
    >>> state.skipped_images.count
    3
    """

    def __init__(self):
        with tf.init_scope(), tf.device("/cpu:0"):
            self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name="samples_skipped")

    @property
    def count(self):
        """Samples skipped so far (an int)."""
        return int(self.skipped.numpy())

    def reset(self):
        self.skipped.assign(0)

    def add(self, count):
        """Adds `count` (an int64 tensor) skipped samples; returns the update op (for control dependencies)."""
        return self.skipped.assign_add(count)

    def __repr__(self):
        return f"SkippedImages(count={self.count})"


class SkippedImagesReport(keras.callbacks.Callback):
    """Reports at each epoch end how many samples the training dataset skipped.

    Adds the epoch's count to the epoch logs (so the progress bar and `History` show it) and, when it
    is not zero, logs "N images skipped (corrupt or missing) in epoch E" as a warning on the
    "keras_clip.data" logger. TensorFlow's own log has one warning per skipped sample with its error
    (naming the file when it is missing or not an image at all; a decoder's error such as
    "jpeg::Uncompress failed" does not name it).

    Args:
        state: the `CaptionDatasetState` passed to `caption_dataset`, or its `skipped_images` counter.
        log_key: the name of the count in the logs.

    Example:
    >>> state = keras_clip.data.CaptionDatasetState()
    >>> dataset = keras_clip.data.caption_dataset("captions.csv", 224, 64, state=state)
    >>> history = model.fit(dataset, epochs=2, callbacks=[keras_clip.data.SkippedImagesReport(state)])
    >>> history.history["skipped_images"]
    [3, 3]
    """

    def __init__(self, state, log_key="skipped_images"):
        super().__init__()
        counter = state if isinstance(state, SkippedImages) else getattr(state, "skipped_images", None)
        if not isinstance(counter, SkippedImages):
            raise ValueError(
                "SkippedImagesReport needs the keras_clip.data.CaptionDatasetState passed to caption_dataset "
                f"as state= (or its skipped_images counter), got {type(state).__name__}"
            )
        self.counter = counter
        self.log_key = log_key
        self._epoch_start = 0
        self._train_start = 0

    def on_train_begin(self, logs=None):
        self._train_start = self.counter.count

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.counter.count

    def on_epoch_end(self, epoch, logs=None):
        total = self.counter.count
        skipped = total - self._epoch_start
        if logs is not None:
            logs[self.log_key] = skipped
        if skipped:
            _logger.warning(
                "%d images skipped (corrupt or missing) in epoch %d; %d since training began",
                skipped, epoch + 1, total - self._train_start,
            )
