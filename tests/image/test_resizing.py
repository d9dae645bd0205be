"""PIL's bicubic and bilinear resampling, torchvision's and open_clip's resize geometry, against PIL itself."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_clip.image import resizing as image_resizing
from keras_clip.image.resizing import (
    center_crop_offsets,
    resize_and_center_crop,
    resize_image,
    resize_to_square,
    resize_window,
    shorter_side_size,
)
from tests.helpers import images

# Sizes (height, width): downscaling by small and large factors, upscaling, one side kept, odd sizes.
RESIZES = [
    ((427, 640), (224, 335)),
    ((640, 427), (335, 224)),
    ((2000, 3000), (224, 336)),
    ((100, 150), (224, 336)),
    ((67, 41), (366, 224)),
    ((300, 451), (300, 97)),
    ((300, 451), (61, 451)),
    ((512, 512), (336, 336)),
    ((3000, 200), (37, 200)),  # downscaling 81x: 327 taps per output pixel
    ((900, 300), (672, 224)),  # height shrinks more than twice as much: Pillow 13 goes vertically first
    ((5, 7), (224, 300)),
    ((1, 1), (3, 2)),
]


PIL_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


def pil_resize(pixels, height, width, interpolation="bicubic"):
    return np.asarray(Image.fromarray(pixels).resize((width, height), PIL_FILTERS[interpolation]))


def photo_of_size(height, width):
    return images.resized(images.photographs()["coffee"], width, height)


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("size, new_size", RESIZES)
def test_uint8_resize_is_pil(size, new_size, interpolation):
    pixels = photo_of_size(*size)
    ours = resize_image(pixels, *new_size, interpolation).numpy()
    expected = pil_resize(pixels, *new_size, interpolation)
    assert ours.dtype == np.uint8 and ours.shape == expected.shape
    # PIL's 22-bit fixed-point taps, summed exactly: equal bit for bit.
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_uint8_resize_is_pil_on_random_sizes(interpolation):
    """Random sizes and noise (every rounding case is hit): equal to PIL for every pixel."""
    rng = np.random.default_rng(1)
    for _ in range(30):
        height, width, new_height, new_width = (int(n) for n in rng.integers(1, 400, size=4))
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        np.testing.assert_array_equal(
            resize_image(pixels, new_height, new_width, interpolation).numpy(),
            pil_resize(pixels, new_height, new_width, interpolation),
        )


def test_sizes_known_only_when_running_are_resized_alike():
    pixels = photo_of_size(300, 451)
    signature = [tf.TensorSpec([None, None, 3], tf.uint8)] + [tf.TensorSpec([], tf.int32)] * 6
    resize = tf.function(resize_window, input_signature=signature)
    ours = resize(pixels, 224, 336, 7, 50, 200, 150).numpy()
    np.testing.assert_array_equal(ours, pil_resize(pixels, 224, 336)[7:207, 50:200])


def test_one_tf_image_resize_call_is_not_pil():
    """Measured on china.jpg -> 335x224, in grey levels (mean): ours 0 (equal), one antialiased tf.image.resize
    0.28 (0.14 even rounded: PIL rounds and clips between its two passes), without antialiasing 6.0."""
    pixels = images.photographs()["china"]
    expected = pil_resize(pixels, 224, 335).astype(np.float64)
    float_pixels = tf.constant(pixels, tf.float32)
    antialiased = tf.image.resize(float_pixels, [224, 335], "bicubic", antialias=True).numpy()
    aliased = tf.image.resize(float_pixels, [224, 335], "bicubic", antialias=False).numpy()
    ours = resize_image(pixels, 224, 335).numpy().astype(np.float64)
    assert np.abs(ours - expected).mean() < 0.01
    assert np.abs(antialiased - expected).mean() > 0.2
    assert np.abs(np.clip(np.round(antialiased), 0, 255) - expected).mean() > 0.05
    assert np.abs(aliased - expected).mean() > 3.0


def test_float_resize_is_the_same_filter_without_rounding():
    pixels = photo_of_size(427, 640)
    resized = resize_image(pixels.astype(np.float32), 224, 335).numpy()
    assert resized.dtype == np.float32
    assert 0.0 <= resized.min() and resized.max() <= 255.0
    # PIL rounds after each pass (two errors up to 1/2, the second pass's filter can amplify the first).
    difference = np.abs(resized - pil_resize(pixels, 224, 335))
    assert difference.max() < 1.5 and difference.mean() < 0.4


# 0: one block at a time; 50,000 values: groups of 3 blocks (42 blocks per pass, windows of ~16 x 900 values).
@pytest.mark.parametrize("max_window_values", [0, 50_000])
def test_large_windows_are_resampled_in_groups_of_blocks(monkeypatch, max_window_values):
    pixels = photo_of_size(300, 451)
    expected = pil_resize(pixels, 224, 336)
    monkeypatch.setattr(image_resizing, "_MAX_WINDOW_VALUES", max_window_values)
    np.testing.assert_array_equal(resize_image(pixels, 224, 336).numpy(), expected)


def test_a_kept_side_is_returned_unchanged_in_float():
    """PIL skips the pass of a side whose size is kept: float pixels come back as they were."""
    pixels = photo_of_size(300, 451).astype(np.float32) * 0.99 + 0.25  # in [0, 255], not whole numbers
    np.testing.assert_array_equal(resize_image(pixels, 300, 451).numpy(), pixels)
    np.testing.assert_array_equal(resize_window(pixels, 300, 451, 3, 5, 100, 200).numpy(), pixels[3:103, 5:205])


def test_batches_resize_each_image_alone():
    batch = np.stack([photo_of_size(60, 90), photo_of_size(60, 90)[::-1], photo_of_size(60, 90)[:, ::-1]])
    expected = np.stack([pil_resize(image, 33, 50) for image in batch])
    np.testing.assert_array_equal(resize_image(batch, 33, 50).numpy(), expected)
    np.testing.assert_array_equal(resize_window(batch, 33, 50, 1, 2, 30, 40).numpy(), expected[:, 1:31, 2:42])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_a_window_is_that_part_of_the_whole_resize(dtype):
    pixels = photo_of_size(427, 640).astype(dtype)
    whole = resize_image(pixels, 224, 335).numpy()
    window = resize_window(pixels, 224, 335, 13, 100, 150, 70).numpy()
    np.testing.assert_array_equal(window, whole[13:163, 100:170])


def torchvision_resize_size(height, width, size):
    """torchvision's `_compute_resized_output_size` for an int size, as written there."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_width, new_height = (new_short, new_long) if width <= height else (new_long, new_short)
    return new_height, new_width


def test_shorter_side_size_is_torchvision_rule():
    rng = np.random.default_rng(0)
    sizes = [(h, w) for h, w in rng.integers(1, 7000, size=(2000, 2))]
    sizes += [(224, 224), (1, 1000), (1000, 1), (427, 640), (640, 427), (6000, 4000), (3, 3)]
    for resolution in (224, 336):
        heights, widths = zip(*sizes)
        new_heights, new_widths = shorter_side_size(np.array(heights), np.array(widths), resolution)
        expected = [torchvision_resize_size(int(h), int(w), resolution) for h, w in sizes]
        assert list(zip(new_heights.numpy(), new_widths.numpy())) == expected


def test_center_crop_offsets_round_halves_to_even_like_python():
    for height in range(224, 260):
        for width in (224, 225, 227, 229, 335, 336, 337):
            top, left = center_crop_offsets(height, width, 224)
            assert (int(top), int(left)) == (int(round((height - 224) / 2.0)), int(round((width - 224) / 2.0)))


@pytest.mark.parametrize("size", [(427, 640), (640, 427), (224, 224), (224, 300), (57, 99), (1000, 400)])
def test_resize_and_center_crop_is_torchvision_on_pil(size):
    pixels = photo_of_size(*size)
    image = Image.fromarray(pixels)
    new_height, new_width = torchvision_resize_size(*size, 224)
    if (new_height, new_width) != size:
        image = image.resize((new_width, new_height), Image.BICUBIC)
    top, left = int(round((new_height - 224) / 2.0)), int(round((new_width - 224) / 2.0))
    expected = np.asarray(image.crop((left, top, left + 224, top + 224)))
    ours = resize_and_center_crop(pixels, 224).numpy()
    assert ours.shape == (224, 224, 3)
    np.testing.assert_array_equal(ours, expected)


def open_clip_geometry(pixels, resolution, interpolation, resize_mode):
    """open_clip's "squash" (torchvision `Resize((R, R))`) and "longest" (`ResizeKeepRatio(longest=1)` then
    `CenterCropOrPad`) on a PIL image, written from their definitions."""
    image = Image.fromarray(pixels)
    if resize_mode == "squash":
        return np.asarray(image.resize((resolution, resolution), PIL_FILTERS[interpolation]))
    height, width = pixels.shape[:2]
    ratio = max(height / resolution, width / resolution)
    new_height, new_width = round(height / ratio), round(width / ratio)
    resized = np.asarray(image.resize((new_width, new_height), PIL_FILTERS[interpolation]))
    padded = np.zeros((resolution, resolution, 3), np.uint8)
    top, left = (resolution - new_height) // 2, (resolution - new_width) // 2
    padded[top:top + new_height, left:left + new_width] = resized
    return padded


@pytest.mark.parametrize("resize_mode", ["squash", "longest"])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("size", [(427, 640), (640, 427), (224, 224), (57, 99), (1000, 401)])
def test_open_clip_resize_modes(size, interpolation, resize_mode):
    pixels = photo_of_size(*size)
    ours = resize_to_square(pixels, 224, interpolation, resize_mode).numpy()
    np.testing.assert_array_equal(ours, open_clip_geometry(pixels, 224, interpolation, resize_mode))
    batch = resize_to_square(np.stack([pixels, pixels[::-1]]), 224, interpolation, resize_mode).numpy()
    np.testing.assert_array_equal(batch[1], open_clip_geometry(pixels[::-1], 224, interpolation, resize_mode))


def test_unknown_interpolation_and_resize_mode_are_named():
    with pytest.raises(ValueError, match="Unknown interpolation 'lanczos'; expected one of bicubic, bilinear"):
        resize_image(np.zeros((4, 4, 3), np.uint8), 2, 2, "lanczos")
    with pytest.raises(ValueError, match="Unknown resize_mode 'fill'; expected one of shortest, squash, longest"):
        resize_to_square(np.zeros((4, 4, 3), np.uint8), 2, resize_mode="fill")
