"""SigLIP's sigmoid loss (Zhai et al. 2023), with every replica's texts as negatives.

`-1/n sum_i sum_j log sigmoid(z_ij (t x_i . y_j + b))`, `z_ij = 1` for a matching pair and -1 otherwise,
over the n x n pairs of the global batch. Each replica scores its own images against every replica's
texts, so each pair is counted once, on the replica that holds its image.
"""

import tensorflow as tf

from keras_clip.losses.replicas import gather_from_replicas
from keras_clip.utils.normalization import l2_normalize


@tf.recompute_grad
def _block_loss(images, texts, scale, bias, matching):
    """Summed -log sigmoid over one [b, c] block of pairs; its logits are recomputed for the gradient.

    `matching` is 1.0 when this block holds the images' own texts (its diagonal pairs match), else 0.0.
    """
    logits = scale * tf.matmul(images, texts, transpose_b=True) + bias
    signs = 2.0 * matching * tf.eye(tf.shape(images)[0], tf.shape(texts)[0]) - 1.0
    return -tf.reduce_sum(tf.math.log_sigmoid(signs * logits))


def _blocks(features, global_negatives):
    """Every replica's rows of `features`, one block per replica; this replica's block index and row offset."""
    context = tf.distribute.get_replica_context()
    if not global_negatives or context is None or context.num_replicas_in_sync == 1:
        return [features], 0, 0
    gathered, _ = gather_from_replicas(features)
    sizes = context.all_gather(tf.shape(features)[:1], axis=0)
    replicas, own = context.num_replicas_in_sync, context.replica_id_in_sync_group
    offset = tf.reduce_sum(sizes * tf.cast(tf.range(replicas) < own, sizes.dtype))
    return tf.split(gathered, sizes, num=replicas), own, offset


def _accuracy(queries, key_blocks, offset):
    """How often a query's best-scoring key over all blocks (the first on ties) is its own: key `offset + row`."""
    best_score, best_index, start = None, None, 0
    for keys in key_blocks:
        scores = tf.matmul(queries, keys, transpose_b=True)
        score, index = tf.reduce_max(scores, axis=-1), tf.argmax(scores, axis=-1, output_type=tf.int32) + start
        if best_score is None:
            best_score, best_index = score, index
        else:
            better = score > best_score
            best_score, best_index = tf.where(better, score, best_score), tf.where(better, index, best_index)
        start += tf.shape(keys)[0]
    labels = offset + tf.range(tf.shape(queries)[0], dtype=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(best_index, labels), tf.float32))


def sigmoid_loss(image_features, text_features, logit_scale, logit_bias, global_negatives=True, chunked=False):
    """SigLIP's loss for this replica's images, and the in-batch accuracies.

    The returned loss is this replica's sum over its images' pairs divided by its number of images;
    the mean of the replicas' losses is the single-device loss of the global batch. Divide by the number
    of replicas before taking gradients that an optimizer sums over replicas (`CLIP.train_step` does).

    Args:
        image_features: [b, D] unnormalised image embeddings of this replica.
        text_features: [b, D] unnormalised text embeddings, row i paired with image row i.
        logit_scale: scalar log of the inverse temperature `t`.
        logit_bias: scalar bias `b`.
        global_negatives: every replica's texts are negatives (SigLIP's loss). False gives the naive
            per-replica loss, for comparison only.
        chunked: score the gathered texts one replica's block at a time, recomputing each block's
            logits in the backward pass, so that no [b, global batch] logit matrix is kept for the gradient
            (the paper's chunked form, gathered once; the same loss and gradients).

    Returns:
        `(loss, image_to_text_accuracy, text_to_image_accuracy)`, float32 scalars.
    """
    image_features = l2_normalize(image_features)
    text_features = l2_normalize(text_features)
    scale = tf.exp(tf.cast(logit_scale, tf.float32))
    bias = tf.cast(logit_bias, tf.float32)
    text_blocks, own, offset = _blocks(text_features, global_negatives)
    if chunked:
        total = tf.add_n([
            _block_loss(image_features, texts, scale, bias, tf.cast(tf.equal(index, own), tf.float32))
            for index, texts in enumerate(text_blocks)
        ])  # fmt: skip
    else:
        texts = tf.concat(text_blocks, axis=0)
        logits = scale * tf.matmul(image_features, texts, transpose_b=True) + bias
        matching = tf.one_hot(offset + tf.range(tf.shape(image_features)[0]), tf.shape(texts)[0])
        total = -tf.reduce_sum(tf.math.log_sigmoid((2.0 * matching - 1.0) * logits))
    loss = total / tf.cast(tf.shape(image_features)[0], tf.float32)
    # The accuracies need no gradient: the other replicas' images are gathered as constants.
    images = tf.stop_gradient(image_features)
    image_blocks, _, _ = _blocks(images, global_negatives)
    text_blocks = [tf.stop_gradient(block) for block in text_blocks]
    texts = tf.stop_gradient(text_features)
    return loss, _accuracy(images, text_blocks, offset), _accuracy(texts, image_blocks, offset)
