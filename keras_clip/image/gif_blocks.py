"""A GIF's first frame: its size and where its data ends, found with graph ops.

A GIF is a header, then blocks: extensions (0x21) and images (0x2C), each followed by a chain of
sub-blocks (a length byte, then that many bytes; a zero length ends the chain), then a trailer (0x3B).
TensorFlow's decoder decompresses every frame before it returns the first (and `tf.io.decode_gif`
returns them all), so a small animation can cost gigabytes; cut after its first frame it cannot.

Encoders write sub-blocks of 255 bytes but the last: a chain's leading full sub-blocks are skipped with
one strided slice, the rest followed one sub-block per loop step (about 15 us each). A file of tiny
sub-blocks would cost a loop step per two bytes: past a budget of one step per 128 bytes, chains are
followed 16 KB at a time by pointer doubling (each position's next sub-block composed with itself 14
times), so no file costs more than about 0.2 s per MB.
"""

import collections

import tensorflow as tf

from keras_clip.utils.graph_selection import first_true

GifFrame = collections.namedtuple("GifFrame", ["width", "height", "end", "problem"])
GifFrame.__doc__ = """The first frame of a GIF (scalar tensors): `width`, `height` (int64), `end` (int64, the
offset just after its data) and `problem` (string, "" when the frame was found whole)."""

# Extension blocks allowed before the first image (files have a few: graphic control, application, comment).
MAX_EXTENSION_BLOCKS = 1000
_WINDOW = 16384  # bytes of a sub-block chain followed per pointer-doubling step
_DOUBLINGS = 14  # 2**14 pointer steps cover a window (a step advances at least 2 bytes)
_MAX_SUB_BLOCK = 256  # a length byte and up to 255 bytes
_BYTES_PER_STEP = 128  # the budget of one-sub-block loop steps: one per 128 bytes of the file

_RUNNING, _FOUND, _TRUNCATED, _NO_IMAGE, _BAD_BLOCK, _TOO_MANY_BLOCKS = range(6)
_PROBLEMS = [
    "",
    "",
    "its GIF data ends before its first frame does (truncated)",
    "its GIF has no image",
    "its GIF block structure is corrupt",
    f"its GIF has more than {MAX_EXTENSION_BLOCKS} extension blocks before its first image",
]


def _padded(raw, start, count):
    """`count` bytes of `raw` from `start` (int64), zero-padded past its end, as int64."""
    return tf.cast(tf.concat([raw[start : start + count], tf.zeros([count], tf.uint8)], 0)[:count], tf.int64)


def _window_step(raw, start):
    """Follows the sub-block chain at `start` (int64) through one window of bytes, by pointer doubling: the
    chain's zero length byte if it is in the window, else the chain's first sub-block past the window
    (past the file's end when the file stops mid-chain)."""
    window = tf.cast(raw[start : start + _WINDOW], tf.int32)
    valid = tf.size(window)
    positions = tf.range(valid)
    # Past the window, positions point to themselves (as does a zero length byte): the chain stops there.
    pointers = tf.concat(
        [tf.where(tf.equal(window, 0), positions, positions + 1 + window), tf.range(valid, valid + _MAX_SUB_BLOCK)], 0
    )
    for _ in range(_DOUBLINGS):
        pointers = tf.gather(pointers, pointers)
    return start + tf.cast(pointers[0], tf.int64)


def _follow_chain(raw, length, start, budget):
    """(position of the zero length byte ending the chain at `start`, or one past the file's end; the loop
    steps left of `budget`)."""

    def length_byte(position):
        return tf.cast(tf.gather(raw, tf.minimum(position, length - 1)), tf.int64)

    def in_chain(position):
        return tf.logical_and(position < length, tf.not_equal(length_byte(position), 0))

    # Encoders write full sub-blocks (255 bytes) but the last: skip them at once, with a strided slice.
    full = tf.cast(tf.equal(raw[start::_MAX_SUB_BLOCK], 255), tf.int32)
    start += _MAX_SUB_BLOCK * tf.argmin(tf.concat([full, [0]], 0))
    position, budget = tf.while_loop(
        lambda position, budget: tf.logical_and(budget > 0, in_chain(position)),
        lambda position, budget: (position + 1 + length_byte(position), budget - 1),
        (start, budget),
    )
    (position,) = tf.while_loop(in_chain, lambda position: (_window_step(raw, position),), (position,))
    return position, budget


def _colour_table_bytes(flags):
    """Bytes of the colour table that a screen or image descriptor's `flags` byte (int64) announces."""
    return tf.where(flags >= 128, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), flags % 8), 0)


def first_gif_frame(data):
    """The first frame of the GIF `data` (scalar string): a `GifFrame`.

    Example:
    >>> frame = first_gif_frame(tf.io.read_file("animation.gif"))
    >>> int(frame.width), int(frame.height), frame.problem.numpy()
    (320, 240, b'')
    """
    raw = tf.reshape(tf.io.decode_raw(data, tf.uint8), [-1])
    length = tf.size(raw, out_type=tf.int64)
    zero = tf.constant(0, tf.int64)

    def read_block(position, width, height, status, blocks, budget):
        """The block at `position`: an extension or an image, each with its chain of sub-blocks."""
        kind = _padded(raw, position, 1)[0]
        descriptor = _padded(raw, position, 10)
        is_image = tf.equal(kind, 0x2C)
        header_status = first_true(
            [
                (position >= length, _TRUNCATED),
                (tf.logical_and(is_image, position + 10 > length), _TRUNCATED),
                (is_image, _RUNNING),
                (tf.not_equal(kind, 0x21), tf.where(tf.equal(kind, 0x3B), _NO_IMAGE, _BAD_BLOCK)),
                (blocks >= MAX_EXTENSION_BLOCKS, _TOO_MANY_BLOCKS),
            ],
            default=_RUNNING,
        )
        # An image's data follows its descriptor, local colour table and LZW code size byte; an extension's, its label.
        chain = tf.where(is_image, position + 11 + _colour_table_bytes(descriptor[9]), position + 2)
        end, budget = tf.cond(
            tf.equal(header_status, _RUNNING),
            lambda: _follow_chain(raw, length, chain, budget),
            lambda: (chain, budget),
        )
        status = first_true(
            [(tf.not_equal(header_status, _RUNNING), header_status), (end >= length, _TRUNCATED), (is_image, _FOUND)],
            default=_RUNNING,
        )
        width = tf.where(is_image, descriptor[5] + 256 * descriptor[6], zero)
        height = tf.where(is_image, descriptor[7] + 256 * descriptor[8], zero)
        return end + 1, width, height, status, blocks + 1, budget

    screen = _padded(raw, 0, 13)
    start = (13 + _colour_table_bytes(screen[10]), zero, zero, tf.where(length < 13, _TRUNCATED, _RUNNING), 0,
             length // _BYTES_PER_STEP + 64)  # fmt: skip
    end, width, height, status, _, _ = tf.while_loop(
        lambda position, width, height, status, blocks, budget: tf.equal(status, _RUNNING), read_block, start
    )
    found = tf.equal(status, _FOUND)
    return GifFrame(width, height, tf.where(found, end, zero), tf.gather(tf.constant(_PROBLEMS), status))
