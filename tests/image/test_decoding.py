"""Decoding every supported format to the right RGB pixels, and clear errors for bytes that are not images."""

import io
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_clip.errors import CorruptImageError
from keras_clip.image.decoding import decode_image
from tests.helpers import images

FORMATS = (
    "jpeg", "jpeg_progressive", "jpeg_cmyk", "jpeg_gray", "png", "png_rgba", "png_gray", "png_gray_alpha",
    "png_palette", "png16", "png16_gray", "gif", "bmp", "bmp_rgba", "bmp_gray", "bmp_palette8", "bmp_palette4",
    "bmp_1bit", "webp",
)  # fmt: skip
# Formats that store the photograph's RGB values exactly.
LOSSLESS_RGB = ("png", "png_rgba", "png16", "bmp", "bmp_rgba", "webp")


def photograph():
    # 451 pixels wide: odd, so BMP rows carry padding and 1/4-bit rows end mid-byte.
    return images.photographs()["chelsea"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_its_rgb_content(fmt):
    data = images.encode(photograph(), fmt)
    decoded = decode_image(data).numpy()
    assert decoded.dtype == np.uint8 and decoded.shape == photograph().shape
    # PIL's decoding (libjpeg with the accurate DCT for JPEG) is the reference, pixel for pixel.
    np.testing.assert_array_equal(decoded, images.expected_rgb(data))
    if fmt in LOSSLESS_RGB:
        np.testing.assert_array_equal(decoded, photograph())


@pytest.mark.parametrize("name", ["china", "flower"])
def test_camera_jpegs_decode_exactly_like_pil(name):
    from sklearn.datasets import load_sample_images

    path = [path for path in load_sample_images().filenames if path.endswith(f"{name}.jpg")][0]
    with open(path, "rb") as file:
        data = file.read()
    np.testing.assert_array_equal(decode_image(data).numpy(), np.asarray(Image.open(path).convert("RGB")))


def test_tensorflow_default_jpeg_dct_differs_from_pil():
    """Why decode_image asks for the accurate DCT: TensorFlow's default is off by grey levels."""
    data = images.encode(images.photographs()["astronaut"], "jpeg", quality=95)
    pil = images.expected_rgb(data).astype(int)
    default = tf.io.decode_jpeg(data, channels=3).numpy().astype(int)
    assert np.abs(default - pil).mean() > 0.5
    np.testing.assert_array_equal(decode_image(data).numpy(), pil)


def test_palette_bmp_needs_its_palette():
    """TensorFlow's own BMP decoder reads 8-bit palette indices as grey levels: wrong colours."""
    data = images.encode(photograph(), "bmp_palette8")
    expected = images.expected_rgb(data)
    assert np.abs(tf.io.decode_bmp(data, channels=3).numpy().astype(int) - expected).mean() > 10
    np.testing.assert_array_equal(decode_image(data).numpy(), expected)


def test_top_down_palette_bmp():
    data = bytearray(images.encode(photograph()[:40, :33], "bmp_palette8"))
    height = struct.unpack_from("<i", data, 22)[0]
    header_end = struct.unpack_from("<I", data, 10)[0]
    row_bytes = (8 * 33 + 31) // 32 * 4
    rows = np.frombuffer(bytes(data[header_end:]), np.uint8).reshape(height, row_bytes)
    data[header_end:] = rows[::-1].tobytes()
    struct.pack_into("<i", data, 22, -height)
    bottom_up = images.encode(photograph()[:40, :33], "bmp_palette8")
    np.testing.assert_array_equal(decode_image(bytes(data)).numpy(), decode_image(bottom_up).numpy())


def test_gif_gives_its_first_frame():
    first, second = photograph(), photograph()[::-1].copy()
    frames = [Image.fromarray(frame).quantize(256) for frame in (first, second)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    data = buffer.getvalue()
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # PIL opens the first frame
    np.testing.assert_array_equal(decode_image(data).numpy(), expected)


def test_decoding_is_identical_in_tf_function_and_tf_data():
    encoded = [images.encode(photograph(), fmt) for fmt in ("jpeg_cmyk", "png16", "bmp_palette4", "gif")]
    graph_decode = tf.function(decode_image)
    dataset = tf.data.Dataset.from_tensor_slices(encoded).map(decode_image)
    for data, from_dataset in zip(encoded, dataset):
        eager = decode_image(data).numpy()
        np.testing.assert_array_equal(graph_decode(tf.constant(data)).numpy(), eager)
        np.testing.assert_array_equal(from_dataset.numpy(), eager)


def _jpeg():
    return images.encode(photograph(), "jpeg")


def _bmp_with_compression(compression):
    data = bytearray(images.encode(photograph(), "bmp_palette8"))
    struct.pack_into("<I", data, 30, compression)
    return bytes(data)


def _flipped(data, position):
    """A copy of `data` with one byte's bits inverted at `position` (a fraction of its length)."""
    data = bytearray(data)
    data[int(len(data) * position)] ^= 0xFF
    return bytes(data)


def _animated_webp():
    frames = [Image.fromarray(frame) for frame in (photograph()[:64, :64], photograph()[64:128, :64])]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    return buffer.getvalue()


# Case -> (bytes, eager message, graph message): eagerly the decoders' own words; in a graph, where their
# errors are caught, what failed. Both start "Could not decode <the image's name>: ".
_GRAPH_CORRUPT = "bytes are not a valid {} file \\(corrupt or truncated data\\)"
CORRUPT = {
    "empty": (lambda: b"", "its 0 bytes are not a JPEG, PNG, GIF, BMP or WebP file", None),
    "html error page": (lambda: b"<html><body>404 Not Found</body></html>", "not a JPEG, PNG, GIF, BMP or WebP", None),
    "truncated jpeg": (lambda: _jpeg()[: len(_jpeg()) // 2], "Invalid JPEG data", _GRAPH_CORRUPT.format("JPEG")),
    "jpeg header only": (lambda: _jpeg()[:300], "its JPEG header is corrupt or truncated", None),
    "truncated png": (lambda: images.encode(photograph(), "png")[:5000], "Invalid PNG data",
                      _GRAPH_CORRUPT.format("PNG")),
    "corrupt png": (lambda: _flipped(images.encode(photograph(), "png"), 0.5), "Invalid PNG data",
                    _GRAPH_CORRUPT.format("PNG")),
    "png signature only": (lambda: images.encode(photograph(), "png")[:20], "its PNG header is corrupt", None),
    "truncated gif": (lambda: images.encode(photograph(), "gif")[:3000], "its GIF data ends before its first frame",
                      None),
    "gif without image": (lambda: b"GIF89a" + struct.pack("<HH", 10, 10) + b"\0\0\0;", "its GIF has no image", None),
    "truncated bmp": (lambda: images.encode(photograph(), "bmp")[:5000], "Input size should match",
                      _GRAPH_CORRUPT.format("BMP")),
    "truncated palette bmp": (lambda: images.encode(photograph(), "bmp_palette8")[:5000], "truncated or corrupt BMP",
                              None),
    "run-length bmp": (lambda: _bmp_with_compression(1), r"unsupported or corrupt BMP \(8 bits per pixel, compr",
                       None),
    "bmp signature only": (lambda: b"BM" + bytes(20), "unsupported or corrupt BMP", None),
    "truncated webp": (lambda: images.encode(photograph(), "webp")[:5000], "Failed to decode WebP",
                       _GRAPH_CORRUPT.format("WebP")),
    "animated webp": (_animated_webp, "animated WebP images are not supported", None),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_bytes_raise_invalid_argument_saying_what_failed(case):
    make, eager_message, graph_message = CORRUPT[case]
    data = make()
    with pytest.raises(CorruptImageError, match=eager_message) as error:
        decode_image(data, path="holiday.jpg")
    assert error.value.path == "holiday.jpg" and error.value.index is None
    assert str(error.value).startswith("Could not decode holiday.jpg: ")
    expected = "Could not decode the image at index 4: .*" + (graph_message or eager_message)
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        tf.function(decode_image)(tf.constant(data), index=tf.constant(4))
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        dataset = tf.data.Dataset.from_tensor_slices([data]).map(lambda element: decode_image(element, index=4))
        next(iter(dataset))
    named = "Could not decode holiday.jpg: .*" + (graph_message or eager_message)
    with pytest.raises(tf.errors.InvalidArgumentError, match=named):
        tf.function(decode_image)(tf.constant(data), path=tf.constant("holiday.jpg"))


def test_error_names_the_image():
    with pytest.raises(CorruptImageError, match="Could not decode holiday.jpg: its 3 bytes") as error:
        decode_image(b"abc", index=4, path="holiday.jpg")
    assert (error.value.index, error.value.path, error.value.reason.split(" bytes")[0]) == (4, "holiday.jpg", "its 3")
    with pytest.raises(CorruptImageError, match="Could not decode the image at index 4: its 3 bytes"):
        decode_image(b"abc", index=4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Could not decode holiday.jpg: its 3 bytes"):
        tf.function(lambda data: decode_image(data, path="holiday.jpg"))(tf.constant(b"abc"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Could not decode the image at index 7: its 3 bytes"):
        tf.function(lambda data, index: decode_image(data, index=index))(tf.constant(b"abc"), tf.constant(7))


def test_decode_image_takes_one_image():
    with pytest.raises(ValueError, match="one image"):
        decode_image([_jpeg(), _jpeg()])
