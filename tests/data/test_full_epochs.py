"""Every caption-dataset epoch has the batches it announces: exact epoch logs, one schedule step per batch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.data import CaptionDatasetState, caption_dataset
from tests.helpers.caption_files import captioned_photos, corrupt_image, write_caption_dataset
from tests.helpers.tiny_models import tiny_clip

METRICS = ("loss", "image_to_text_accuracy", "text_to_image_accuracy", "temperature")


def photos_with_bad(count, bad=(), seed=3):
    samples = captioned_photos(count, seed=seed)
    for index in bad:
        samples[index].data = corrupt_image("truncated")
    return samples


def test_epoch_logs_are_the_means_of_the_steps_and_the_optimizer_steps_once_per_batch(tmp_path):
    """Keras 3 ran one extra, empty step per epoch on the caption dataset (unknown length): the epoch's
    temperature was logged as 0.0525 = 0.07 * 3/4, and the optimizer counted 4 steps for 3 batches."""
    source = write_caption_dataset(str(tmp_path), "csv", photos_with_bad(10, bad=[4]))
    dataset = caption_dataset(source, 32, 3, seed=0)
    model = tiny_clip()
    model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3, total_steps=6, warmup_steps=2))
    running, temperatures = [], []

    def batch_end(batch, logs):
        running.append({name: float(logs[name]) for name in METRICS})
        # The step's temperature metric reads the scale after the update, as this does.
        temperatures.append(float(np.exp(-model.logit_scale.numpy())))

    history = model.fit(dataset, epochs=2, verbose=0,
                        callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=batch_end)]).history
    assert len(running) == 6
    for epoch in range(2):
        steps = running[3 * epoch : 3 * epoch + 3]
        # Batch logs are running means: recover each step's value, then average by hand.
        values = {name: [steps[0][name]] + [(k + 1) * steps[k][name] - k * steps[k - 1][name] for k in (1, 2)]
                  for name in METRICS}  # fmt: skip
        for name in METRICS:
            assert history[name][epoch] == pytest.approx(np.mean(values[name]), rel=1e-5), name
        assert history["temperature"][epoch] == pytest.approx(np.mean(temperatures[3 * epoch : 3 * epoch + 3]),
                                                              rel=1e-5)  # fmt: skip
        assert history["temperature"][epoch] == pytest.approx(0.07, rel=0.01)
    assert int(model.optimizer.iterations.numpy()) == 6  # the learning-rate schedule's step
    assert len(dataset) == 3


def test_skipped_images_are_replaced_so_every_epoch_has_its_full_batches(tmp_path):
    source = write_caption_dataset(str(tmp_path), "jsonl", photos_with_bad(11, bad=[0, 5, 9]))
    state = CaptionDatasetState()
    dataset = caption_dataset(source, 32, 4, seed=1, state=state)
    assert len(dataset) == 2 and dataset.cardinality().numpy() == 2
    for epoch in range(2):
        assert [len(batch["tokens"]) for batch in dataset] == [4, 4]
    # Each epoch skips the bad images its batches reached (never one read again to refill): 0-3 of 3.
    assert 0 < state.skipped_images.count <= 6
    kept = caption_dataset(source, 32, 4, seed=1, drop_remainder=False, prefetch=None)
    assert len(kept) == 3 and [len(batch["tokens"]) for batch in kept] == [4, 4, 3]  # all 11 places filled


def test_counts_are_exact_when_every_bad_image_is_reached(tmp_path):
    source = write_caption_dataset(str(tmp_path), "csv", photos_with_bad(8, bad=[1, 6]))
    state = CaptionDatasetState()
    dataset = caption_dataset(source, 32, 2, seed=0, drop_remainder=False, state=state)
    for epoch in range(3):
        assert sum(len(batch["tokens"]) for batch in dataset) == 8  # the 2 bad places refilled
        assert state.skipped_images.count == 2 * (epoch + 1)


def test_tar_shards_take_steps_per_epoch(tmp_path):
    source = write_caption_dataset(str(tmp_path), "tar", photos_with_bad(6, bad=[2]), shards=2)
    once = caption_dataset(source, 32, 2, seed=0)
    assert once.cardinality().numpy() == tf.data.UNKNOWN_CARDINALITY  # one pass, of unknown length
    assert [len(batch["tokens"]) for batch in once] == [2, 2]
    steps = caption_dataset(source, 32, 2, seed=0, steps_per_epoch=4)
    assert len(steps) == 4 and [len(batch["tokens"]) for batch in steps] == [2, 2, 2, 2]  # refilled


def test_input_pipelines_all_take_the_smallest_share(tmp_path):
    source = write_caption_dataset(str(tmp_path), "folder", photos_with_bad(7))
    lengths = [len(caption_dataset(source, 32, 1, num_input_pipelines=3, input_pipeline_id=i)) for i in range(3)]
    assert lengths == [2, 2, 2]  # shares of 3, 2 and 2 images: tf.distribute needs equal steps


def test_unusable_data_is_a_clear_error(tmp_path):
    source = write_caption_dataset(str(tmp_path / "bad"), "csv", photos_with_bad(4, bad=[0, 1, 2, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="no sample of .*captions.csv could be read"):
        list(caption_dataset(source, 32, 2, seed=0))
    small = write_caption_dataset(str(tmp_path / "small"), "csv", photos_with_bad(3))
    with pytest.raises(ValueError, match="has 3 images .*fewer than one batch of 4: lower batch_size or pass drop"):
        caption_dataset(small, 32, 4)
    assert len(caption_dataset(small, 32, 4, drop_remainder=False)) == 1
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive int, got 0"):
        caption_dataset(small, 32, 1, steps_per_epoch=0)
