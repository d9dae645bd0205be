"""Shared pieces of the benchmarks: interleaved timing, medians, FLOP counts, matmul peak, tables."""

import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def interleaved_medians(candidates, rounds, warmup=1):
    """Median seconds per call of each `name -> callable`, timed in interleaved rounds.

    Interleaving spreads the machine's background noise evenly over the candidates.
    """
    for function in candidates.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, function in candidates.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def torch_flops(function, no_grad=True):
    """FLOPs of one call of a PyTorch function (matmuls and convolutions), by torch's FlopCounterMode.

    With `no_grad=False` the function may call `backward()`, whose FLOPs are counted too.
    """
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad() if no_grad else contextlib.nullcontext(), FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def set_threads(threads=None):
    """Give TensorFlow (intra-op) and PyTorch the same number of threads; returns it.

    Default: the CPUs this process may run on. Call before TensorFlow runs any op.
    """
    import tensorflow as tf
    import torch

    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    torch.set_num_threads(threads)
    return threads


def matmul_peak_gflops(dtype="float32", size=2048, repeats=5):
    """Best sustained GFLOP/s of a square TensorFlow matmul in `dtype` on this machine."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype)
    product = tf.function(lambda x: tf.matmul(x, x))
    product(a).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def torch_matmul_peak_gflops(size=2048, repeats=5):
    """Best sustained GFLOP/s of a square float32 PyTorch matmul on this machine (its BLAS, its threads)."""
    import torch

    a = torch.randn(size, size)
    torch.mm(a, a)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, a)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def machine_description():
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, TensorFlow {tf.__version__}, Python {platform.python_version()}"


def load_average():
    return "/".join(f"{value:.2f}" for value in os.getloadavg()) + " (1/5/15 min)"


def print_table(headers, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
