"""Training interrupted and resumed with keras.callbacks.BackupAndRestore ends where one run ends."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.tiny_models import tiny_clip

EPOCHS = 4


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated preemption after epoch 2")


def captions():
    data = {"images": random_images(32, 32, seed=5), "tokens": random_tokens(32, seed=5)}
    return tf.data.Dataset.from_tensor_slices(data).batch(8, drop_remainder=True)


def compiled_model(initial_weights):
    model = tiny_clip()
    model.set_weights(initial_weights)
    model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3, total_steps=16, warmup_steps=4))
    return model


def test_resume_after_interruption_gives_the_uninterrupted_weights(tmp_path):
    initial = tiny_clip(seed=1).get_weights()
    uninterrupted = compiled_model(initial)
    uninterrupted.fit(captions(), epochs=EPOCHS, verbose=0)

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    interrupted = compiled_model(initial)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(captions(), epochs=EPOCHS, verbose=0, callbacks=[backup, Interrupt()])

    resumed = compiled_model(tiny_clip(seed=2).get_weights())  # a new process would start from fresh weights
    history = resumed.fit(captions(), epochs=EPOCHS, verbose=0, callbacks=[backup])
    assert len(history.history["loss"]) == EPOCHS - 2  # only epochs 3 and 4 ran
    assert int(resumed.optimizer.iterations.numpy()) == int(uninterrupted.optimizer.iterations.numpy())
    for ours, theirs in zip(resumed.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
