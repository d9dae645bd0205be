"""Corrupt and missing images are skipped, counted and reported, and never stop training."""

import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.data import CaptionDatasetState, SkippedImages, SkippedImagesReport, caption_dataset
from tests.helpers.caption_files import (
    captioned_photos,
    corrupt_image,
    sample_members,
    tar_bytes,
    write_caption_dataset,
    write_file,
)
from tests.helpers.tiny_models import tiny_clip

CORRUPTIONS = ("truncated", "text", "bad_png")


def fifty_photos_with_five_bad(root, layout):
    """50 captioned photographs: 3 replaced by corrupt bytes, 2 listed but missing."""
    samples = captioned_photos(50, seed=4)
    for sample, kind in zip(samples[10:13], CORRUPTIONS):
        sample.data = corrupt_image(kind)
    missing = (samples[20].name, samples[41].name)
    return write_caption_dataset(str(root), layout, samples, missing=missing)


def test_fifty_images_with_three_corrupt_and_two_missing_train_an_epoch_and_report_five(tmp_path, caplog):
    source = fifty_photos_with_five_bad(tmp_path, "csv")
    state = CaptionDatasetState()
    dataset = caption_dataset(source, image_resolution=32, batch_size=9, seed=0, state=state)
    model = tiny_clip()
    model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3))
    steps = []
    count_steps = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch))
    with caplog.at_level(logging.WARNING, logger="keras_clip.data"):
        history = model.fit(dataset.take(100).map(lambda batch: batch), epochs=1, verbose=0,
                            callbacks=[SkippedImagesReport(state), count_steps])  # fmt: skip
    assert history.history["skipped_images"] == [5]  # counted through .take() and .map()
    assert state.skipped_images.count == 5
    assert np.isfinite(history.history["loss"][0])
    assert len(steps) == 45 // 9  # every good image was trained on
    assert int(state.epoch.numpy()) == 1  # fit read the dataset once
    assert "5 images skipped (corrupt or missing) in epoch 1" in caplog.text


def test_counts_per_epoch_and_in_total(tmp_path, caplog):
    samples = captioned_photos(8, seed=5)
    samples[3].data = corrupt_image("empty")
    source = write_caption_dataset(str(tmp_path), "folder", samples)
    state = CaptionDatasetState()
    dataset = caption_dataset(source, 32, 2, seed=1, state=state)
    os.remove(os.path.join(source, samples[6].filename))  # listed at build time, gone while training
    report = SkippedImagesReport(state.skipped_images)
    logs = {}
    report.on_train_begin()
    for epoch in range(2):
        report.on_epoch_begin(epoch)
        assert sum(len(batch["images"]) for batch in dataset) == 8  # the 2 places refilled: 4 full batches
        report.on_epoch_end(epoch, logs)
        assert logs["skipped_images"] == 2
    assert state.skipped_images.count == 4
    assert "2 images skipped (corrupt or missing) in epoch 2; 4 since training began" in caplog.text
    state.skipped_images.reset()
    assert state.skipped_images.count == 0


@pytest.mark.parametrize("layout", ["jsonl", "tar"])
def test_other_layouts_count_the_same_five(tmp_path, layout):
    source = fifty_photos_with_five_bad(tmp_path, layout)
    state = CaptionDatasetState()
    dataset = caption_dataset(source, 32, 10, seed=2, drop_remainder=False, state=state)
    expected = 50 if layout == "jsonl" else 45  # tar shards without steps_per_epoch: one pass, not refilled
    assert sum(len(batch["tokens"]) for batch in dataset) == expected
    assert state.skipped_images.count == 5


def test_tar_samples_without_caption_or_image_are_skipped(tmp_path):
    samples = captioned_photos(4, seed=6)
    members = sample_members(samples[0])
    members += sample_members(samples[1])[:1]  # image, no caption file
    members += sample_members(samples[2], missing=True)  # caption file, no image
    members += [(f"{samples[3].name}.jpg", corrupt_image("truncated"))] + sample_members(samples[3])[1:]
    members += [("notes", b"a member without an extension belongs to no sample")]
    write_file(str(tmp_path / "shard.tar"), tar_bytes(members))
    state = CaptionDatasetState()
    dataset = caption_dataset(str(tmp_path / "shard.tar"), 32, 1, augment=False, shuffle=False, state=state)
    batches = list(dataset)
    assert len(batches) == 1
    assert state.skipped_images.count == 3


def test_report_needs_the_counter():
    with pytest.raises(ValueError, match="needs the keras_clip.data.CaptionDatasetState passed to caption_dataset"):
        SkippedImagesReport(tf.data.Dataset.range(3))  # the dataset instead of its state
    assert SkippedImagesReport(SkippedImages()).counter.count == 0
    assert SkippedImagesReport(CaptionDatasetState()).counter.count == 0
