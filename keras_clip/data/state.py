"""What a caption dataset's pipeline counts while it runs: the passes started and the samples skipped.

The counters are variables captured by the pipeline's functions, so they keep counting however the
dataset is transformed afterwards (`.take()`, `.map()`, `tf.distribute`): keep this object, not an
attribute of the dataset, to read them.
"""

import tensorflow as tf

from keras_clip.data.skipped_images import SkippedImages


class CaptionDatasetState:
    """The state of a `caption_dataset` pipeline: `epoch` and `skipped_images`.

    Attributes:
        epoch: int64 `tf.Variable`, the number of passes over the dataset started; pass k draws its
            order, crops and captions from the dataset's seed and k, so `epoch.assign(k)` replays pass k.
        skipped_images: a `SkippedImages` counter of the samples skipped (corrupt or missing image,
            no caption).

    Example:
    >>> state = keras_clip.data.CaptionDatasetState()
    >>> train = keras_clip.data.caption_dataset("train.csv", 224, batch_size=64, seed=0, state=state)
    >>> history = model.fit(train, epochs=2, callbacks=[keras_clip.data.SkippedImagesReport(state)])
    >>> int(state.epoch.numpy())
    2
    >>> state.skipped_images.count
    0
    """

    def __init__(self):
        with tf.init_scope(), tf.device("/cpu:0"):
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="caption_dataset_epoch")
        self.skipped_images = SkippedImages()

    def __repr__(self):
        return f"CaptionDatasetState(epoch={int(self.epoch.numpy())}, skipped_images={self.skipped_images.count})"
