"""A try/except for TensorFlow graphs: run ops that may fail and learn whether they did, without failing.

A graph (tf.function, tf.data, a SavedModel served by TensorFlow Serving) has no way to catch an op's
error: a decoder's "jpeg::Uncompress failed" ends the whole call and cannot say which image of a
batch it was. tf.data can drop elements whose computation failed (`ignore_errors`), so a pipeline of
one element, followed by a fallback element, yields the result when the ops succeed and the fallback
when they fail. The pipeline runs in the calling thread with core ops only (TensorDataset, MapDataset,
IgnoreErrorsDataset, ConcatenateDataset, TakeDataset, DatasetToSingleElement), for about 0.2 ms.
"""

import tensorflow as tf


def _quiet_options():
    # No autotuning, no graph rewrites: a one-element pipeline needs no background threads.
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_optimization.inject_prefetch = False
    options.experimental_warm_start = False
    options.experimental_slack = False
    return options


def attempt(function, inputs, fallback):
    """`(function(inputs), True)` if its ops succeed, else `(fallback, False)`, as graph ops.

    Every error the ops raise (e.g. a decoder's InvalidArgumentError, a failed allocation) is
    swallowed: the caller decides what to raise, e.g. an error naming the failed item.

    Args:
        function: takes `inputs`, returns a tensor or a structure of tensors.
        inputs: a tensor (or a tuple of tensors, passed as separate arguments).
        fallback: what to return on failure: the structure and dtypes of `function`'s result (shapes
            may differ; the result's static shape is what both have in common).

    Returns:
        `(result, succeeded)`, `succeeded` a scalar bool tensor.

    Example:
    >>> @tf.function
    ... def pixels_or_nothing(data):
    ...     return attempt(lambda d: tf.io.decode_png(d, channels=3), data, tf.zeros([0, 0, 3], tf.uint8))
    >>> pixels_or_nothing(tf.constant(b"not a png"))[1]
    <tf.Tensor: shape=(), dtype=bool, numpy=False>
    """
    options = _quiet_options()
    result = tf.data.Dataset.from_tensors(inputs).map(lambda *args: (function(*args), True)).ignore_errors()
    failed = tf.data.Dataset.from_tensors((fallback, False))
    return result.concatenate(failed).take(1).with_options(options).get_single_element()
