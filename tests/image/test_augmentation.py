"""Training augmentation: torchvision's RandomResizedCrop rule, PIL's resampling, reproducible seeds."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_clip.errors import CorruptImageError
from keras_clip.image.augmentation import TrainingAugmentation, augment_image, crop_and_resize, random_resized_crop_box
from keras_clip.image.preprocessing import ImagePreprocessor
from tests.helpers import images


def torchvision_box(height, width, rng, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's `RandomResizedCrop.get_params` (as in its source), with a numpy random generator."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect_ratio = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


SHAPES = [(500, 500), (427, 640), (640, 427), (300, 380), (120, 1000)]
SCALES = [(0.9, 1.0), (0.08, 1.0)]


@pytest.mark.parametrize("scale", SCALES)
def test_crop_boxes_follow_torchvision_distribution(scale):
    sample_box = tf.function(lambda height, width, seed: random_resized_crop_box(height, width, seed, scale))
    rng = np.random.default_rng(0)
    for height, width in SHAPES:
        ours = np.array([[int(v) for v in sample_box(height, width, tf.constant([seed, 7]))] for seed in range(300)])
        expected = np.array([torchvision_box(height, width, rng, scale) for _ in range(3000)])
        tops, lefts, heights, widths = ours.T
        assert (tops >= 0).all() and (lefts >= 0).all()
        assert (tops + heights <= height).all() and (lefts + widths <= width).all()
        statistics = {
            "area fraction": lambda b: b[:, 2] * b[:, 3] / (height * width),
            "aspect ratio": lambda b: b[:, 3] / b[:, 2],
            "relative top": lambda b: b[:, 0] / np.maximum(height - b[:, 2], 1),
            "relative left": lambda b: b[:, 1] / np.maximum(width - b[:, 3], 1),
        }
        for name, statistic in statistics.items():
            tolerance = 0.03 if name in ("area fraction", "aspect ratio") else 0.08
            assert abs(statistic(ours).mean() - statistic(expected).mean()) < tolerance, (height, width, name)


def test_landscape_photo_with_openclip_scale_gets_torchvision_fallback():
    # 640x427 has aspect 1.5: no crop of >= 90% of its area fits ratios up to 4/3, so torchvision
    # falls back to the centred 569x427 crop (w = round(427 * 4/3)).
    for seed in range(5):
        box = [int(v) for v in random_resized_crop_box(427, 640, tf.constant([seed, 0]))]
        assert box == list(torchvision_box(427, 640, np.random.default_rng(seed))) == [0, 35, 427, 569]


def test_crop_and_resize_is_pil_crop_then_bicubic_resize():
    photo = images.photographs()["coffee"]
    for top, left, height, width in [(10, 20, 380, 500), (0, 0, 400, 600), (50, 300, 90, 130)]:
        ours = crop_and_resize(photo, (top, left, height, width), 224).numpy()
        crop = Image.fromarray(photo).crop((left, top, left + width, top + height))
        expected = np.asarray(crop.resize((224, 224), Image.BICUBIC))
        difference = np.abs(ours.astype(int) - expected)
        assert difference.max() <= 1 and np.mean(difference > 0) < 1e-3


def encoded_batch():
    photos = images.photographs()
    return [
        images.encode(photos["china"], "jpeg"),
        images.encode(photos["astronaut"], "png"),
        images.encode(photos["chelsea"][:, :200], "jpeg"),
    ]


def test_augment_image_is_reproducible_in_every_mode():
    encoded = encoded_batch()
    seeds = [[3, 1], [3, 2], [4, 1]]
    eager = np.stack([augment_image(data, 224, seed, scale=(0.3, 1.0)).numpy() for data, seed in zip(encoded, seeds)])
    assert eager.shape == (3, 224, 224, 3) and eager.dtype == np.float32
    graph = tf.function(lambda data, seed: augment_image(data, 224, seed, scale=(0.3, 1.0)))
    in_graph = [graph(tf.constant(data), tf.constant(seed)) for data, seed in zip(encoded, seeds)]
    np.testing.assert_array_equal(np.stack(in_graph), eager)
    dataset = tf.data.Dataset.from_tensor_slices((encoded, seeds)).map(
        lambda data, seed: augment_image(data, 224, seed, scale=(0.3, 1.0)), num_parallel_calls=3
    )
    np.testing.assert_array_equal(np.stack(list(dataset.as_numpy_iterator())), eager)
    other_seed = augment_image(encoded[0], 224, [3, 9], scale=(0.3, 1.0)).numpy()
    assert not np.array_equal(other_seed, eager[0])


def test_horizontal_flip_is_off_by_default_and_mirrors_when_on():
    data = encoded_batch()[1]
    flips = 0
    for seed in range(8):
        plain = augment_image(data, 64, [seed, 0]).numpy()
        flipped = augment_image(data, 64, [seed, 0], horizontal_flip=True).numpy()
        if np.array_equal(flipped, plain[:, ::-1]):
            flips += 1
        else:
            np.testing.assert_array_equal(flipped, plain)
    assert 0 < flips < 8


def test_layer_output_and_seeded_sequence():
    encoded = tf.constant(encoded_batch())
    augment = TrainingAugmentation(224, scale=(0.5, 1.0), seed=11)
    first, second = augment(encoded).numpy(), augment(encoded).numpy()
    assert first.shape == (3, 224, 224, 3) and first.dtype == np.float32
    assert not np.array_equal(first, second)
    same_seed = TrainingAugmentation(224, scale=(0.5, 1.0), seed=11)
    np.testing.assert_array_equal(same_seed(encoded).numpy(), first)
    np.testing.assert_array_equal(same_seed(encoded).numpy(), second)
    in_graph = TrainingAugmentation(224, scale=(0.5, 1.0), seed=11)
    graph_call = tf.function(in_graph)
    np.testing.assert_array_equal(graph_call(encoded).numpy(), first)
    np.testing.assert_array_equal(graph_call(encoded).numpy(), second)
    in_dataset = tf.data.Dataset.from_tensor_slices(encoded).batch(3).repeat(2)
    in_dataset = in_dataset.map(TrainingAugmentation(224, scale=(0.5, 1.0), seed=11))
    for batch, expected in zip(in_dataset, (first, second)):
        np.testing.assert_array_equal(batch.numpy(), expected)


def test_layer_elements_are_augmented_like_augment_image():
    """Element i of a call uses the seed fold_in(call seed, i): each image gets its own crop."""
    photo = images.photographs()["astronaut"]
    augmented = TrainingAugmentation(96, scale=(0.2, 0.5), seed=1)(np.stack([photo, photo])).numpy()
    assert not np.array_equal(augmented[0], augmented[1])


def test_without_training_the_layer_is_the_evaluation_preprocessing():
    encoded = tf.constant(encoded_batch())
    np.testing.assert_array_equal(
        TrainingAugmentation(224, seed=1)(encoded, training=False).numpy(), ImagePreprocessor(224)(encoded).numpy()
    )


def test_pixel_inputs_single_images_and_float():
    photo = images.photographs()["rocket"]
    augment = TrainingAugmentation(64, seed=2)
    assert augment(photo).shape == (64, 64, 3)
    assert augment(photo[None, ..., :1]).shape == (1, 64, 64, 3)
    uint8 = TrainingAugmentation(64, seed=2)(photo[None]).numpy()
    float32 = TrainingAugmentation(64, seed=2)(photo[None].astype(np.float32)).numpy()
    assert np.abs(uint8 - float32).max() < 0.05  # same crop, resampled without 8-bit rounding


def test_config_round_trip_and_keras_saving(tmp_path):
    augment = TrainingAugmentation(64, scale=(0.5, 0.9), ratio=(0.5, 2.0), horizontal_flip=True, seed=4)
    config = augment.get_config()
    assert config["scale"] == (0.5, 0.9) and config["ratio"] == (0.5, 2.0) and config["horizontal_flip"]
    assert TrainingAugmentation.from_config(config).get_config() == config

    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, TrainingAugmentation(64, seed=4)(inputs))
    path = os.path.join(tmp_path, "augment.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    encoded = tf.constant(encoded_batch())
    # The saved seed state continues the same sequence of crops.
    np.testing.assert_array_equal(reloaded(encoded).numpy(), model(encoded).numpy())


@pytest.mark.parametrize("kwargs", [{"scale": (0.0, 1.0)}, {"scale": (0.9, 0.5)}, {"ratio": (2.0, 1.0)}])
def test_bad_ranges_are_refused(kwargs):
    with pytest.raises(ValueError, match="scale|ratio"):
        TrainingAugmentation(224, **kwargs)


def test_corrupt_element_is_named():
    encoded = encoded_batch() + [b"GIF89a broken"]
    with pytest.raises(CorruptImageError, match="the image at index 3: ") as error:
        TrainingAugmentation(64, seed=0)(tf.constant(encoded))
    assert error.value.index == 3
    with pytest.raises(tf.errors.InvalidArgumentError, match="the image at index 3: its GIF data ends before"):
        tf.function(TrainingAugmentation(64, seed=0))(tf.constant(encoded))
    truncated_png = images.encode(images.photographs()["coffee"], "png")[:3000]
    with pytest.raises(tf.errors.InvalidArgumentError, match="the image at index 1: .* not a valid PNG file"):
        tf.function(TrainingAugmentation(64, seed=0))(tf.constant(encoded[:1] + [truncated_png]))


def test_empty_batch():
    empty = tf.constant([], tf.string)
    assert TrainingAugmentation(32, seed=0)(empty).shape == (0, 32, 32, 3)
    assert tf.function(TrainingAugmentation(32, seed=0))(empty).shape == (0, 32, 32, 3)
