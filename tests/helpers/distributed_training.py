"""Train a tiny CLIP for a few steps under a given tf.distribute setting; run as a subprocess.

    python -m tests.helpers.distributed_training MODE FOLDER

MODE "local" trains in one process (2 logical CPUs) and writes FOLDER/<name>.npz for each of LOCAL_RUNS:
a tiny CLIP with CLIP's loss on one device with the global batch ("single"), on 2 replicas ("mirrored"),
with per-replica negatives only ("mirrored_naive") and on 2 replicas with 4 accumulation steps of 4 rows each
("accumulated_mirrored"); a tiny SigLIP with the sigmoid loss on one device, on 2
replicas gathered and chunked, and per-replica only. MODE "sigmoid4" trains the SigLIP on 4 logical CPUs,
gathered and chunked (FOLDER/sigmoid4_<loss>.npz). MODE "cluster" starts two worker processes of a
MultiWorkerMirroredStrategy on free local ports and waits for them; each trains with 2 accumulation steps
and writes FOLDER/worker<i>.npz.
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

GLOBAL_BATCH = 32
STEPS = 3
WORKERS = 2
# name -> (loss, on 2 replicas, global negatives, accumulation steps)
LOCAL_RUNS = {
    "single": ("contrastive", False, True, 1), "mirrored": ("contrastive", True, True, 1),
    "mirrored_naive": ("contrastive", True, False, 1), "accumulated_mirrored": ("contrastive", True, True, 4),
    "sigmoid_single": ("sigmoid", False, True, 1), "sigmoid_mirrored": ("sigmoid", True, True, 1),
    "chunked_sigmoid_mirrored": ("chunked_sigmoid", True, True, 1),
    "sigmoid_accumulated_mirrored": ("sigmoid", True, True, 4),
    "sigmoid_mirrored_naive": ("sigmoid", True, False, 1),
}  # fmt: skip
SIGMOID4_RUNS = ("sigmoid", "chunked_sigmoid")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def job(mode):
    """This module run as a subprocess in `mode`, as a tests/helpers/background.py Job."""
    from tests.helpers.background import Job

    return Job([sys.executable, "-m", "tests.helpers.distributed_training", mode, "{folder}"], cwd=ROOT)


def local_results(local_job):
    """{name: (losses, replicas, weights)} of the LOCAL_RUNS of a finished "local" job."""
    process = local_job.result()
    assert process.returncode == 0, process.stderr[-3000:]
    return {name: results(os.path.join(local_job.folder, f"{name}.npz")) for name in LOCAL_RUNS}


# The jobs the test modules share (each runs once, in the background: tests/conftest.py).
LOCAL_JOB = job("local")
CLUSTER_JOB = job("cluster")
SIGMOID4_JOB = job("sigmoid4")


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


def model_config(loss):
    """The CLIP arguments of the tiny model trained with `loss`."""
    from tests.helpers.tiny_models import TINY_SIGLIP, TINY_VIT

    return TINY_VIT if loss == "contrastive" else TINY_SIGLIP


def train(strategy, global_negatives=True, loss="contrastive", accumulation_steps=1):
    import keras_clip
    from tests.helpers.tiny_models import tiny_clip

    config = model_config(loss)
    initial_weights = tiny_clip(seed=0, **config).get_weights()  # the same start in every process
    with strategy.scope():
        model = keras_clip.CLIP(**config)
        model.set_weights(initial_weights)
        model.global_negatives = global_negatives
        model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3, total_steps=10, warmup_steps=2),
                      loss=loss, accumulation_steps=accumulation_steps)  # fmt: skip
    recorder = StepLosses()
    model.fit(dataset(), epochs=1, verbose=0, callbacks=[recorder.callback])
    return recorder.losses(), [np.asarray(w) for w in model.get_weights()]


def save(output, strategy, global_negatives=True, loss="contrastive", accumulation_steps=1):
    losses, weights = train(strategy, global_negatives, loss, accumulation_steps)
    np.savez(output, losses=losses, replicas=strategy.num_replicas_in_sync, *weights)


def weight_paths(loss):
    """The paths of the weights `save` stores for a run with `loss`, in their order."""
    from tests.helpers.tiny_models import tiny_clip

    return [weight.path for weight in tiny_clip(seed=0, **model_config(loss)).weights]


def max_weight_difference(first, second, loss="contrastive"):
    """`trained_weights.max_weight_difference` of two runs' weights trained with `loss`."""
    from tests.helpers import trained_weights

    return trained_weights.max_weight_difference(first, second, weight_paths(loss))


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

    if mode in ("local", "sigmoid4"):
        replicas = 2 if mode == "local" else 4
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
        # One MirroredStrategy for every run: a second one would reuse the first's collective instance keys.
        mirrored = tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(replicas)])
        if mode == "sigmoid4":
            for loss in SIGMOID4_RUNS:
                save(os.path.join(output, f"sigmoid4_{loss}.npz"), mirrored, True, loss)
            return
        for name, (loss, on_replicas, global_negatives, accumulation_steps) in LOCAL_RUNS.items():
            # The default strategy is one device (/cpu:0) with the global batch.
            strategy = mirrored if on_replicas else tf.distribute.get_strategy()
            save(os.path.join(output, f"{name}.npz"), strategy, global_negatives, loss, accumulation_steps)
    elif mode == "worker":  # one worker of the cluster TF_CONFIG names
        save(output, tf.distribute.MultiWorkerMirroredStrategy(), accumulation_steps=2)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(*sys.argv[1:])
