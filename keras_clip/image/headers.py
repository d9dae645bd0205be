"""An encoded image's format and size, read from its header with graph ops before any pixel is decoded.

Decoders allocate the whole image before reading its pixel data, so a few kilobytes that claim
20000 x 20000 pixels cost gigabytes (a decompression bomb). `read_header` gives the size each
decoder would allocate, so that `decode_image` can refuse an image before decoding it:
- JPEG: libjpeg's own header parser (`tf.io.extract_jpeg_shape`), run so that a corrupt header is
  a finding rather than an error;
- PNG: the IHDR chunk, which must come first;
- GIF: the first frame's image descriptor (TensorFlow's decoder outputs frames of that size), and
  where the first frame's data ends (see `gif_blocks`): the decoder gets the file cut after it, as
  it would otherwise decompress every frame of an animation;
- BMP: the BITMAPINFOHEADER (and, for palette images, that the file holds all its rows);
- WebP: the VP8, VP8L or VP8X (extended) header; animated WebPs are refused (TensorFlow decodes them
  only as RGBA, and every frame at once).
Only the first bytes of the file are read, except for a GIF's block structure.
"""

import collections

import tensorflow as tf

from keras_clip.image.gif_blocks import first_gif_frame
from keras_clip.utils.graph_attempts import attempt
from keras_clip.utils.graph_selection import first_true

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WebP")
JPEG, PNG, GIF, BMP, WEBP = range(len(FORMATS))
UNKNOWN = len(FORMATS)
SUPPORTED_FORMATS = "JPEG, PNG, GIF, BMP or WebP"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_BMP_HEADER_BYTES = 54  # 14-byte file header + 40-byte BITMAPINFOHEADER
_HEADER_BYTES = 64  # read from every file (zero-padded when shorter)

ImageHeader = collections.namedtuple("ImageHeader", ["kind", "width", "height", "problem", "data"])
ImageHeader.__doc__ = """What `read_header` finds (scalar tensors).

Attributes:
    kind: int32 index into `FORMATS` (`UNKNOWN` when the signature is none of them).
    width, height: int64, the pixels the decoder will allocate (0 when unknown).
    problem: string, why the file cannot be decoded ("" when the header is sound).
    data: the bytes to decode (a GIF cut after its first frame; otherwise the input).
"""


def unsigned(head, offset, size, big_endian=False):
    """The unsigned integer of `size` bytes at `offset` of a uint8 vector, as int64."""
    values = tf.cast(head[offset : offset + size], tf.int64)
    if big_endian:
        values = tf.reverse(values, [0])
    return tf.reduce_sum(tf.bitwise.left_shift(values, tf.range(0, 8 * size, 8, dtype=tf.int64)))


def _equals(head, offset, expected):
    """True if the bytes at `offset` of a uint8 vector are `expected`."""
    return tf.reduce_all(tf.equal(head[offset : offset + len(expected)], tf.constant(list(expected), tf.uint8)))


def _signed_32(value):
    return tf.where(value >= 2**31, value - 2**32, value)


def message(*parts):
    """A scalar string tensor joining strings and int tensors (tf.strings.format would quote strings)."""
    parts = [tf.convert_to_tensor(part) for part in parts]
    return tf.strings.join([part if part.dtype == tf.string else tf.strings.as_string(part) for part in parts])


def _found(width, height, problem, data):
    return tf.cast(width, tf.int64), tf.cast(height, tf.int64), tf.convert_to_tensor(problem, tf.string), data


def _jpeg(data, head):
    shape, parsed = attempt(lambda d: tf.io.extract_jpeg_shape(d, output_type=tf.int64), data, tf.zeros([3], tf.int64))
    problem = tf.where(parsed, "", "its JPEG header is corrupt or truncated")
    return _found(shape[1], shape[0], problem, data)


def _png(data, head):
    sound = tf.logical_and(tf.strings.length(data) >= 33, _equals(head, 12, b"IHDR"))
    problem = tf.where(sound, "", "its PNG header is corrupt or truncated (no IHDR chunk first)")
    return _found(unsigned(head, 16, 4, big_endian=True), unsigned(head, 20, 4, big_endian=True), problem, data)


def _gif(data, head):
    frame = first_gif_frame(data)
    cut = tf.strings.join([tf.strings.substr(data, tf.constant(0, tf.int64), frame.end), b";"])  # ";": GIF trailer
    return _found(frame.width, frame.height, frame.problem, cut)


def bmp_fields(head):
    """{name: int64} of a BMP's file header and BITMAPINFOHEADER (`head`: its first 54+ bytes as uint8)."""
    return {
        "pixel_offset": unsigned(head, 10, 4),
        "info_size": unsigned(head, 14, 4),
        "width": _signed_32(unsigned(head, 18, 4)),
        "signed_height": _signed_32(unsigned(head, 22, 4)),
        "bits": unsigned(head, 28, 2),
        "compression": unsigned(head, 30, 4),
        "colors_used": unsigned(head, 46, 4),
    }


def bmp_palette_layout(fields):
    """(bytes per row, palette entries) of a 1, 4 or 8-bit BMP."""
    all_colors = tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.minimum(fields["bits"], 8))
    colors = tf.where(fields["colors_used"] > 0, fields["colors_used"], all_colors)
    return (fields["bits"] * fields["width"] + 31) // 32 * 4, colors  # rows are padded to 4 bytes


def _bmp(data, head):
    """TensorFlow decodes 24/32-bit BMPs (and checks they hold every row); `decoding` decodes 1/4/8-bit ones."""
    f = bmp_fields(head)
    bits, compression, height = f["bits"], f["compression"], tf.abs(f["signed_height"])
    rgb = tf.logical_and(tf.reduce_any(tf.equal(bits, [24, 32])), tf.reduce_any(tf.equal(compression, [0, 3])))
    palette = tf.logical_and(tf.reduce_any(tf.equal(bits, [1, 4, 8])), tf.equal(compression, 0))
    length = tf.cast(tf.strings.length(data), tf.int64)
    sound = tf.logical_and(length >= _BMP_HEADER_BYTES, f["info_size"] >= 40)
    row_bytes, colors = bmp_palette_layout(f)
    needed = tf.maximum(f["pixel_offset"] + row_bytes * height, 14 + f["info_size"] + 4 * colors)
    complete = tf.logical_or(rgb, tf.logical_and(length >= needed, colors <= 256))
    unsupported = message(
        "unsupported or corrupt BMP (", bits, " bits per pixel, compression ", compression,
        "); uncompressed 1, 4, 8, 24 and 32-bit BMPs are supported",
    )  # fmt: skip
    problem = tf.where(
        tf.logical_and(sound, tf.logical_or(rgb, palette)),
        tf.where(complete, "", "truncated or corrupt BMP"),
        unsupported,
    )
    return _found(f["width"], height, problem, data)


def _webp(data, head):
    lossy = tf.logical_and(_equals(head, 12, b"VP8 "), _equals(head, 23, b"\x9d\x01\x2a"))
    lossless = tf.logical_and(_equals(head, 12, b"VP8L"), tf.equal(head[20], 0x2F))
    extended = _equals(head, 12, b"VP8X")
    bits = unsigned(head, 21, 4)
    width = first_true(
        [(lossy, unsigned(head, 26, 2) % 2**14), (lossless, bits % 2**14 + 1), (extended, unsigned(head, 24, 3) + 1)],
        default=tf.constant(0, tf.int64),
    )
    height = first_true(
        [(lossy, unsigned(head, 28, 2) % 2**14), (lossless, bits // 2**14 % 2**14 + 1),
         (extended, unsigned(head, 27, 3) + 1)],
        default=tf.constant(0, tf.int64),
    )  # fmt: skip
    animated = tf.logical_and(extended, tf.not_equal(tf.bitwise.bitwise_and(head[20], 2), 0))
    complete = tf.strings.length(data) >= 30
    problem = tf.where(
        tf.logical_and(complete, tf.reduce_any([lossy, lossless, extended])),
        tf.where(animated, "animated WebP images are not supported", ""),
        "its WebP header is corrupt or truncated",
    )
    return _found(width, height, problem, data)


def _unknown(data, head):
    problem = message("its ", tf.strings.length(data), f" bytes are not a {SUPPORTED_FORMATS} file "
                      "(empty, truncated or not an image)")  # fmt: skip
    return _found(0, 0, problem, data)


def _kind(head):
    signatures = [
        _equals(head, 0, _JPEG_SIGNATURE),
        _equals(head, 0, _PNG_SIGNATURE),
        tf.logical_or(_equals(head, 0, b"GIF87a"), _equals(head, 0, b"GIF89a")),
        _equals(head, 0, b"BM"),
        tf.logical_and(_equals(head, 0, b"RIFF"), _equals(head, 8, b"WEBP")),
    ]
    matches = tf.where(tf.stack(signatures))[:, 0]
    return tf.cast(tf.concat([matches, [UNKNOWN]], 0)[0], tf.int32)


@tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
def read_header(data):
    """The format and size of an encoded image, and what is wrong with its header (see the module).

    Args:
        data: scalar `tf.string`, an encoded image (or anything else).

    Returns:
        An `ImageHeader`; its `problem` is "" when the image can be handed to its decoder.

    Example:
    >>> header = read_header(tf.io.read_file("cat.jpg"))
    >>> FORMATS[int(header.kind)], int(header.width), int(header.height)
    ('JPEG', 451, 300)
    """
    padded = tf.strings.join([tf.strings.substr(data, 0, _HEADER_BYTES), b"\0" * _HEADER_BYTES])
    head = tf.io.decode_raw(tf.strings.substr(padded, 0, _HEADER_BYTES), tf.uint8)
    head = tf.ensure_shape(tf.reshape(head, [_HEADER_BYTES]), [_HEADER_BYTES])
    kind = _kind(head)
    parsers = (_jpeg, _png, _gif, _bmp, _webp, _unknown)
    width, height, problem, decoded_data = tf.switch_case(
        kind, [lambda parse=parse: parse(data, head) for parse in parsers]
    )
    return ImageHeader(kind, width, height, problem, decoded_data)
