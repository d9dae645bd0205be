"""Features of every replica, for losses whose negatives are the global batch under `tf.distribute`."""

import tensorflow as tf


def gather_from_replicas(features):
    """All replicas' rows of `features` in replica order, and this replica's offset into them.

    Outside a multi-replica `tf.distribute` context this is `(features, 0)`. Gradients flow
    back through the gather to the replica that computed each row.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return features, 0
    gathered = context.all_gather(features, axis=0)
    offset = context.replica_id_in_sync_group * tf.shape(features)[0]
    return gathered, offset


def num_replicas_in_sync():
    return tf.distribute.get_strategy().num_replicas_in_sync
