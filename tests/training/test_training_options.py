"""Training options: tower locking, mixed precision, the paper's optimizer, logit_scale clamping."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.training.optimizer import no_weight_decay_variables
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.tiny_models import tiny_clip


def captions(count=32, batch=8):
    data = {"images": random_images(count, 32, seed=3), "tokens": random_tokens(count, seed=3)}
    return tf.data.Dataset.from_tensor_slices(data).batch(batch, drop_remainder=True)


def changed(before, after):
    return [not np.array_equal(b, a) for b, a in zip(before, after)]


@pytest.mark.parametrize("tower", ["image", "text"])
def test_locked_tower_does_not_change(tower):
    model = tiny_clip()
    getattr(model, f"lock_{tower}_tower")()
    locked = model.visual if tower == "image" else model.text
    free = model.text if tower == "image" else model.visual
    locked_before = [w.numpy() for w in locked.weights]
    free_before = [w.numpy() for w in free.weights]
    model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3))
    model.fit(captions(), epochs=1, verbose=0)
    assert not any(changed(locked_before, [w.numpy() for w in locked.weights]))
    assert all(changed(free_before, [w.numpy() for w in free.trainable_weights]))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training(policy):
    model = tiny_clip(dtype=policy)
    model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3))
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.visual.transformer.resblocks[0].c_fc.compute_dtype == policy.split("_")[1]
    history = model.fit(captions(64), epochs=4, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0]
    assert all(w.dtype == "float32" for w in model.trainable_weights)


def test_optimizer_has_the_papers_defaults_and_decay_exclusions():
    model = tiny_clip()
    optimizer = keras_clip.training.optimizer(model, 5e-4, total_steps=100, warmup_steps=10)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert (optimizer.beta_2, optimizer.epsilon, optimizer.weight_decay) == (0.98, 1e-6, 0.2)
    excluded = {v.path for v in no_weight_decay_variables(model)}
    for variable in model.trainable_weights:
        name = variable.path.split("/")[-1]
        is_matrix = len(variable.shape) >= 2 and "embedding" not in name
        assert (variable.path in excluded) == (not is_matrix), variable.path
        assert optimizer._use_weight_decay(variable) == is_matrix, variable.path
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(2.5e-4) and rates[2] == pytest.approx(5e-4)
    assert rates[3] == pytest.approx(2.5e-4, rel=1e-3) and rates[4] == pytest.approx(0.0, abs=1e-9)


def test_logit_scale_is_clamped_after_updates():
    model = tiny_clip()
    model.logit_scale.assign(math.log(100.0) - 1e-4)
    model.compile(optimizer=keras.optimizers.SGD(10.0))  # a large step pushes it up
    model.fit(captions(16), epochs=1, verbose=0)
    assert float(model.logit_scale.numpy()) <= math.log(100.0) + 1e-6


def test_gradient_clipping_bounds_the_update():
    model = tiny_clip()
    before = [w.numpy() for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(1.0, global_clipnorm=1e-3))
    model.fit(captions(8), epochs=1, verbose=0)
    step = np.sqrt(sum(np.sum((w.numpy() - b) ** 2) for w, b in zip(model.trainable_weights, before)))
    assert 0 < step <= 1e-3 * 1.0001


def test_bad_batch_is_named():
    model = tiny_clip()
    model.compile(optimizer="adam")
    data = tf.data.Dataset.from_tensor_slices({"pixels": random_images(4, 32)}).batch(2)
    with pytest.raises(ValueError, match="needs the keys 'images' and 'tokens'"):
        model.fit(data, epochs=1, verbose=0)
