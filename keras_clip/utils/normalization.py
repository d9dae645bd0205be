"""L2 normalisation of embeddings: the one implementation every cosine similarity uses."""

from keras import ops


def l2_normalize(x, axis=-1):
    """`x / ||x||` along `axis`, computed in float32 (float64 inputs stay float64).

    Works on numpy arrays, tensors and symbolic Keras tensors; returns a tensor (`np.asarray` it
    for numpy). A zero row gives NaNs, as in OpenAI's code: an all-zero embedding has no direction.

    Example:
    >>> l2_normalize(np.array([[3.0, 4.0]]))   # [[0.6, 0.8]]
    """
    x = ops.convert_to_tensor(x)
    if x.dtype != "float64":
        x = ops.cast(x, "float32")
    return x / ops.sqrt(ops.sum(ops.square(x), axis=axis, keepdims=True))
