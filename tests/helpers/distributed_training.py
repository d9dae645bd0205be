"""Train a tiny CLIP for a few steps under a given tf.distribute setting; run as a subprocess.

    python -m tests.helpers.distributed_training MODE FOLDER

MODE "sigmoid<R>" (R = 1, 2 or 4 logical CPUs) trains a tiny SigLIP with the sigmoid loss, gathered and
chunked (and, for R = 2, per-replica only), and writes FOLDER/sigmoid<R>_<loss>.npz for each of SIGMOID_RUNS[R].
MODE "local" trains three times in one process and writes FOLDER/<name>.npz for each of LOCAL_RUNS:
"single" (one device, global batch), "mirrored" (2 logical CPUs, CLIP's loss) and "mirrored_naive"
(2 logical CPUs, per-replica negatives only). MODE "cluster" starts two worker processes of a
MultiWorkerMirroredStrategy on free local ports and waits for them; each writes FOLDER/worker<i>.npz.
Each file holds the loss of every step and the final weights. Subprocesses because logical devices
must be set before TensorFlow starts (and a cluster needs its processes).
"""

import json
import os
import socket
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

GLOBAL_BATCH = 16
STEPS = 3
LOCAL_RUNS = ("single", "mirrored", "mirrored_naive")
WORKERS = 2
# replicas -> (loss, global negatives) of the sigmoid runs
SIGMOID_RUNS = {1: (("sigmoid", True), ("chunked_sigmoid", True)),
                2: (("sigmoid", True), ("chunked_sigmoid", True), ("naive_sigmoid", False)),
                4: (("sigmoid", True), ("chunked_sigmoid", True))}  # fmt: skip
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dataset():
    import tensorflow as tf

    from tests.helpers.model_inputs import random_images, random_tokens

    count = GLOBAL_BATCH * STEPS
    examples = {"images": random_images(count, 32, seed=7), "tokens": random_tokens(count, seed=7)}
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


def train(strategy, global_negatives=True, loss="contrastive"):
    import keras_clip
    from tests.helpers.tiny_models import TINY_SIGLIP, TINY_VIT, tiny_clip

    config = TINY_VIT if loss == "contrastive" else TINY_SIGLIP
    initial_weights = tiny_clip(seed=0, **config).get_weights()  # the same start in every process
    with strategy.scope():
        model = keras_clip.CLIP(**config)
        model.set_weights(initial_weights)
        model.global_negatives = global_negatives
        model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3, total_steps=10, warmup_steps=2),
                      loss=loss)  # fmt: skip
    recorder = StepLosses()
    model.fit(dataset(), epochs=1, verbose=0, callbacks=[recorder.callback])
    return recorder.losses(), [np.asarray(w) for w in model.get_weights()]


def save(output, strategy, global_negatives=True, loss="contrastive"):
    losses, weights = train(strategy, global_negatives, loss)
    np.savez(output, losses=losses, replicas=strategy.num_replicas_in_sync, *weights)


def results(path):
    """(losses, number of replicas, weights) of a file written by `save`."""
    with np.load(path) as data:
        weights = [data[f"arr_{i}"] for i in range(len(data.files) - 2)]
        return data["losses"], int(data["replicas"]), weights


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cluster(folder):
    """Starts the workers (this process only waits) and returns their exit codes."""
    workers = [f"127.0.0.1:{free_port()}" for _ in range(WORKERS)]
    processes = []
    for index in range(WORKERS):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        command = [sys.executable, "-m", __spec__.name, "worker", os.path.join(folder, f"worker{index}.npz")]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, TF_CONFIG=json.dumps(config))))
    try:
        return [process.wait(timeout=600) for process in processes]
    finally:
        for process in processes:
            process.kill()


def main(mode, output):
    if mode == "cluster":
        codes = run_cluster(output)
        print("worker exit codes:", codes)
        raise SystemExit(0 if codes == [0] * WORKERS else 1)

    import tensorflow as tf

    if mode == "local":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        # The default strategy: one device (/cpu:0), the global batch.
        save(os.path.join(output, "single.npz"), tf.distribute.get_strategy())
        # One MirroredStrategy for both runs: a second one would reuse the first's collective instance keys.
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        for name, global_negatives in (("mirrored", True), ("mirrored_naive", False)):
            save(os.path.join(output, f"{name}.npz"), strategy, global_negatives)
    elif mode.startswith("sigmoid"):
        replicas = int(mode[len("sigmoid"):])
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
        strategy = tf.distribute.get_strategy()
        if replicas > 1:
            strategy = tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(replicas)])
        for name, global_negatives in SIGMOID_RUNS[replicas]:
            loss = "sigmoid" if name == "naive_sigmoid" else name
            save(os.path.join(output, f"{mode}_{name}.npz"), strategy, global_negatives, loss)
    elif mode == "worker":  # one worker of the cluster TF_CONFIG names
        save(output, tf.distribute.MultiWorkerMirroredStrategy())
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(*sys.argv[1:])
