"""`tf.case` without branches: for cheap values that are safe to compute whatever the conditions.

Every branch of `tf.case` / `tf.cond` is a function, and tf.data instantiates each function again for
every iterator it makes (about 5 ms each, most of it Grappler): a decoder with a few dozen branches
costs a few tenths of a second at the start of every epoch. Choosing among values that are all
computed costs nothing of the kind.
"""

import tensorflow as tf


def first_true(cases, default):
    """The value of the first `(condition, value)` pair whose condition holds, else `default`.

    Like `tf.case(..., exclusive=False)`, but every value is computed: use it only for values that are
    cheap and cannot fail (scalars, messages), not to guard an op.

    Args:
        cases: a list of (scalar bool tensor, value) pairs.
        default: the value when no condition holds.

    Returns:
        A tensor of the values' dtype.

    Example:
    >>> first_true([(x < 0, "negative"), (x == 0, "zero")], default="positive")
    """
    result = tf.convert_to_tensor(default)
    for condition, value in reversed(cases):
        result = tf.where(condition, tf.convert_to_tensor(value, result.dtype), result)
    return result
