"""Encoded image bytes -> uint8 RGB pixels, with core TensorFlow ops only (TF Serving runs them).

Formats: JPEG (baseline, progressive, grayscale, CMYK), PNG (8/16-bit, grayscale, palette, alpha),
GIF (first frame), BMP (24/32-bit and 1/4/8-bit palettes, uncompressed), WebP (still images). Grayscale
becomes RGB by repetition, alpha is dropped (as PIL's `convert("RGB")` does), 16-bit samples keep their
high byte.

Before any pixel is decoded, the image's size is read from its header (`headers.read_header`): an
image of more than `max_pixels` pixels is refused (a decompression bomb: a 1.2 MB PNG can claim
20000 x 20000 pixels, 1.2 GB decoded). The default is PIL's `Image.MAX_IMAGE_PIXELS`, 178,956,970
(PIL warns above it and refuses twice as many).

Errors name the image (its index or path): eagerly a `CorruptImageError` (an `ImageTooLargeError`
for the size limit) with the decoder's own message; in a graph an InvalidArgumentError with the same
"Could not decode the image at index i: ..." start, the decoders' failures being caught in the graph
(`utils.graph_attempts`).

JPEGs are decoded with libjpeg's accurate integer DCT, the method PIL uses: TensorFlow's default (the
fast DCT) differs from PIL by about one grey level on average and by up to 18 levels.
EXIF orientation is not applied (neither PIL's `Image.open` nor OpenAI's pipeline applies it).
"""

import tensorflow as tf

from keras_clip.errors import CorruptImageError, ImageTooLargeError
from keras_clip.image.headers import (
    BMP, FORMATS, GIF, JPEG, PNG, WEBP, bmp_fields, bmp_palette_layout, message, read_header,
)
from keras_clip.image.settings import DEFAULT_MAX_PIXELS, check_max_pixels
from keras_clip.utils.graph_attempts import attempt
from keras_clip.utils.graph_selection import first_true


def decode_image(data, index=None, path=None, max_pixels=DEFAULT_MAX_PIXELS):
    """Decodes one encoded image to its RGB pixels.

    Args:
        data: scalar `tf.string`, the bytes of a JPEG, PNG, GIF, BMP or WebP file.
        index: optional position of the image in the caller's batch or dataset (int or int tensor),
            named in errors.
        path: optional file the bytes came from (str or string tensor), named in errors.
        max_pixels: the largest width x height decoded (checked from the header, before decoding);
            None: no limit. Default: PIL's 178,956,970.

    Returns:
        uint8 tensor [height, width, 3].

    Raises:
        CorruptImageError: eagerly, the bytes are not an image of a supported format or are corrupt
            (`index` and `path` set); `ImageTooLargeError` (a CorruptImageError) when it has more than
            `max_pixels` pixels. In a graph the same failures are `tf.errors.InvalidArgumentError`s
            whose message names the image ("Could not decode the image at index 3: ...").

    Example:
    >>> pixels = decode_image(tf.io.read_file("cat.jpg"), path="cat.jpg")
    >>> pixels.shape, pixels.dtype
    (TensorShape([300, 451, 3]), tf.uint8)
    """
    max_pixels = check_max_pixels(max_pixels)
    data = tf.convert_to_tensor(data, tf.string)
    if data.shape.rank != 0:
        raise ValueError(f"decode_image takes one image (a scalar string), got shape {data.shape}")
    if not tf.executing_eagerly():
        return _decode(data, _ImageName(index, path), max_pixels)
    name = _ImageName(_python_value(index), _python_value(path))
    try:
        return _decode(data, name, max_pixels)
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


def _refusal(header, max_pixels):
    """(why the image is not decoded: "" when it is, True when it is too large), from its header."""
    width, height = header.width, header.height
    empty = tf.logical_or(width < 1, height < 1)
    too_large = tf.constant(False)
    if max_pixels is not None:
        # In floats: width * height of a hostile header can overflow int64.
        pixels = tf.cast(width, tf.float64) * tf.cast(height, tf.float64)
        too_large = tf.logical_and(tf.logical_not(empty), pixels > float(max_pixels))
        too_large = tf.logical_and(tf.equal(header.problem, ""), too_large)
    reason = first_true(
        [
            (tf.not_equal(header.problem, ""), header.problem),
            (empty, message("its header gives it no pixels (", width, " x ", height, ")")),
            (too_large, message(
                "its ", width, " x ", height, " pixels exceed max_pixels (", str(max_pixels),
                "), a guard against decompression bombs; pass a larger max_pixels to decode it",
            )),
        ],
        default="",
    )  # fmt: skip
    return reason, too_large


def _decode(data, name, max_pixels):
    header = read_header(data)
    reason, too_large = _refusal(header, max_pixels)
    if tf.executing_eagerly():
        if reason.numpy():
            error = ImageTooLargeError if too_large.numpy() else CorruptImageError
            raise error(reason.numpy().decode("utf-8", "replace"), name.index, name.path)
        return _decode_format(header.kind, header.data)

    def decode():
        image, decoded = _attempt_decoding(header.kind, header.data)
        format_name = tf.gather(tf.constant(FORMATS), header.kind)
        corrupt = message("its ", tf.strings.length(data), " bytes are not a valid ", format_name,
                          " file (corrupt or truncated data)")  # fmt: skip
        return tf.cond(decoded, lambda: image, lambda: _fail(name, corrupt))

    image = tf.cond(tf.equal(reason, ""), decode, lambda: _fail(name, reason))
    return tf.ensure_shape(image, [None, None, 3])


@tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.string)], autograph=False)
def _attempt_decoding(kind, data):
    """(pixels, True), or (an empty image, False) when the decoder fails: in graphs (one function, traced once)."""
    return attempt(_decode_format, (kind, data), tf.zeros([0, 0, 3], tf.uint8))


def _decode_format(kind, data):
    """The decoder of the format `kind` on `data` (a format `read_header` found sound)."""
    decoders = {
        JPEG: lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        PNG: lambda: tf.io.decode_png(data, channels=3),
        GIF: lambda: tf.io.decode_gif(data)[0],  # `data` holds only the first frame
        BMP: lambda: _decode_bmp(data),
        WEBP: lambda: tf.io.decode_webp(data, channels=3)[0],
    }
    image = tf.switch_case(kind, [decoders[format_index] for format_index in range(len(FORMATS))])
    return tf.ensure_shape(image, [None, None, 3])


def _fail(name, reason):
    """Fails decoding `name` for `reason` (a scalar string tensor) in a graph: an assertion
    (InvalidArgumentError "Could not decode <name>: <reason>") and a [0, 0, 3] image."""
    check = tf.debugging.Assert(False, [message("Could not decode ", name.tensor(), ": ", reason)], summarize=1)
    with tf.control_dependencies([check]):
        return tf.zeros([0, 0, 3], tf.uint8)


def _decode_bmp(data):
    """BMP: TensorFlow decodes 24/32-bit files; palette files (1/4/8-bit) are decoded here.

    TensorFlow's own BMP decoder reads an 8-bit palette image as grayscale indices (wrong colours)
    and rejects 1/4-bit files, so those go through `_decode_bmp_palette`.
    """
    head = tf.io.decode_raw(tf.strings.substr(data, 0, 54), tf.uint8)  # `read_header` checked it is complete
    fields = bmp_fields(head)
    return tf.cond(
        fields["bits"] >= 24, lambda: tf.io.decode_bmp(data, channels=3), lambda: _decode_bmp_palette(data, fields)
    )


def _decode_bmp_palette(data, fields):
    """A 1, 4 or 8-bit BMP whose header `read_header` checked (its rows and palette are in `data`)."""
    row_bytes, colors = bmp_palette_layout(fields)
    bits, width, height = fields["bits"], fields["width"], tf.abs(fields["signed_height"])
    zero = tf.constant(0, tf.int64)
    # Palette entries are blue, green, red, reserved.
    palette = tf.io.decode_raw(tf.strings.substr(data, 14 + fields["info_size"], 4 * colors), tf.uint8)
    palette = tf.reverse(tf.reshape(palette, [-1, 4])[:, :3], axis=[1])
    rows = tf.io.decode_raw(tf.strings.substr(data, fields["pixel_offset"], row_bytes * height), tf.uint8)
    rows = tf.reshape(rows, tf.stack([height, row_bytes]))
    per_byte = 8 // bits
    # Split each byte into `per_byte` indices, most significant bits first.
    shifts = tf.cast(8 - bits * (tf.range(per_byte) + 1), tf.uint8)
    mask = tf.cast(tf.bitwise.left_shift(tf.constant(1, tf.int64), bits) - 1, tf.uint8)
    indices = tf.bitwise.bitwise_and(tf.bitwise.right_shift(rows[:, :, None], shifts), mask)
    indices = tf.reshape(indices, tf.stack([height, row_bytes * per_byte]))
    indices = tf.slice(indices, tf.stack([zero, zero]), tf.stack([height, width]))
    indices = tf.minimum(tf.cast(indices, tf.int64), colors - 1)
    image = tf.gather(palette, indices)
    # A positive height means the rows are stored bottom-up.
    return tf.cond(fields["signed_height"] > 0, lambda: tf.reverse(image, axis=[0]), lambda: image)
