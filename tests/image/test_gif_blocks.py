"""Finding a GIF's first frame in its block structure, with graph ops, whatever its sub-blocks' sizes."""

import time

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.image.decoding import decode_image
from keras_clip.image.gif_blocks import MAX_EXTENSION_BLOCKS, first_gif_frame
from tests.helpers import image_bombs, images

first_frame = tf.function(first_gif_frame)


def gif():
    return images.encode(images.photographs()["chelsea"], "gif")


@pytest.mark.parametrize("size", [1, 2, 7, 100, 254, 255])
def test_sub_blocks_of_any_size_are_followed_to_the_end_of_the_frame(size):
    data = image_bombs.gif_with_sub_blocks(gif(), size)
    frame = first_frame(tf.constant(data))
    assert frame.problem.numpy() == b""
    assert (int(frame.width), int(frame.height), int(frame.end)) == (451, 300, len(data) - 1)  # the trailer follows
    np.testing.assert_array_equal(decode_image(data).numpy(), decode_image(gif()).numpy())


def test_the_frame_ends_before_the_second_one():
    data = image_bombs.gif_frames(20, 10, 3)
    frame = first_frame(tf.constant(data))
    assert (int(frame.width), int(frame.height)) == (20, 10)
    assert tf.io.decode_gif(data[: int(frame.end)] + b";").shape == (1, 10, 20, 3)
    assert tf.io.decode_gif(data).shape == (3, 10, 20, 3)


def test_tiny_sub_blocks_cost_little_time():
    """A chain of one-byte sub-blocks is one loop step per two bytes; past the step budget it is followed
    16 KB at a time. About 25 ms for this 220 KB file here; one step per sub-block took 3 s."""
    data = image_bombs.gif_with_sub_blocks(gif(), 1)
    first_frame(tf.constant(data))
    start = time.perf_counter()
    assert first_frame(tf.constant(data)).problem.numpy() == b""
    assert time.perf_counter() - start < 1.0


def test_extension_blocks_are_skipped_up_to_a_limit():
    allowed = image_bombs.gif_with_extensions(gif(), MAX_EXTENSION_BLOCKS)
    assert first_frame(tf.constant(allowed)).problem.numpy() == b""
    too_many = image_bombs.gif_with_extensions(gif(), MAX_EXTENSION_BLOCKS + 1)
    assert first_frame(tf.constant(too_many)).problem.numpy() == b"its GIF has more than 1000 extension blocks " \
                                                                 b"before its first image"  # fmt: skip


def _replace_first_block(data, kind):
    position = 13 + (3 << ((data[10] & 7) + 1))  # after the header and the global colour table
    return data[:position] + kind + data[position + 1 :]


@pytest.mark.parametrize(
    "cut, problem",
    [
        (lambda data: data[:12], b"its GIF data ends before its first frame does (truncated)"),
        (lambda data: data[: len(data) // 2], b"its GIF data ends before its first frame does (truncated)"),
        (lambda data: data[:-2], b"its GIF data ends before its first frame does (truncated)"),
        (lambda data: _replace_first_block(data, b"\x99"), b"its GIF block structure is corrupt"),
        (lambda data: _replace_first_block(data, b";"), b"its GIF has no image"),
    ],
)
def test_broken_structures_say_what_is_wrong(cut, problem):
    data = cut(image_bombs.gif_with_extensions(gif(), 1))
    frame = first_frame(tf.constant(data))
    assert (frame.problem.numpy(), int(frame.end)) == (problem, 0)
