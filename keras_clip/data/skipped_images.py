"""Counting the samples a caption dataset skips, and reporting them during `model.fit`.

A sample is skipped when its image is missing, unreadable or not a decodable image, or when it has
no caption. `tf.data`'s `ignore_errors` drops such samples without saying how many; two counters
around the decoding stage say it: samples entering it minus samples leaving it.
"""

import logging

import keras
import tensorflow as tf

_logger = logging.getLogger("keras_clip.data")


class SkippedImages:
    """How many samples a caption dataset skipped (image corrupt or missing, or no caption).

    A `CaptionDatasetState` holds one, as `state.skipped_images`. The count covers every pass over
    the dataset since it was made (or since `reset()`). It is exact whenever no iterator is running,
    e.g. at the end of an epoch; while the pipeline runs, samples being decoded count as skipped until
    they come out.

    Example:
    >>> state = keras_clip.data.CaptionDatasetState()
    >>> dataset = keras_clip.data.caption_dataset("captions.csv", 224, 64, state=state)
    >>> for batch in dataset: pass
    >>> state.skipped_images.count
    3
    """

    def __init__(self):
        with tf.init_scope(), tf.device("/cpu:0"):
            self.entered = tf.Variable(0, dtype=tf.int64, trainable=False, name="samples_entered")
            self.delivered = tf.Variable(0, dtype=tf.int64, trainable=False, name="samples_delivered")

    @property
    def count(self):
        """Samples skipped so far (an int)."""
        return int(self.entered.numpy() - self.delivered.numpy())

    def reset(self):
        self.entered.assign(0)
        self.delivered.assign(0)

    def count_entering(self, element):
        """A map function: counts one sample entering decoding and passes it on."""
        with tf.control_dependencies([self.entered.assign_add(1)]):
            return tf.nest.map_structure(tf.identity, element)

    def count_delivered(self, element):
        """A map function: counts one decoded sample and passes it on."""
        with tf.control_dependencies([self.delivered.assign_add(1)]):
            return tf.nest.map_structure(tf.identity, element)

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
