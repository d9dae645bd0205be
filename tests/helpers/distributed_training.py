"""Train a tiny CLIP for a few steps under a given tf.distribute setting; run as a subprocess.

    python -m tests.helpers.distributed_training MODE OUTPUT.npz

MODE: "single" (one device, global batch), "mirrored" (2 logical CPUs, CLIP's loss),
"mirrored_naive" (2 logical CPUs, per-replica negatives only), "multiworker" (one worker of a
MultiWorkerMirroredStrategy; TF_CONFIG names the cluster). Writes the loss of every step and
the final weights. A subprocess because logical devices must be set before TensorFlow starts.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 16
STEPS = 3


def dataset():
    from tests.helpers.model_inputs import random_images, random_tokens

    examples = {"images": random_images(GLOBAL_BATCH * STEPS, 32, seed=7), "tokens": random_tokens(GLOBAL_BATCH * STEPS, seed=7)}
    data = tf.data.Dataset.from_tensor_slices(examples).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


class StepLosses:
    """Per-step losses recovered from the running mean that Keras reports after each batch."""

    def __init__(self):
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                outer.means.append(float(logs["loss"]))

        self.means = []
        self.callback = Callback()

    def losses(self):
        means = np.array(self.means)
        steps = np.arange(1, len(means) + 1)
        return means * steps - np.concatenate([[0.0], means[:-1] * steps[:-1]])


def train(strategy, global_negatives=True):
    import keras_clip
    from tests.helpers.tiny_models import TINY_VIT, tiny_clip

    initial_weights = tiny_clip(seed=0).get_weights()  # the same start in every process
    with strategy.scope():
        model = keras_clip.CLIP(**TINY_VIT)
        model.set_weights(initial_weights)
        model.global_negatives = global_negatives
        model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3, total_steps=10, warmup_steps=2))
    recorder = StepLosses()
    model.fit(dataset(), epochs=1, verbose=0, callbacks=[recorder.callback])
    return recorder.losses(), [np.asarray(w) for w in model.get_weights()]


def main(mode, output):
    if mode.startswith("mirrored"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif mode == "single":
        strategy = tf.distribute.get_strategy()
    else:
        raise SystemExit(f"unknown mode {mode}")
    losses, weights = train(strategy, global_negatives=mode != "mirrored_naive")
    np.savez(output, losses=losses, replicas=strategy.num_replicas_in_sync, *weights)


if __name__ == "__main__":
    main(*sys.argv[1:])
