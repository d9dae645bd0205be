"""Comparing the weights of two training runs that should agree."""

import numpy as np


def max_weight_difference(first, second, paths):
    """The largest absolute difference of two runs' weights (`paths`: the weights' paths, in order), leaving out
    the key part of every attention's in_proj bias: a constant added to every key shifts no softmax, so its
    exact gradient is 0, and Adam turns the rounding noise standing in for it into steps of about the learning
    rate, different in every run."""
    largest = 0.0
    for path, a, b in zip(paths, first, second, strict=True):
        difference = np.abs(np.asarray(a, np.float64) - b)
        if path.endswith("in_proj/bias"):
            width = difference.shape[0] // 3
            difference[width : 2 * width] = 0.0
        largest = max(largest, float(difference.max()))
    return largest
