"""Training speed of keras_clip's `CLIP.fit` against OpenAI's PyTorch model on this machine, in one run.

For one architecture (full size, random weights: speed does not depend on their values), both
start from the same weights and train on the same random batch (images [N, R, R, 3], token ids
[N, 77]) with CLIP's symmetric contrastive loss and the paper's AdamW (learning rate 5e-4,
beta_2 0.98, epsilon 1e-6, weight decay 0.2 on matrices only, logit_scale clamped to ln 100):
- keras_clip: `model.compile(optimizer=keras_clip.training.optimizer(model))` then
  `model.fit(dataset, steps_per_epoch=K)`, in float32 ("float32", the default) and, with
  `--modes float32,xla`, also in float32 with `compile(jit_compile=True)` (XLA);
- PyTorch: OpenAI's `clip.model.CLIP` in float32 eager mode, `torch.optim.AdamW` with the same
  parameter groups, `torch.set_num_threads` equal to TensorFlow's intra-op threads.
After warm-up steps, timed rounds of K steps alternate between the candidates; the table shows
median samples/s, the ratio to PyTorch, the fraction of the measured matmul peak, and the time
and loss of each candidate's first step (tracing / XLA compilation; equal losses show that the
candidates train the same model on the same data). keras_clip reads the batch through tf.data
with autotuning off (see `keras_trainer`). All candidates live in one process: ViT-B/32 needs
about 13 GB of RAM, and about 20 GB with both keras_clip modes. Other work on the machine
disturbs PyTorch far more than TensorFlow: check the load averages printed before and after.

With `--memory`: peak resident memory and step time of keras_clip plain, with `remat=True`, with exact
gradient accumulation (`compile(accumulation_steps=k)`) and with both, and of OpenAI's PyTorch model plain
and with `torch.utils.checkpoint` per residual block, each in its own process (see benchmarks/train_memory.py);
with `--memory --max-batch`, the largest batch each of them trains under `--memory-cap-gb`.

Usage: python benchmarks/train.py [--model ViT-B/32] [--batch-size 32] [--steps 3] [--rounds 5]
       [--warmup 2] [--modes float32[,xla]] [--threads N]
       python benchmarks/train.py --memory [--max-batch] [--configs "keras_clip,keras_clip remat"]
       [--accumulation-steps 4] [--memory-cap-gb 22] [--batch-limit 4096] [--rounds 1]
Targets: keras_clip at least as fast as PyTorch (ratio >= 1.0x); with --memory at batch 32, keras_clip's
peak at most PyTorch's, and remat at most 0.5x keras_clip's step memory at at most 1.35x its step time.
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.common import (  # noqa: E402
    interleaved_medians,
    load_average,
    machine_description,
    matmul_peak_gflops,
    print_table,
    set_threads,
    torch_flops,
    torch_matmul_peak_gflops,
)
from benchmarks import train_memory  # noqa: E402
from benchmarks.train_memory import CONFIGURATIONS  # noqa: E402

MODES = ("float32", "xla")
LEARNING_RATE = train_memory.LEARNING_RATE


def keras_trainer(state_dict, images, tokens, mode):
    """`run(steps) -> mean loss` training a keras_clip model with `fit` on one repeated batch."""
    import tensorflow as tf

    import keras_clip

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    model = keras_clip.build_model(state_dict)
    model.compile(optimizer=keras_clip.training.optimizer(model, LEARNING_RATE), jit_compile=mode == "xla")
    dataset = tf.data.Dataset.from_tensors({"images": images, "tokens": tokens}).repeat()
    # Each `fit` call makes a new iterator. With tf.data autotuning on (TF 2.21), once an old
    # iterator was dropped the next steps stalled, CPU idle, until that iterator's autotune
    # thread woke up (5.11, 10.23, 20.47 s... after its creation: 10 ms intervals, doubling):
    # 3 of 9 rounds took 1.3x-3.6x their compute time. That is the input pipeline's cost, not
    # the training step's, which this benchmark measures.
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = dataset.with_options(options)

    def run(steps):
        history = model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        return float(history.history["loss"][-1])

    return run


def torch_trainer(reference, images, tokens):
    """`run(steps) -> mean loss` training OpenAI's model the same way, in eager PyTorch."""
    import torch
    import torch.nn.functional as F

    optimizer = train_memory.torch_paper_adamw(reference)
    reference.train()
    torch_images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    torch_tokens = torch.from_numpy(tokens.astype(np.int64))
    labels = torch.arange(len(images))

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits_per_image, logits_per_text = reference(torch_images, torch_tokens)
        loss = (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            reference.logit_scale.clamp_(max=math.log(100.0))
        return loss.item()

    def run(steps):
        return float(np.mean([step() for _ in range(steps)]))

    def forward_backward():
        logits_per_image, logits_per_text = reference(torch_images, torch_tokens)
        loss = (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
        loss.backward()
        optimizer.zero_grad(set_to_none=True)

    return run, forward_backward


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B/32", help="architecture name (default ViT-B/32)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per step (default 32)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed round, K (default 3)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed rounds per candidate (default 5; with --memory: 1)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed steps per candidate first, at least 1 (default 2)")
    parser.add_argument("--modes", default="float32",
                        help=f"comma-separated keras_clip modes, of {', '.join(MODES)} (default float32)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of both frameworks (default: the CPUs this process may use)")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory and step time of the training options, one process each")
    parser.add_argument("--max-batch", action="store_true",
                        help="with --memory: the largest batch each configuration trains under --memory-cap-gb")
    parser.add_argument("--configs", default=None,
                        help=f"with --memory: comma-separated configurations, of {', '.join(CONFIGURATIONS)}")
    parser.add_argument("--accumulation-steps", type=int, default=4,
                        help="micro-batches of the accumulation configurations (default 4)")
    parser.add_argument("--memory-cap-gb", type=float, default=22.0,
                        help="resident memory at which a configuration's process is stopped (default 22)")
    parser.add_argument("--batch-limit", type=int, default=4096,
                        help="with --max-batch: the largest batch tried (default 4096)")
    parser.add_argument("--attempt-timeout", type=float, default=3600.0,
                        help="with --max-batch: seconds one attempt may take (default 3600)")
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 1 if args.memory else 5
    if args.threads is None and (args.memory or args.memory_worker):
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.configs is not None:
        args.configs = [name.strip() for name in args.configs.split(",") if name.strip()]
        unknown = sorted(set(args.configs) - set(CONFIGURATIONS))
        if unknown or not args.configs:
            parser.error(f"unknown --configs {', '.join(unknown) or '(none)'}; choose from {', '.join(CONFIGURATIONS)}")
    if args.memory and (args.accumulation_steps < 1 or args.batch_size % args.accumulation_steps):
        parser.error("--accumulation-steps must be at least 1 and divide --batch-size")
    for name in ("batch_size", "steps", "rounds", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.modes = [mode for mode in args.modes.split(",") if mode]
    unknown = sorted(set(args.modes) - set(MODES))
    if unknown or not args.modes:
        parser.error(f"unknown --modes {', '.join(unknown) or '(none)'}; choose from {', '.join(MODES)}")
    from keras_clip.models.presets import available_models

    if args.model not in available_models():
        parser.error(f"unknown --model {args.model!r}; choose from {', '.join(available_models())}")
    return args


def main():
    args = parse_args()
    if args.memory_worker:
        return train_memory.worker_main(args.memory_worker, args.model, args.batch_size, args.accumulation_steps,
                                        args.warmup, args.steps, args.threads)  # fmt: skip
    if args.memory:
        return train_memory.main(args)
    threads = set_threads(args.threads)

    from keras_clip.models.presets import get_preset
    from tests.helpers.model_inputs import random_images, random_tokens
    from tests.helpers.openai_reference import random_reference_model

    config = dict(get_preset(args.model).architecture)
    reference, state_dict = random_reference_model(config)
    images = random_images(args.batch_size, config["image_resolution"])
    tokens = random_tokens(args.batch_size, config["context_length"])
    torch_run, torch_forward_backward = torch_trainer(reference, images, tokens)
    trainers = {"pytorch float32": torch_run}
    for mode in args.modes:
        trainers[f"keras_clip {mode}"] = keras_trainer(state_dict, images, tokens, mode)

    step_flops = torch_flops(torch_forward_backward, no_grad=False)
    peak = matmul_peak_gflops("float32")
    torch_peak = torch_matmul_peak_gflops()
    print(f"Machine: {machine_description()}; load average {load_average()}")
    print(f"Threads: TensorFlow intra-op {threads}, torch.set_num_threads({threads})")
    print(f"Matmul peak (float32, 2048x2048): TensorFlow {peak:.0f} GFLOP/s, PyTorch {torch_peak:.0f} GFLOP/s")
    print(f"One training step: {step_flops / 1e12:.2f} TFLOP (forward and backward matmuls and convolutions)")
    print(f"Model: {args.model} (random weights), batch {args.batch_size}, {args.warmup} warm-up steps, "
          f"{args.rounds} interleaved rounds of {args.steps} steps, medians\n")

    first_steps = {}  # (seconds, loss) of each candidate's first step, which traces (XLA: compiles) the step
    for name, run in trainers.items():
        start = time.perf_counter()
        loss = run(1)
        first_steps[name] = (time.perf_counter() - start, loss)
    for run in trainers.values():
        if args.warmup > 1:
            run(args.warmup - 1)
    seconds = interleaved_medians(
        {name: (lambda run=run: run(args.steps)) for name, run in trainers.items()}, args.rounds, warmup=0
    )
    torch_seconds = seconds["pytorch float32"]
    rows = []
    for name, round_seconds in seconds.items():
        step_seconds = round_seconds / args.steps
        rows.append([
            name,
            f"{args.batch_size / step_seconds:.2f}",
            f"{step_seconds:.2f}",
            f"{torch_seconds / round_seconds:.2f}x",
            f"{step_flops / step_seconds / 1e9:.0f} ({step_flops / step_seconds / 1e9 / peak:.0%})",
            f"{first_steps[name][0]:.1f}",
            f"{first_steps[name][1]:.4f}",
        ])
    print_table(
        ["", "samples/s", "s/step", "vs PyTorch", "GFLOP/s (of TF peak)", "first step s", "first step loss"], rows
    )
    print(f"\nPeak resident memory of this process: {peak_rss_gb():.1f} GB; load average now {load_average()}")


def peak_rss_gb():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1e6
    except (OSError, StopIteration):
        return float("nan")


if __name__ == "__main__":
    main()
