"""CLIP's symmetric contrastive loss, with negatives gathered from every replica."""

import tensorflow as tf

from keras_clip.losses.replicas import gather_from_replicas
from keras_clip.utils.normalization import l2_normalize


def contrastive_loss(image_features, text_features, logit_scale, global_negatives=True):
    """Symmetric cross-entropy of CLIP for this replica's rows, and the in-batch accuracies.

    Each replica scores its own image rows against every replica's texts and its own text rows
    against every replica's images, so the negatives are those of the global batch. The
    returned loss is this replica's mean over its rows; the mean of the replicas' losses is the
    single-device loss of the global batch. Divide by the number of replicas before taking
    gradients that an optimizer sums over replicas (`CLIP.train_step` does).

    Args:
        image_features: [b, D] unnormalised image embeddings of this replica.
        text_features: [b, D] unnormalised text embeddings, row i paired with image row i.
        logit_scale: scalar log of the inverse temperature.
        global_negatives: gather the other replicas' features as negatives (CLIP's loss). False
            gives the naive per-replica loss, for comparison only.

    Returns:
        `(loss, image_to_text_accuracy, text_to_image_accuracy)`, float32 scalars.
    """
    image_features = l2_normalize(image_features)
    text_features = l2_normalize(text_features)
    if global_negatives:
        all_images, offset = gather_from_replicas(image_features)
        all_texts, _ = gather_from_replicas(text_features)
    else:
        all_images, all_texts, offset = image_features, text_features, 0
    scale = tf.exp(tf.cast(logit_scale, tf.float32))
    logits_per_image = scale * tf.matmul(image_features, all_texts, transpose_b=True)
    logits_per_text = scale * tf.matmul(text_features, all_images, transpose_b=True)
    labels = offset + tf.range(tf.shape(image_features)[0])
    image_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits_per_image)
    text_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits_per_text)
    loss = (tf.reduce_mean(image_loss) + tf.reduce_mean(text_loss)) / 2

    def accuracy(logits):
        predicted = tf.argmax(logits, axis=-1, output_type=labels.dtype)
        return tf.reduce_mean(tf.cast(tf.equal(predicted, labels), tf.float32))

    return loss, accuracy(logits_per_image), accuracy(logits_per_text)
