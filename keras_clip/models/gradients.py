"""Gradients as Keras' optimizers need them to apply the same update as PyTorch's."""

import tensorflow as tf


def dense_gradient(gradient):
    """`gradient` as a dense tensor where it is a `tf.IndexedSlices` (an embedding lookup's gradient).

    An embedding row looked up k times in a batch gets k slices. Keras 3's Adam and AdamW square the slices one by
    one, so the row's second moment grows by the sum of the squares instead of the square of the summed gradient
    (a smaller step than PyTorch's Adam takes for every repeated token: padding, start and end tokens always
    repeat). Under `tf.distribute` the replicas' slices are concatenated, so summing the duplicates per replica would
    not be enough. Adam densifies the gradient in its first-moment update anyway, so this costs one dense
    [vocabulary, width] tensor that it would have built.
    """
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient
