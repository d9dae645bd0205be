"""`first_true`: tf.case's choice among computed values, without branches."""

import pytest
import tensorflow as tf

from keras_clip.utils.graph_selection import first_true


def sign_name(x):
    return first_true([(x < 0, "negative"), (x < 10, "small"), (x < 0, "never reached")], default="large")


@pytest.mark.parametrize("x, expected", [(-3, b"negative"), (0, b"small"), (9, b"small"), (10, b"large")])
def test_the_first_true_condition_wins_like_tf_case(x, expected):
    x = tf.constant(x)
    assert sign_name(x).numpy() == expected
    reference = tf.case(
        [(x < 0, lambda: tf.constant("negative")), (x < 10, lambda: tf.constant("small"))],
        default=lambda: tf.constant("large"),
    )
    assert reference.numpy() == expected


def test_a_graph_has_no_branch_function():
    graph = tf.function(sign_name).get_concrete_function(tf.TensorSpec([], tf.int32)).graph
    assert sign_name(tf.constant(5)).numpy() == b"small"
    assert not graph.as_graph_def().library.function
    assert not {op.type for op in graph.get_operations()} & {"If", "StatelessIf", "Case", "StatelessCase"}


def test_values_take_the_default_dtype():
    assert first_true([(tf.constant(True), 3)], default=tf.constant(0, tf.int64)).dtype == tf.int64
