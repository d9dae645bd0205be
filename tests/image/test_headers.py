"""Image sizes read from headers before decoding: the pixel limit for every format, and a fuzz test of the parser."""

import io
import struct
import time

import hypothesis
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import strategies as st
from PIL import Image

from keras_clip.errors import CorruptImageError, ImageTooLargeError
from keras_clip.image.decoding import decode_image
from keras_clip.image.headers import FORMATS, read_header
from tests.helpers import image_bombs, images
from tests.helpers.fuzzing import fuzz_settings
from tests.helpers.memory import peak_growth_mb

ENCODINGS = (
    "jpeg", "jpeg_progressive", "jpeg_cmyk", "jpeg_gray", "png", "png_rgba", "png_palette", "png16", "gif", "bmp",
    "bmp_rgba", "bmp_palette8", "bmp_palette4", "bmp_1bit", "webp",
)  # fmt: skip


def photograph():
    return images.photographs()["chelsea"][:123, :77]


@pytest.mark.parametrize("fmt", ENCODINGS + ("webp_lossy", "webp_extended"))
def test_header_gives_the_size_pil_reads(fmt):
    pixels = photograph()
    if fmt == "webp_lossy":
        data = images.encode(pixels, "webp", lossless=False, quality=80)
    elif fmt == "webp_extended":  # VP8X: written with an ICC profile
        data = images.encode(pixels, "webp", icc_profile=b"\0" * 128)
        assert data[12:16] == b"VP8X"
    else:
        data = images.encode(pixels, fmt)
    header = read_header(tf.constant(data))
    assert header.problem.numpy() == b""
    assert (FORMATS[int(header.kind)], int(header.width), int(header.height)) == (
        Image.open(io.BytesIO(data)).format.replace("WEBP", "WebP"), 77, 123,
    )  # fmt: skip


# Files of a few kilobytes (or megabytes) that claim more pixels than the limit; the decoders would allocate
# them before reading the pixel data. PIL opens each with the same size (and refuses it by default).
BOMBS = {
    "png": (lambda: image_bombs.png_bomb(20000, 20000), (20000, 20000)),
    "jpeg": (lambda: image_bombs.jpeg_with_size(images.encode(photograph(), "jpeg"), 30000, 20000), (30000, 20000)),
    "progressive jpeg": (lambda: image_bombs.jpeg_with_size(images.encode(photograph(), "jpeg_progressive"), 15000,
                                                            15000), (15000, 15000)),  # fmt: skip
    "gif": (lambda: image_bombs.gif_with_frame_size(images.encode(photograph(), "gif"), 65535, 65535), (65535, 65535)),
    "webp": (lambda: image_bombs.webp_lossless_header(16384, 16384), (16384, 16384)),
    "bmp": (lambda: image_bombs.bmp_header(20000, -20000, bits=24), (20000, 20000)),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_an_image_over_max_pixels_is_refused_from_its_header(case):
    make, (width, height) = BOMBS[case]
    data = make()
    expected = f"Could not decode the image at index 2: its {width} x {height} pixels exceed max_pixels \\(178956970\\)"
    with pytest.raises(ImageTooLargeError, match=expected) as error:
        decode_image(data, index=2)
    assert error.value.index == 2
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        tf.function(lambda data: decode_image(data, index=2))(tf.constant(data))
    small = decode_image(images.encode(photograph(), "png"), max_pixels=77 * 123)
    assert small.shape == (123, 77, 3)
    with pytest.raises(ImageTooLargeError, match="its 77 x 123 pixels exceed max_pixels \\(9470\\)"):
        decode_image(images.encode(photograph(), "png"), max_pixels=77 * 123 - 1)


def test_animated_gif_is_decoded_in_the_memory_of_its_first_frame():
    """TensorFlow decompresses every frame (and `decode_gif` returns them all): 40 frames of 1000 x 1000
    took 160 MB for a 100 KB file. Cut after its first frame, the file takes the memory of one."""
    data = image_bombs.gif_frames(1000, 1000, 40)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    decode_image(image_bombs.gif_frames(1000, 1000, 1))  # fills the allocator's caches
    for decode in (decode_image, tf.function(decode_image)):
        with peak_growth_mb() as growth:
            decoded = decode(tf.constant(data)).numpy()
        np.testing.assert_array_equal(decoded, expected)
        # One frame: 3 MB decoded, 1 MB of palette indices; all 40 frames' would be 160 MB.
        assert growth.mb < 40, growth.mb


def test_too_small_headers_and_empty_images():
    for data, message in [
        (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 0, 10) + bytes(9),
         "its header gives it no pixels \\(0 x 10\\)"),
        (image_bombs.gif_with_frame_size(images.encode(photograph(), "gif"), 0, 0), "no pixels \\(0 x 0\\)"),
        (image_bombs.bmp_header(-5, 5), "no pixels \\(-5 x 5\\)"),
        (b"", "its 0 bytes are not a JPEG, PNG, GIF, BMP or WebP file"),
    ]:  # fmt: skip
        with pytest.raises(CorruptImageError, match="Could not decode the image at index 0: .*" + message):
            decode_image(data, index=0)
        with pytest.raises(tf.errors.InvalidArgumentError, match="Could not decode the image at index 0: .*" + message):
            tf.function(lambda data: decode_image(data, index=0))(tf.constant(data))


def test_reading_a_header_is_cheap():
    data = images.encode(images.photographs()["astronaut"], "jpeg")
    read_header(tf.constant(data))
    start = time.perf_counter()
    for _ in range(20):
        read_header(tf.constant(data))
    assert (time.perf_counter() - start) / 20 < 0.05


# Fuzzing: valid files of every format, their headers (the first 64 bytes) or any bytes mutated, truncated,
# or random bytes behind a real signature. Every input decodes, or fails with an error naming the image, in
# bounded memory; eager and graph decoding agree.
FUZZ_MAX_PIXELS = 2**20


def _seed_files():
    pixels = images.photographs()["coffee"][:40, :56]
    files = [images.encode(pixels, fmt) for fmt in ENCODINGS]
    files.append(images.encode(pixels, "webp", lossless=False, quality=70))
    files.append(image_bombs.gif_frames(16, 12, 3))
    return files


SEEDS = _seed_files()
SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBP", b""]


@st.composite
def hostile_images(draw):
    how = draw(st.sampled_from(["header bytes", "any bytes", "truncated", "random"]))
    if how == "random":
        return draw(st.sampled_from(SIGNATURES)) + draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    if how == "truncated":
        return bytes(data[: draw(st.integers(0, len(data)))])
    reach = min(64, len(data)) if how == "header bytes" else len(data)
    for position, value in draw(st.lists(st.tuples(st.integers(0, reach - 1), st.integers(0, 255)), min_size=1,
                                         max_size=8)):  # fmt: skip
        data[position] = value
    return bytes(data)


@pytest.mark.fuzz
def test_fuzzed_headers_decode_or_fail_naming_the_image_in_bounded_memory():
    graph_decode = tf.function(lambda data: decode_image(data, index=7, max_pixels=FUZZ_MAX_PIXELS))
    outcomes = {"decoded": 0, "refused": 0}

    @fuzz_settings()
    @hypothesis.given(hostile_images())
    def check(data):
        try:
            eager = decode_image(data, index=7, max_pixels=FUZZ_MAX_PIXELS).numpy()
        except CorruptImageError as error:
            assert error.index == 7 and str(error).startswith("Could not decode the image at index 7: "), error
            eager = None
        try:
            graph = graph_decode(tf.constant(data)).numpy()
        except tf.errors.InvalidArgumentError as error:
            assert "Could not decode the image at index 7: " in error.message, error.message[-2000:]
            graph = None
        assert (eager is None) == (graph is None), (eager is None, graph is None)
        if eager is not None:
            height, width, channels = eager.shape
            assert channels == 3 and 1 <= height * width <= FUZZ_MAX_PIXELS
            np.testing.assert_array_equal(graph, eager)
        outcomes["refused" if eager is None else "decoded"] += 1

    with peak_growth_mb() as growth:
        check()
    print(f"\nfuzzed image headers: {outcomes}; peak memory growth {growth.mb:.0f} MB")
    assert min(outcomes.values()) > 0.05 * sum(outcomes.values()), outcomes
    assert growth.mb < 300, growth.mb
