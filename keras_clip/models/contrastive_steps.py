"""`train_step` / `test_step` of CLIP: the contrastive loss with global negatives, for `model.fit`."""

import keras
import tensorflow as tf

from keras_clip.losses import contrastive_loss, num_replicas_in_sync, sigmoid_loss
from keras_clip.models.accumulation import accumulated_gradients
from keras_clip.models.gradients import optimizer_gradient

# `compile(loss=...)`: CLIP's softmax loss, SigLIP's sigmoid loss, or its chunked form (same numbers, less memory).
LOSSES = ("contrastive", "sigmoid", "chunked_sigmoid")


def unpack_batch(data):
    """`(images, tokens)` from a batch given as a dict with those keys, or as a pair."""
    if isinstance(data, dict):
        missing = {"images", "tokens"} - set(data)
        if missing:
            raise ValueError(f"A CLIP training batch needs the keys 'images' and 'tokens'; missing {sorted(missing)}")
        return data["images"], data["tokens"]
    if isinstance(data, (tuple, list)) and len(data) in (1, 3):  # Keras' (x,) or (x, y, sample_weight)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(tuple(data))
        if sample_weight is not None:
            raise ValueError("CLIP's contrastive losses take no sample weights")
        return unpack_batch(x if y is None else (x, y))
    if isinstance(data, (tuple, list)) and len(data) == 2:
        first, second = data
        if isinstance(first, dict):  # (x, y) with the inputs as x
            return unpack_batch(first)
        return first, second
    raise ValueError(
        "A CLIP training batch is {'images': [N, R, R, 3] float32, 'tokens': [N, 77] int32} or (images, tokens); "
        f"got {type(data).__name__}"
    )


class ContrastiveSteps:
    """Mixin for `keras_clip.CLIP`: contrastive `train_step` and `test_step`.

    Under any `tf.distribute` strategy each replica gathers every replica's features (with
    gradients), scores its rows against the global batch, and divides its loss by the number of
    replicas, so the optimizer's sum of replica gradients is the global-batch gradient.
    """

    #: Set to False for the naive per-replica loss (only to compare against; not CLIP's loss).
    global_negatives = True

    def compile(self, optimizer="rmsprop", loss=None, accumulation_steps=1, **kwargs):
        """Keras' `compile`, with the contrastive loss chosen by name and, for big batches, exact accumulation.

        Args:
            optimizer: as for `keras.Model.compile`.
            loss: "contrastive" (CLIP's softmax loss), "sigmoid" (SigLIP's) or "chunked_sigmoid" (SigLIP's,
                scored one replica's block of texts at a time with the blocks' logits recomputed in the
                backward pass: the same loss and gradients in less memory). None: "sigmoid" for a model
                with a `logit_bias`, else "contrastive".
            accumulation_steps: split each batch (each replica's part) into this many micro-batches, embed them
                without gradients, take the loss over the whole batch's features, then back-propagate one
                micro-batch at a time (keras_clip/models/accumulation.py): the big batch's loss, negatives and
                update, with one micro-batch's activations in memory, for a second forward pass of each.
                (A ModifiedResNet's BatchNorm normalises each micro-batch by its own statistics, so only
                ViT models train exactly as with the whole batch.)
            **kwargs: `keras.Model.compile`'s other arguments (not `metrics`: the step logs its own).

        Example:
        >>> model.compile(keras.optimizers.AdamW(1e-4))  # CLIP's loss; a SigLIP's is loss="sigmoid"
        """
        if loss is None:
            loss = "contrastive" if self.logit_bias is None else "sigmoid"
        if loss not in LOSSES:
            raise ValueError(f"Unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
        if loss != "contrastive" and self.logit_bias is None:
            raise ValueError(f"loss={loss!r} needs a logit_bias: create the model with init_logit_bias "
                             "(SigLIP's: -10)")  # fmt: skip
        if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be a positive integer; got {accumulation_steps!r}")
        self.loss_name = loss
        self.accumulation_steps = accumulation_steps
        super().compile(optimizer=optimizer, **kwargs)

    def _create_contrastive_metrics(self):
        # Called from the model's constructor: metric variables must be created in the same
        # tf.distribute scope as the model, not lazily inside a replica's step.
        self._contrastive_trackers = [
            keras.metrics.Mean(name="loss"),
            keras.metrics.Mean(name="image_to_text_accuracy"),
            keras.metrics.Mean(name="text_to_image_accuracy"),
            keras.metrics.Mean(name="temperature"),
        ]

    def _contrastive_metrics(self):
        return self._contrastive_trackers

    @property
    def metrics(self):
        return list(self._contrastive_trackers)

    def _forward_loss(self, data, training):
        images, tokens = unpack_batch(data)
        image_features = self.encode_image(images, training=training)
        text_features = self.encode_text(tokens, training=training)
        return self._loss_of_features(image_features, text_features)

    def _loss_of_features(self, image_features, text_features):
        """`(loss, image_to_text_accuracy, text_to_image_accuracy)` of this replica's rows (compile's loss)."""
        loss = getattr(self, "loss_name", "contrastive" if self.logit_bias is None else "sigmoid")
        if loss == "contrastive":
            return contrastive_loss(image_features, text_features, self.logit_scale, self.global_negatives)
        return sigmoid_loss(image_features, text_features, self.logit_scale, self.logit_bias, self.global_negatives,
                            chunked=loss == "chunked_sigmoid")  # fmt: skip

    def _update_metrics(self, values, batch_size):
        loss_tracker, image_accuracy, text_accuracy, temperature = self._contrastive_metrics()
        loss_tracker.update_state(values[0], sample_weight=batch_size)
        image_accuracy.update_state(values[1], sample_weight=batch_size)
        text_accuracy.update_state(values[2], sample_weight=batch_size)
        temperature.update_state(tf.exp(-tf.cast(self.logit_scale, tf.float32)))
        logs = {metric.name: metric.result() for metric in self._contrastive_metrics()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras averages logs across workers along axis 0, which scalars lack
            # (tensorflow/tensorflow#72388); the synchronised metrics are equal on every worker.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # CLIP creates its weights in its constructor and has no compiled loss or metrics, so
        # only the optimizer needs building in the strategy's scope. Keras' default first
        # reduces a sample batch across replicas, which fails for dict batches under
        # MultiWorkerMirroredStrategy.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def train_step(self, data):
        batch_size = tf.shape(unpack_batch(data)[0])[0]
        weights = self.trainable_weights
        steps = getattr(self, "accumulation_steps", 1)
        if steps > 1:
            images, tokens = unpack_batch(data)
            values, gradients = accumulated_gradients(self, images, tokens, steps, self._loss_of_features)
            self.optimizer.apply_gradients(zip(gradients, weights))
            return self._update_metrics(values, batch_size)
        with tf.GradientTape() as tape:
            values = self._forward_loss(data, training=True)
            loss = values[0] / num_replicas_in_sync()
            if self.losses:
                loss += tf.add_n(self.losses) / num_replicas_in_sync()
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, weights)
        gradients = [optimizer_gradient(gradient, sparse=self.remat) for gradient in gradients]
        self.optimizer.apply_gradients(zip(gradients, weights))
        return self._update_metrics(values, batch_size)

    def test_step(self, data):
        batch_size = tf.shape(unpack_batch(data)[0])[0]
        return self._update_metrics(self._forward_loss(data, training=False), batch_size)
