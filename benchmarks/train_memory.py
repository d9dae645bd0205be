"""`benchmarks/train.py --memory`: peak memory and step time of training options, each in its own process.

Configurations (`CONFIGURATIONS`): keras_clip plain, with `remat=True` (every residual block
rematerialised), with exact contrastive gradient accumulation (`compile(accumulation_steps=k)`),
with both; OpenAI's PyTorch model plain and with `torch.utils.checkpoint` around every residual
block. All train the same architecture (random weights) with the paper's AdamW on one random batch.

Each configuration runs in a fresh process, so its peak is its own. The process builds the model and
the optimizer state, records its resident memory ("after build"), restarts the kernel's peak counter
(/proc/self/clear_refs), trains `warmup + steps` steps and reports the peak resident memory of
training and the median time of the steps after the warm-up. "Step memory" = peak - after build: what
a training step needs beyond the weights and optimizer state (activations, gradients, temporaries).
Configurations run one after another: the machine's other load shifts between them, so compare
ratios from one run, and use `--rounds` to take medians over alternating repeats.

`--max-batch` instead finds, per configuration, the largest batch that trains within `--memory-cap-gb`
of resident memory: doubling from `--batch-size`, then bisecting, each attempt (one warm-up and one
timed step) in a process killed once its resident memory passes the cap.
"""

import inspect
import json
import math
import statistics
import sys
import time

from benchmarks.common import load_average, machine_description, print_table
from benchmarks.process_memory import GB, child_environment, peak_rss_bytes, reset_peak_rss, rss_bytes, run_capped

LEARNING_RATE = 5e-4
RESULT_PREFIX = "MEMORY_RESULT "
# name -> (framework, rematerialise / checkpoint the residual blocks, accumulate gradients)
CONFIGURATIONS = {
    "keras_clip": ("keras", False, False),
    "keras_clip remat": ("keras", True, False),
    "keras_clip accumulation": ("keras", False, True),
    "keras_clip remat + accumulation": ("keras", True, True),
    "pytorch": ("torch", False, False),
    "pytorch checkpoint": ("torch", True, False),
}
NOT_AVAILABLE = "n/a"


def accumulation_available():
    """True once `CLIP.compile` takes `accumulation_steps` (exact contrastive gradient accumulation)."""
    import keras_clip

    return "accumulation_steps" in inspect.signature(keras_clip.CLIP.compile).parameters


def _inputs(config, batch_size):
    from tests.helpers.model_inputs import random_images, random_tokens

    return random_images(batch_size, config["image_resolution"]), random_tokens(batch_size, config["context_length"])


def keras_worker(model_name, batch_size, remat, accumulation_steps, total_steps, threads):
    """Train keras_clip with `fit`; returns (after-build bytes, peak reset, per-step seconds, last loss)."""
    import keras
    import tensorflow as tf

    import keras_clip
    from keras_clip.models.presets import get_preset

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    images, tokens = _inputs(get_preset(model_name).architecture, batch_size)
    keras.utils.set_random_seed(0)  # the same weights in every configuration: equal first losses
    model = keras_clip.create_model(model_name, remat=remat)
    optimizer = keras_clip.training.optimizer(model, LEARNING_RATE)
    options = {"accumulation_steps": accumulation_steps} if accumulation_steps > 1 else {}
    model.compile(optimizer=optimizer, **options)
    optimizer.build(model.trainable_variables)
    dataset = tf.data.Dataset.from_tensors({"images": images, "tokens": tokens}).repeat()
    dataset_options = tf.data.Options()
    dataset_options.autotune.enabled = False  # see benchmarks/train.py keras_trainer
    dataset = dataset.with_options(dataset_options)

    class StepTimer(keras.callbacks.Callback):
        seconds = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    after_build, reset = rss_bytes(), reset_peak_rss()
    history = model.fit(dataset, epochs=1, steps_per_epoch=total_steps, verbose=0, callbacks=[StepTimer()])
    return after_build, reset, StepTimer.seconds, float(history.history["loss"][-1])


def torch_paper_adamw(reference):
    """The paper's AdamW for OpenAI's PyTorch model, with keras_clip's weight-decay groups."""
    import torch

    decay, no_decay = [], []
    for name, parameter in reference.named_parameters():
        # keras_clip.training.no_weight_decay_variables: gains, biases, embeddings, logit_scale.
        excluded = parameter.ndim < 2 or "embedding" in name or name == "logit_scale"
        (no_decay if excluded else decay).append(parameter)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.2}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LEARNING_RATE, betas=(0.9, 0.98), eps=1e-6,
    )  # fmt: skip


def torch_adamw(reference):
    """`torch_paper_adamw`, its state allocated now (not at the first step)."""
    import torch

    optimizer = torch_paper_adamw(reference)
    for group in optimizer.param_groups:  # what AdamW's first step creates, so "after build" holds it
        for parameter in group["params"]:
            optimizer.state[parameter] = {
                "step": torch.tensor(0.0),
                "exp_avg": torch.zeros_like(parameter, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(parameter, memory_format=torch.preserve_format),
            }
    return optimizer


def checkpoint_residual_blocks(reference):
    """Wrap every residual block of OpenAI's model in `torch.utils.checkpoint` (when training)."""
    import torch
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(torch.nn.Module):
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, x):
            return checkpoint(self.block, x, use_reentrant=False) if self.training else self.block(x)

    stacks = [reference.transformer]
    if hasattr(reference.visual, "transformer"):
        stacks.append(reference.visual.transformer)
    for stack in stacks:
        stack.resblocks = torch.nn.Sequential(*[Checkpointed(block) for block in stack.resblocks])
    for stage in ("layer1", "layer2", "layer3", "layer4"):  # ModifiedResNet's bottlenecks
        if hasattr(reference.visual, stage):
            blocks = getattr(reference.visual, stage)
            setattr(reference.visual, stage, torch.nn.Sequential(*[Checkpointed(block) for block in blocks]))


def torch_worker(model_name, batch_size, checkpointed, total_steps, threads):
    """Train OpenAI's model in eager PyTorch; returns what `keras_worker` returns."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from keras_clip.models.presets import get_preset
    from tests.helpers.openai_reference import reference_module

    torch.set_num_threads(threads)
    config = dict(get_preset(model_name).architecture)
    images, tokens = _inputs(config, batch_size)
    torch.manual_seed(0)
    reference = reference_module("model").CLIP(**config)
    if checkpointed:
        checkpoint_residual_blocks(reference)
    reference.train()
    optimizer = torch_adamw(reference)
    torch_images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    torch_tokens = torch.from_numpy(tokens.astype(np.int64))
    del images, tokens
    labels = torch.arange(batch_size)
    after_build, reset = rss_bytes(), reset_peak_rss()
    seconds, loss = [], None
    for _ in range(total_steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits_per_image, logits_per_text = reference(torch_images, torch_tokens)
        loss = (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            reference.logit_scale.clamp_(max=math.log(100.0))
        loss = loss.item()
        seconds.append(time.perf_counter() - start)
    return after_build, reset, seconds, loss


def worker_main(configuration, model_name, batch_size, accumulation_steps, warmup, steps, threads):
    """Run one configuration in this process and print its result as one JSON line."""
    framework, remat, accumulate = CONFIGURATIONS[configuration]
    total_steps = warmup + steps
    if framework == "torch":
        after_build, reset, seconds, loss = torch_worker(model_name, batch_size, remat, total_steps, threads)
    else:
        if accumulate and not accumulation_available():
            print(RESULT_PREFIX + json.dumps({"available": False}), flush=True)
            return
        k = accumulation_steps if accumulate else 1
        after_build, reset, seconds, loss = keras_worker(model_name, batch_size, remat, k, total_steps, threads)
    result = {
        "available": True,
        "after_build": after_build,
        "peak": peak_rss_bytes(),
        "peak_is_training_only": reset,
        "first_step_seconds": seconds[0],
        "step_seconds": statistics.median(seconds[warmup:]),
        "loss": loss,
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_configuration(configuration, args, batch_size, warmup, steps, cap_bytes, timeout_seconds=None):
    """One configuration in a fresh process: (its result dict or None, the `CappedRun`)."""
    command = [
        sys.executable, "-m", "benchmarks.train", "--memory-worker", configuration, "--model", args.model,
        "--batch-size", str(batch_size), "--accumulation-steps", str(args.accumulation_steps),
        "--warmup", str(warmup), "--steps", str(steps), "--threads", str(args.threads),
    ]  # fmt: skip
    run = run_capped(command, cap_bytes, timeout_seconds, env=child_environment())
    lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    result = json.loads(lines[-1][len(RESULT_PREFIX):]) if run.ok and lines else None
    return result, run


def failure_reason(run):
    if run.stopped_for:
        return f"stopped: {run.stopped_for} at {run.max_rss / GB:.1f} GB"
    last_line = (run.stderr.strip().splitlines() or ["no output"])[-1]
    return f"exit {run.returncode}: {last_line[:120]}"


def gigabytes(value):
    return f"{value / GB:.2f}"


def measure(args, configurations):
    """The table at one batch size: peak, after build, step memory and step time, with ratios to plain."""
    cap = args.memory_cap_gb * GB
    collected = {name: [] for name in configurations}
    for round_index in range(args.rounds):
        for name in configurations:
            result, run = run_configuration(name, args, args.batch_size, args.warmup, args.steps, cap)
            if result is None:
                print(f"{name}: failed ({failure_reason(run)})", file=sys.stderr)
            collected[name].append(result)
    rows, summary = [], {}
    for name, results in collected.items():
        if any(result is None for result in results):
            rows.append([name, "failed"] + [""] * 7)
            continue
        if not all(result["available"] for result in results):
            rows.append([name] + [NOT_AVAILABLE] * 8)
            continue
        peak = max(result["peak"] for result in results)
        after_build = statistics.median(result["after_build"] for result in results)
        step_memory = max(result["peak"] - result["after_build"] for result in results)
        seconds = statistics.median(result["step_seconds"] for result in results)
        summary[name] = (step_memory, seconds, peak)
        rows.append([name, gigabytes(peak), gigabytes(after_build), gigabytes(step_memory), "", f"{seconds:.2f}", "",
                     f"{args.batch_size / seconds:.1f}", f"{results[0]['loss']:.4f}"])  # fmt: skip
    for row in rows:
        framework_plain = "pytorch" if row[0].startswith("pytorch") else "keras_clip"
        if row[0] in summary and framework_plain in summary:
            step_memory, seconds, _ = summary[row[0]]
            plain_memory, plain_seconds, _ = summary[framework_plain]
            row[4] = f"{step_memory / plain_memory:.2f}x"
            row[6] = f"{seconds / plain_seconds:.2f}x"
    print_table(["", "peak RSS GB", "after build GB", "step memory GB", "vs plain", "s/step", "vs plain",
                 "samples/s", "loss"], rows)  # fmt: skip
    return summary


def largest_batch(name, args):
    """(largest batch that trained, its result, the smallest that failed and why) for one configuration."""
    cap = args.memory_cap_gb * GB
    granularity = max(8, args.accumulation_steps if CONFIGURATIONS[name][2] else 1)

    def attempt(batch):
        result, run = run_configuration(name, args, batch, 1, 1, cap, args.attempt_timeout)
        outcome = "ok" if result else failure_reason(run)
        print(f"  {name} batch {batch}: {outcome}", file=sys.stderr, flush=True)
        return result, run

    good, good_result, bad, bad_reason = None, None, None, None
    batch = args.batch_size
    while batch <= args.batch_limit:
        result, run = attempt(batch)
        if result is not None and not result["available"]:
            return None, None, None, NOT_AVAILABLE
        if result is None:
            bad, bad_reason = batch, failure_reason(run)
            break
        good, good_result = batch, result
        batch *= 2
    if good is None:  # even the first batch failed: halve until one trains
        while bad > granularity:
            batch = max(granularity, bad // 2 // granularity * granularity)
            result, run = attempt(batch)
            if result is not None:
                good, good_result = batch, result
                break
            bad, bad_reason = batch, failure_reason(run)
    while good is not None and bad is not None and bad - good > max(granularity, good // 16):
        batch = (good + bad) // 2 // granularity * granularity
        result, run = attempt(batch)
        if result is not None:
            good, good_result = batch, result
        else:
            bad, bad_reason = batch, failure_reason(run)
    return good, good_result, bad, bad_reason


def main(args):
    configurations = args.configs or list(CONFIGURATIONS)
    print(f"Machine: {machine_description()}; load average {load_average()}")
    print(f"Model: {args.model} (random weights), AdamW, {args.threads} threads per framework; each configuration "
          f"in its own process; accumulation: {args.accumulation_steps} micro-batches "
          f"({'available' if accumulation_available() else 'not available in this version: n/a'})")  # fmt: skip
    if not args.max_batch:
        print(f"Batch {args.batch_size}: {args.warmup} warm-up steps, median of {args.steps} steps, "
              f"{args.rounds} round(s)\n")  # fmt: skip
        measure(args, configurations)
    else:
        print(f"Largest batch under {args.memory_cap_gb:g} GB resident (doubling from {args.batch_size}, at most "
              f"{args.batch_limit}, then bisecting; one warm-up and one timed step per attempt)\n")  # fmt: skip
        rows = []
        for name in configurations:
            good, result, bad, reason = largest_batch(name, args)
            if reason == NOT_AVAILABLE:
                rows.append([name] + [NOT_AVAILABLE] * 5)
            elif good is None:
                rows.append([name, f"none (batch {bad}: {reason})", "", "", "", ""])
            else:
                limit = f"{bad}: {reason}" if bad is not None else f"not reached (limit {args.batch_limit})"
                rows.append([name, good, gigabytes(result["peak"]), f"{result['step_seconds']:.1f}",
                             f"{good / result['step_seconds']:.1f}", limit])  # fmt: skip
        print_table(["", "largest batch", "peak RSS GB", "s/step", "samples/s", "first failing batch"], rows)
    print(f"\nLoad average now {load_average()}")
