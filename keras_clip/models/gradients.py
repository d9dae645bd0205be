"""Gradients as Keras' optimizers need them to apply the same update as PyTorch's."""

import tensorflow as tf

from keras_clip.losses import num_replicas_in_sync


def dense_gradient(gradient):
    """`gradient` as a dense tensor where it is a `tf.IndexedSlices` (an embedding lookup's gradient).

    For sums of gradients in a loop, whose running total must keep one shape.
    """
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


def optimizer_gradient(gradient):
    """`gradient` in a form for which Keras' Adam and AdamW take PyTorch's step.

    An embedding row looked up k times in a batch gets k slices of a `tf.IndexedSlices`. Keras 3's Adam and AdamW
    square the slices one by one, so the row's second moment grows by the sum of the squares instead of the square
    of the summed gradient (a smaller step than PyTorch's Adam takes for every repeated token: padding, start and
    end tokens always repeat). With one replica the duplicate slices are summed, which keeps the gradient sparse
    (a dense [vocabulary, width] gradient costs ViT-B/32's step 0.2 GB). Under several replicas Keras concatenates
    the replicas' slices after this, so rows would repeat again: there the gradient is made dense.
    """
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    if num_replicas_in_sync() > 1:
        return tf.convert_to_tensor(gradient)
    rows, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)
