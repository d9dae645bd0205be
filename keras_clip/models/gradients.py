"""Gradients as Keras' optimizers need them to apply the same update as PyTorch's."""

import tensorflow as tf

from keras_clip.losses import num_replicas_in_sync


def dense_gradient(gradient):
    """`gradient` as a dense tensor where it is a `tf.IndexedSlices` (an embedding lookup's gradient)."""
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


def optimizer_gradient(gradient, sparse=False):
    """`gradient` in a form for which Keras' Adam and AdamW take PyTorch's step.

    An embedding row looked up k times in a batch gets k slices of a `tf.IndexedSlices`. Keras 3's Adam and AdamW
    square the slices one by one, so the row's second moment grows by the sum of the squares instead of the square
    of the summed gradient (a smaller step than PyTorch's Adam takes for every repeated token: padding, start and
    end tokens always repeat). So the slices of a row are summed: into a dense tensor, or with `sparse=True` into
    one slice per row. Under several replicas Keras concatenates the replicas' slices after this, so rows would
    repeat again: there the gradient is always dense.

    Which form costs less is measured, not derived (ViT-B/32, batch 32, `benchmarks/train.py --memory`): with
    rematerialised blocks the step's peak is the optimizer's update, where a dense [vocabulary, width] gradient adds
    0.2 GB (1.60 against 1.43 GB); without, Keras' update of the slices (densified twice, inside the update) costs
    the step 0.5 GB more than the dense gradient (3.33 against 2.84 GB).

    Args:
        gradient: a weight's gradient, `None`, a tensor or a `tf.IndexedSlices`.
        sparse: keep a `tf.IndexedSlices` sparse (one slice per row) where a single replica trains.
    """
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    if not sparse or num_replicas_in_sync() > 1:
        return tf.convert_to_tensor(gradient)
    rows, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)
