"""Caption datasets for training CLIP: (image, caption) files, folders and tar shards -> tf.data.

    state = keras_clip.data.CaptionDatasetState()
    dataset = keras_clip.data.caption_dataset("captions.csv", image_resolution=224, batch_size=64, seed=0, state=state)
    model.fit(dataset, epochs=10, callbacks=[keras_clip.data.SkippedImagesReport(state)])
"""

from keras_clip.data.pipeline import caption_dataset, prepare_example
from keras_clip.data.skipped_images import SkippedImages, SkippedImagesReport
from keras_clip.data.sources import CaptionIndex, expand_shards, read_caption_index
from keras_clip.data.state import CaptionDatasetState
from keras_clip.data.tar_shards import tar_members

__all__ = [
    "CaptionDatasetState",
    "CaptionIndex",
    "SkippedImages",
    "SkippedImagesReport",
    "caption_dataset",
    "expand_shards",
    "prepare_example",
    "read_caption_index",
    "tar_members",
]
