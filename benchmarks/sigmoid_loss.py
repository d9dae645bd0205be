"""SigLIP's sigmoid loss across replicas: the gathered form against the chunked one, memory and step time.

Each form runs in a fresh process with `--replicas` logical CPUs under MirroredStrategy. A step embeds
`--batch` examples per replica with two projections (stand-ins for the towers: the loss's own memory is
what differs) and computes `keras_clip.losses.sigmoid_loss` against every replica's texts and its
gradients. Reported: the median step time, and the process's peak resident memory (`VmHWM`) above its
memory before the first step (tracing included, the same for both forms). The gathered form keeps a
[batch x global batch] logit matrix per replica for the backward pass; the chunked form one [batch x batch]
block at a time, recomputed in the backward pass.

Usage: python benchmarks/sigmoid_loss.py [--replicas 4] [--batch 4096] [--dim 768] [--steps 3]
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STEP = textwrap.dedent(
    """
    import json, statistics, sys, time
    import tensorflow as tf
    replicas, batch, dim, steps = (int(value) for value in sys.argv[1:5])
    chunked = sys.argv[5] == "chunked"
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    from keras_clip.losses import sigmoid_loss

    def memory_mb(field):
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field)) / 1024

    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
    with strategy.scope():
        image_tower = tf.Variable(tf.random.normal([dim, dim], seed=1) / dim**0.5)
        text_tower = tf.Variable(tf.random.normal([dim, dim], seed=2) / dim**0.5)
        scale, bias = tf.Variable(2.3), tf.Variable(-10.0)
    variables = [image_tower, text_tower, scale, bias]
    inputs = tf.random.normal([replicas * batch, dim], seed=3)
    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors((inputs, inputs + 0.1)).unbatch().batch(replicas * batch).repeat())

    @tf.function
    def step(iterator):
        def replica_step(images, texts):
            with tf.GradientTape() as tape:
                loss, _, _ = sigmoid_loss(images @ image_tower, texts @ text_tower, scale, bias, chunked=chunked)
                loss = loss / replicas
            gradients = tape.gradient(loss, variables)
            # The step's memory and time are the forward and backward passes; the update is the same for both forms.
            return loss + 0.0 * tf.add_n([tf.reduce_sum(gradient) for gradient in gradients])
        return strategy.run(replica_step, args=next(iterator))

    iterator = iter(data)
    before = memory_mb("VmRSS:")
    step(iterator)  # trace and warm up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        strategy.experimental_local_results(step(iterator))[0].numpy()
        times.append(time.perf_counter() - start)
    peak_above = memory_mb("VmHWM:") - before
    print("RESULT " + json.dumps({"step_seconds": statistics.median(times), "peak_above_mb": peak_above}))
    """
)


def measure(form, args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    command = [sys.executable, "-c", STEP, str(args.replicas), str(args.batch), str(args.dim), str(args.steps), form]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{form} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4096, help="examples per replica")
    parser.add_argument("--dim", type=int, default=768, help="embedding width")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    global_batch = args.replicas * args.batch
    logits_mb = args.batch * global_batch * 4 / 2**20
    print(f"{args.replicas} replicas x {args.batch} = global batch {global_batch}, width {args.dim}; "
          f"one replica's [batch x global batch] float32 logits: {logits_mb:.0f} MB")
    results = {form: measure(form, args) for form in ("gathered", "chunked")}
    print(f"{'form':<10} {'step s (median)':>16} {'peak above start MB':>22}")
    for form, result in results.items():
        print(f"{form:<10} {result['step_seconds']:>16.3f} {result['peak_above_mb']:>22.0f}")
    gathered, chunked = results["gathered"], results["chunked"]
    print(f"chunked / gathered: step time {chunked['step_seconds'] / gathered['step_seconds']:.2f}x, "
          f"peak memory {chunked['peak_above_mb'] / max(gathered['peak_above_mb'], 1):.2f}x")


if __name__ == "__main__":
    main()
