"""Exact gradient accumulation for contrastive losses, by caching features (`compile(accumulation_steps=k)`).

Splitting a batch into micro-batches and adding their gradients is wrong for a contrastive loss: each micro-batch
would see only its own negatives. Instead (as open_clip's `--accum-freq`, Gao et al. 2021's gradient cache):
1. embed every micro-batch without recording gradients, and keep the features (small: [b, D]);
2. compute the loss over the whole batch's features (every replica's under `tf.distribute`) and its gradient with
   respect to those features and to `logit_scale` / `logit_bias`;
3. for each micro-batch, embed it again with a tape and back-propagate the features' gradient from step 2 through
   the towers, adding up the weights' gradients.
The sum is the whole batch's gradient, while only one micro-batch's activations are alive at a time. The cost is
a second forward pass of each micro-batch (about a third more compute).
"""

import tensorflow as tf

from keras_clip.losses import num_replicas_in_sync
from keras_clip.models.gradients import dense_gradient


def micro_batch_bounds(batch_size, steps):
    """[steps + 1] row offsets splitting `batch_size` rows into `steps` parts whose sizes differ by at most one."""
    return (tf.range(steps + 1) * batch_size) // steps


def _embed_without_gradients(encode, inputs, bounds, steps):
    """Features [b, D] of `inputs`, embedded one micro-batch at a time, none of them recorded on a tape."""

    def body(step, parts):
        features = encode(inputs[bounds[step]:bounds[step + 1]])
        return step + 1, parts.write(step, tf.stop_gradient(features))

    parts = tf.TensorArray(tf.float32, size=steps, infer_shape=False)
    # parallel_iterations=1: one micro-batch's activations alive at a time, which is the point.
    _, parts = tf.while_loop(lambda step, _: step < steps, body, (0, parts), parallel_iterations=1)
    return parts.concat()


def accumulated_gradients(model, images, tokens, steps, loss_of_features):
    """The loss values and the gradients of `model.trainable_weights` for one batch, `steps` micro-batches at a time.

    Args:
        model: a `keras_clip.CLIP` whose optimizer is built.
        images: [b, R, R, 3] this replica's images.
        tokens: [b, L] this replica's token ids.
        steps: the number of micro-batches (a Python int).
        loss_of_features: `(image_features, text_features) -> (loss, image_to_text_accuracy,
            text_to_image_accuracy)`, the loss over the whole batch (gathering other replicas' features itself).

    Returns:
        `(values, gradients)`: the loss function's values and a list aligned with `model.trainable_weights`
        (gradients of the optimizer's scaled loss, divided by the number of replicas, as `train_step` applies).
    """
    weights = model.trainable_weights
    replicas = num_replicas_in_sync()
    bounds = micro_batch_bounds(tf.shape(images)[0], steps)

    def encode_image(part):
        return model.encode_image(part, training=True)

    def encode_text(part):
        return model.encode_text(part, training=True)

    image_features = _embed_without_gradients(encode_image, images, bounds, steps)
    text_features = _embed_without_gradients(encode_text, tokens, bounds, steps)

    with tf.GradientTape() as tape:
        tape.watch([image_features, text_features])
        values = loss_of_features(image_features, text_features)
        scaled_loss = model.optimizer.scale_loss(values[0] / replicas)
    sources = [image_features, text_features, *weights]
    image_gradient, text_gradient, *loss_gradients = tape.gradient(scaled_loss, sources)

    # Step 3, skipping a tower that has nothing to train (a locked tower's second pass would be wasted).
    train_images, train_texts = bool(model.visual.trainable_weights), bool(model.text.trainable_weights)

    def body(step, totals):
        start, end = bounds[step], bounds[step + 1]
        with tf.GradientTape() as micro_tape:
            surrogate = tf.zeros(())
            if train_images:
                surrogate += tf.reduce_sum(encode_image(images[start:end]) * image_gradient[start:end])
            if train_texts:
                surrogate += tf.reduce_sum(encode_text(tokens[start:end]) * text_gradient[start:end])
            if model.losses:  # weight penalties: counted once over the micro-batches
                surrogate += model.optimizer.scale_loss(tf.add_n(model.losses) / (replicas * steps))
        gradients = micro_tape.gradient(surrogate, weights)
        return step + 1, [total if gradient is None else total + dense_gradient(gradient)
                          for total, gradient in zip(totals, gradients)]  # fmt: skip

    totals = [tf.zeros_like(weight.value) for weight in weights]
    if train_images or train_texts:
        _, totals = tf.while_loop(lambda step, _: step < steps, body, (0, totals), parallel_iterations=1)
    return values, [total if extra is None else total + dense_gradient(extra)
                    for total, extra in zip(totals, loss_gradients)]  # fmt: skip
