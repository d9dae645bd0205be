"""In-graph try/except: ops that fail give the fallback and False, in every way a graph runs."""

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.utils.graph_attempts import attempt
from tests.helpers import images

GOOD = images.encode(images.photographs()["chelsea"][:30, :40], "png")
BAD = GOOD[:100]


def decoded_or_empty(data):
    return attempt(lambda d: tf.io.decode_png(d, channels=3), data, tf.zeros([0, 0, 3], tf.uint8))


def shape_and_flag(data):
    image, decoded = decoded_or_empty(data)
    return tf.shape(image), decoded


@pytest.mark.parametrize("mode", ["tf.function", "tf.data", "map_fn", "saved_model"])
def test_result_or_fallback_in_every_kind_of_graph(mode, tmp_path):
    batch = tf.constant([GOOD, BAD, b"", GOOD])
    if mode == "tf.function":
        results = [tf.function(shape_and_flag)(data) for data in batch]
    elif mode == "tf.data":
        results = list(tf.data.Dataset.from_tensor_slices(batch).map(shape_and_flag, num_parallel_calls=2))
    else:

        class Module(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
            def shapes(self, batch):
                return tf.map_fn(shape_and_flag, batch, fn_output_signature=(tf.int32, tf.bool), parallel_iterations=4)

        module = Module()
        if mode == "saved_model":
            tf.saved_model.save(module, str(tmp_path / "attempts"))
            module = tf.saved_model.load(str(tmp_path / "attempts"))
        shapes, flags = module.shapes(batch)
        results = list(zip(shapes, flags))
    assert [(list(shape.numpy()), bool(flag)) for shape, flag in results] == [
        ([30, 40, 3], True), ([0, 0, 3], False), ([0, 0, 3], False), ([30, 40, 3], True),
    ]  # fmt: skip


def test_the_result_is_the_functions():
    image, decoded = tf.function(decoded_or_empty)(tf.constant(GOOD))
    assert bool(decoded)
    np.testing.assert_array_equal(image.numpy(), tf.io.decode_png(GOOD, channels=3).numpy())


def test_structures_and_tuple_inputs():
    @tf.function
    def divide(numerator, denominator):
        return attempt(lambda a, b: {"quotient": a // b, "pair": (a, b)}, (numerator, denominator),
                       {"quotient": tf.constant(-1), "pair": (tf.constant(0), tf.constant(0))})  # fmt: skip

    result, succeeded = divide(tf.constant(7), tf.constant(2))
    assert (int(result["quotient"]), bool(succeeded)) == (3, True)
    result, succeeded = divide(tf.constant(7), tf.constant(0))  # "Integer division by zero"
    assert (int(result["quotient"]), bool(succeeded)) == (-1, False)
