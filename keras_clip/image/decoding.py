"""Encoded image bytes -> uint8 RGB pixels, with core TensorFlow ops only (TF Serving runs them).

Formats: JPEG (baseline, progressive, grayscale, CMYK), PNG (8/16-bit, grayscale, palette, alpha),
GIF (first frame), BMP (24/32-bit and 1/4/8-bit palettes, uncompressed), WebP. Grayscale becomes
RGB by repetition, alpha is dropped (as PIL's `convert("RGB")` does), 16-bit samples keep their high byte.

JPEGs are decoded with libjpeg's accurate integer DCT, the method PIL uses: TensorFlow's default (the
fast DCT) differs from PIL by about one grey level on average and by up to 18 levels.
EXIF orientation is not applied (neither PIL's `Image.open` nor OpenAI's pipeline applies it).
"""

import tensorflow as tf

from keras_clip.errors import CorruptImageError

SUPPORTED_FORMATS = "JPEG, PNG, GIF, BMP or WebP"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_BMP_HEADER_BYTES = 54  # 14-byte file header + 40-byte BITMAPINFOHEADER


def decode_image(data, index=None, path=None):
    """Decodes one encoded image to its RGB pixels.

    Args:
        data: scalar `tf.string`, the bytes of a JPEG, PNG, GIF, BMP or WebP file.
        index: optional position of the image in the caller's batch or dataset (int or int tensor),
            named in errors.
        path: optional file the bytes came from (str or string tensor), named in errors.

    Returns:
        uint8 tensor [height, width, 3].

    Raises:
        CorruptImageError: eagerly, the bytes are not an image of a supported format or are corrupt
            (`index` and `path` set). In a graph the same failure is a `tf.errors.InvalidArgumentError`
            whose message names the image.

    Example:
    >>> pixels = decode_image(tf.io.read_file("cat.jpg"), path="cat.jpg")
    >>> pixels.shape, pixels.dtype
    (TensorShape([300, 451, 3]), tf.uint8)
    """
    data = tf.convert_to_tensor(data, tf.string)
    if data.shape.rank != 0:
        raise ValueError(f"decode_image takes one image (a scalar string), got shape {data.shape}")
    if not tf.executing_eagerly():
        return _decode(data, _ImageName(index, path))
    name = _ImageName(_python_value(index), _python_value(path))
    try:
        return _decode(data, name)
    except CorruptImageError:
        raise
    except tf.errors.InvalidArgumentError as error:  # a decoder's own error, e.g. "Invalid JPEG data"
        raise CorruptImageError(error.message, name.index, name.path) from None


class _ImageName:
    """An image's index and path, and how a graph's error message names it."""

    def __init__(self, index, path):
        self.index = index
        self.path = path

    def tensor(self):
        if self.path is not None:
            return tf.convert_to_tensor(self.path, tf.string)
        if self.index is not None:
            return tf.strings.join(["the image at index ", tf.strings.as_string(self.index)])
        return tf.constant("the image")


def _python_value(value):
    if isinstance(value, tf.Tensor):
        value = value.numpy()
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _decode(data, name):
    # Padding lets the signature checks slice fixed positions of inputs shorter than 12 bytes.
    header = tf.strings.join([tf.strings.substr(data, 0, 12), b"\0" * 12])
    branches = [
        (tf.equal(tf.strings.substr(header, 0, 3), _JPEG_SIGNATURE), lambda: _decode_jpeg(data)),
        (tf.equal(tf.strings.substr(header, 0, 8), _PNG_SIGNATURE), lambda: tf.io.decode_png(data, channels=3)),
        (_is_gif(header), lambda: tf.io.decode_gif(data)[0]),
        (tf.equal(tf.strings.substr(header, 0, 2), b"BM"), lambda: _decode_bmp(data, name)),
        (_is_webp(header), lambda: tf.io.decode_webp(data, channels=3)[0]),
    ]
    image = tf.case(branches, default=lambda: _unknown_format(data, name), exclusive=False)
    return tf.ensure_shape(image, [None, None, 3])


def _decode_jpeg(data):
    return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")


def _is_gif(header):
    magic = tf.strings.substr(header, 0, 6)
    return tf.logical_or(tf.equal(magic, b"GIF87a"), tf.equal(magic, b"GIF89a"))


def _is_webp(header):
    return tf.logical_and(
        tf.equal(tf.strings.substr(header, 0, 4), b"RIFF"), tf.equal(tf.strings.substr(header, 8, 4), b"WEBP")
    )


def _message(*parts):
    """A scalar string tensor joining strings and int tensors (tf.strings.format would quote strings)."""
    parts = [tf.convert_to_tensor(part) for part in parts]
    return tf.strings.join([part if part.dtype == tf.string else tf.strings.as_string(part) for part in parts])


def _fail(name, reason):
    """Fails decoding `name` for `reason` (a scalar string tensor): eagerly a CorruptImageError, in a
    graph an assertion (InvalidArgumentError "Could not decode <name>: <reason>") and a [0, 0, 3] image."""
    if tf.executing_eagerly():
        raise CorruptImageError(reason.numpy().decode("utf-8", "replace"), name.index, name.path)
    check = tf.debugging.Assert(False, [_message("Could not decode ", name.tensor(), ": ", reason)], summarize=1)
    with tf.control_dependencies([check]):
        return tf.zeros([0, 0, 3], tf.uint8)


def _unknown_format(data, name):
    reason = _message(
        "its ", tf.strings.length(data), f" bytes are not a {SUPPORTED_FORMATS} file (empty, truncated or not an image)"
    )
    return _fail(name, reason)


def _little_endian(data, offset, dtype):
    size = tf.dtypes.as_dtype(dtype).size
    return tf.io.decode_raw(tf.strings.substr(data, offset, size), dtype, little_endian=True)[0]


def _decode_bmp(data, name):
    """BMP: TensorFlow decodes 24/32-bit files; palette files (1/4/8-bit) are decoded here.

    TensorFlow's own BMP decoder reads an 8-bit palette image as grayscale indices (wrong colours)
    and rejects 1/4-bit files, so those go through `_decode_bmp_palette`.
    """
    long_enough = tf.strings.length(data) >= _BMP_HEADER_BYTES
    header = tf.strings.join([tf.strings.substr(data, 0, _BMP_HEADER_BYTES), b"\0" * _BMP_HEADER_BYTES])
    info_size = _little_endian(header, 14, tf.int32)
    bits = tf.cast(_little_endian(header, 28, tf.uint16), tf.int32)
    compression = _little_endian(header, 30, tf.int32)
    rgb = tf.logical_and(tf.reduce_any(tf.equal(bits, [24, 32])), tf.reduce_any(tf.equal(compression, [0, 3])))
    palette = tf.logical_and(tf.reduce_any(tf.equal(bits, [1, 4, 8])), tf.equal(compression, 0))
    valid = tf.logical_and(long_enough, info_size >= 40)
    unsupported = _message(
        "unsupported or corrupt BMP (", bits, " bits per pixel, compression ", compression,
        "); uncompressed 1, 4, 8, 24 and 32-bit BMPs are supported",
    )
    return tf.case(
        [
            (tf.logical_and(valid, rgb), lambda: tf.io.decode_bmp(data, channels=3)),
            (tf.logical_and(valid, palette), lambda: _decode_bmp_palette(data, header, info_size, bits, name)),
        ],
        default=lambda: _fail(name, unsupported),
        exclusive=True,
    )


def _decode_bmp_palette(data, header, info_size, bits, name):
    pixel_offset = _little_endian(header, 10, tf.int32)
    width = _little_endian(header, 18, tf.int32)
    signed_height = _little_endian(header, 22, tf.int32)
    height = tf.abs(signed_height)
    colors_used = _little_endian(header, 46, tf.int32)
    num_colors = tf.where(colors_used > 0, colors_used, tf.bitwise.left_shift(1, bits))
    row_bytes = (bits * width + 31) // 32 * 4  # rows are padded to 4 bytes
    needed = tf.maximum(pixel_offset + row_bytes * height, 14 + info_size + 4 * num_colors)
    complete = tf.logical_and(tf.strings.length(data) >= needed, width > 0)
    check = tf.cond(
        complete,
        lambda: tf.zeros([0, 0, 3], tf.uint8),
        lambda: _fail(name, tf.constant("truncated or corrupt BMP")),
    )
    with tf.control_dependencies([check]):
        # Palette entries are blue, green, red, reserved.
        palette = tf.io.decode_raw(tf.strings.substr(data, 14 + info_size, 4 * num_colors), tf.uint8)
        palette = tf.reverse(tf.reshape(palette, [-1, 4])[:, :3], axis=[1])
        rows = tf.io.decode_raw(tf.strings.substr(data, pixel_offset, row_bytes * height), tf.uint8)
    rows = tf.reshape(rows, [height, row_bytes])
    per_byte = 8 // bits
    # Split each byte into `per_byte` indices, most significant bits first.
    shifts = tf.cast(8 - bits * (tf.range(per_byte) + 1), tf.uint8)
    mask = tf.cast(tf.bitwise.left_shift(1, bits) - 1, tf.uint8)
    indices = tf.bitwise.bitwise_and(tf.bitwise.right_shift(rows[:, :, None], shifts), mask)
    indices = tf.reshape(indices, [height, row_bytes * per_byte])[:, :width]
    indices = tf.minimum(tf.cast(indices, tf.int32), num_colors - 1)
    image = tf.gather(palette, indices)
    # A positive height means the rows are stored bottom-up.
    return tf.cond(signed_height > 0, lambda: tf.reverse(image, axis=[0]), lambda: image)
