"""Exact gradient accumulation (`compile(accumulation_steps=k)`): the big batch's loss, gradients, weights and logs.

The reference is the same model trained on the whole batch at once. Tolerance 1e-5 (float32, tiny models: the
micro-batch sums differ from the whole-batch matmuls only in summation order; the key biases, whose exact gradient
is 0, are left out: tests/helpers/trained_weights.py). Under MirroredStrategy:
tests/training/test_distributed.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.models.accumulation import accumulated_gradients, micro_batch_bounds
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.tiny_models import TINY_SIGLIP, TINY_VIT, tiny_clip
from tests.helpers.trained_weights import max_weight_difference

TOLERANCE = 1e-5
BATCH = 32
STEPS = 3
METRICS = ("loss", "image_to_text_accuracy", "text_to_image_accuracy", "temperature")


def batches(batch=BATCH, steps=STEPS):
    count = batch * steps
    data = {"images": random_images(count, 32, seed=5), "tokens": random_tokens(count, seed=5)}
    return tf.data.Dataset.from_tensor_slices(data).batch(batch)


def trained(config, loss, accumulation_steps, lock=None, batch=BATCH):
    """({path: weight} after STEPS AdamW steps, per-batch logs) of a tiny model compiled with `accumulation_steps`."""
    model = tiny_clip(seed=0, **config)
    if lock:
        getattr(model, f"lock_{lock}_tower")()
    model.compile(keras_clip.training.optimizer(model, 1e-3, total_steps=10, warmup_steps=2), loss=loss,
                  accumulation_steps=accumulation_steps)  # fmt: skip
    history = []  # the running means Keras logs after each batch
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: history.append(dict(logs)))
    model.fit(batches(batch), epochs=1, verbose=0, callbacks=[record])
    return {w.path: w.numpy() for w in model.weights}, history


def assert_same_training(first, second, tolerance=TOLERANCE):
    (weights, logs), (other_weights, other_logs) = first, second
    assert len(logs) == len(other_logs) == STEPS
    for log, other in zip(logs, other_logs):
        for name in METRICS:
            np.testing.assert_allclose(float(log[name]), float(other[name]), atol=TOLERANCE, rtol=0, err_msg=name)
    assert max_weight_difference(weights.values(), other_weights.values(), list(weights)) <= tolerance


@pytest.mark.parametrize("config,loss", [(TINY_VIT, "contrastive"), (TINY_SIGLIP, "sigmoid"),
                                         (TINY_SIGLIP, "chunked_sigmoid")])  # fmt: skip
def test_four_micro_batches_train_as_the_whole_batch(config, loss):
    assert_same_training(trained(config, loss, 4), trained(config, loss, 1))


def test_rematerialised_micro_batches_train_as_the_plain_whole_batch():
    assert_same_training(trained(dict(TINY_VIT, remat=True), "contrastive", 4), trained(TINY_VIT, "contrastive", 1))


def test_gradients_equal_the_whole_batch_gradients():
    model = tiny_clip(seed=1)
    model.compile(keras.optimizers.SGD(1.0))
    images, tokens = random_images(BATCH, 32, seed=2), random_tokens(BATCH, seed=2)
    with tf.GradientTape() as tape:
        loss = model._forward_loss((images, tokens), training=True)[0]
    expected = tape.gradient(loss, model.trainable_weights)
    values, gradients = accumulated_gradients(model, tf.constant(images), tf.constant(tokens), 4,
                                              model._loss_of_features)  # fmt: skip
    np.testing.assert_allclose(float(values[0]), float(loss), atol=TOLERANCE, rtol=0)
    for weight, accumulated, whole in zip(model.trainable_weights, gradients, expected):
        scale = max(1.0, float(tf.reduce_max(tf.abs(tf.convert_to_tensor(whole)))))
        difference = float(tf.reduce_max(tf.abs(accumulated - tf.convert_to_tensor(whole))))
        assert difference <= TOLERANCE * scale, weight.path


def test_uneven_micro_batches_cover_every_row_once():
    np.testing.assert_array_equal(micro_batch_bounds(30, 4).numpy(), [0, 7, 15, 22, 30])
    # 2e-5: one element of the embedding row of a token seen once in these 30 rows has a gradient near 0, whose
    # rounding Adam's g / sqrt(v) turns into a step difference of 1.3e-5 (measured); every other weight <= 4e-6.
    assert_same_training(trained(TINY_VIT, "contrastive", 4, batch=30), trained(TINY_VIT, "contrastive", 1, batch=30),
                         tolerance=2e-5)  # fmt: skip


@pytest.mark.parametrize("tower", ["image", "text"])
def test_a_locked_tower_stays_locked(tower):
    locked = [trained(TINY_VIT, "contrastive", steps, lock=tower) for steps in (4, 1)]
    assert_same_training(*locked)


def test_mixed_precision_with_loss_scaling_accumulates():
    config = dict(TINY_VIT, dtype="mixed_float16")
    weights, logs = trained(config, "contrastive", 4)
    plain_weights, plain_logs = trained(config, "contrastive", 1)
    # float16 activations: the summation orders differ in half precision, so a looser bound.
    np.testing.assert_allclose([log["loss"] for log in logs], [log["loss"] for log in plain_logs], atol=2e-3)
    assert max_weight_difference(weights.values(), plain_weights.values(), list(weights)) <= 2e-3


@pytest.mark.parametrize("steps", [0, 2.0, "4"])
def test_accumulation_steps_must_be_a_positive_integer(steps):
    with pytest.raises(ValueError, match="accumulation_steps must be a positive integer"):
        tiny_clip().compile("sgd", accumulation_steps=steps)
