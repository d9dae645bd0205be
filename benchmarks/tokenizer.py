"""Tokenizer throughput: keras_clip's in-graph tokenizer against OpenAI's and Hugging Face's.

Tokenizes the same varied English captions to [N, 77] ids with
  - keras_clip.Tokenizer called eagerly on the whole Python list,
  - keras_clip.Tokenizer in a tf.data pipeline, batches of 256 (cold: first pass of a fresh
    process; warm: later passes of the same iterator, cache of out-of-vocabulary words filled;
    the same with a sequential map (one batch at a time), and later passes each with a new
    iterator, which re-instantiates the graph, ~0.4 s of CPU),
  - OpenAI's Python tokenizer (`simple_tokenizer.py` with `clip.tokenize`'s padding), warm cache,
  - Hugging Face's Rust CLIPTokenizerFast, built offline from the same BPE file, one call per
    caption and one call on the whole list (its own batch parallelism),
and prints captions per second and ratios in one run. Each figure is the best of `--repeats` timed
passes (the machine may be shared), except the warm tf.data figure: `--repeats` passes in a row.
Needs the test extras plus `transformers` (benchmark only).

    python benchmarks/tokenizer.py [--captions 10000] [--repeats 3]
"""

import argparse
import inspect
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_clip.text.bpe import load_vocabulary  # noqa: E402
from keras_clip.text.tokenizer import Tokenizer  # noqa: E402
from tests.helpers.tokenizer_corpus import benchmark_captions  # noqa: E402
from tests.helpers.tokenizer_reference import reference_tokenize  # noqa: E402

BATCH = 256


def best_rate(run, count, repeats):
    """Captions per second of the fastest of `repeats` calls of `run()`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def hugging_face_tokenizer(directory):
    """CLIPTokenizerFast from vocab.json / merges.txt written from OpenAI's BPE file (no hub access)."""
    from transformers import CLIPTokenizerFast

    tokens, merges = load_vocabulary()
    vocab_path, merges_path = os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")
    with open(vocab_path, "w", encoding="utf-8") as handle:
        json.dump({token: i for i, token in enumerate(tokens)}, handle)
    with open(merges_path, "w", encoding="utf-8") as handle:
        handle.write("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    if "vocab_file" in inspect.signature(CLIPTokenizerFast.__init__).parameters:  # transformers 4
        return CLIPTokenizerFast(vocab_file=vocab_path, merges_file=merges_path)
    return CLIPTokenizerFast(vocab=vocab_path, merges=merges_path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    captions = benchmark_captions(args.captions)
    count = len(captions)
    rates = {}

    tokenizer = Tokenizer()
    batches = -(-count // BATCH)

    def make_dataset(parallel_calls=tf.data.AUTOTUNE):
        return (
            tf.data.Dataset.from_tensor_slices(captions)
            .batch(BATCH)
            .map(tokenizer, num_parallel_calls=parallel_calls)
            .prefetch(2)
        )

    def one_pass(iterator):
        return np.concatenate([next(iterator).numpy() for _ in range(batches)])

    start = time.perf_counter()
    iterator = iter(make_dataset().repeat())  # tracing, graph instantiation, empty cache: all timed
    ours = one_pass(iterator)
    rates["keras_clip, tf.data batches of 256, cold"] = count / (time.perf_counter() - start)
    # Warm: the same pipeline going on through more passes. Passes run back to back, so the few
    # batches prefetched before the clock starts are a bias of about 2 in 40 * repeats batches.
    start = time.perf_counter()
    for _ in range(args.repeats):
        one_pass(iterator)
    rates["keras_clip, tf.data batches of 256, warm"] = args.repeats * count / (time.perf_counter() - start)
    iterator = iter(make_dataset(parallel_calls=None).repeat())
    one_pass(iterator)
    start = time.perf_counter()
    for _ in range(args.repeats):
        one_pass(iterator)
    rates["keras_clip, tf.data, warm, sequential map"] = args.repeats * count / (time.perf_counter() - start)
    dataset = make_dataset()
    rates["keras_clip, tf.data, new iterator per pass"] = best_rate(
        lambda: [batch for batch in dataset], count, args.repeats
    )
    tokenizer(captions[:BATCH])  # trace the eager path
    rates["keras_clip, eager call on the list"] = best_rate(lambda: tokenizer(captions), count, args.repeats)

    openai = reference_tokenize(captions)  # also warms its cache
    rates["OpenAI Python (clip.tokenize)"] = best_rate(lambda: reference_tokenize(captions), count, args.repeats)
    if not np.array_equal(ours, openai):
        raise SystemExit("keras_clip's ids differ from OpenAI's on the benchmark captions")

    with tempfile.TemporaryDirectory() as directory:
        hugging_face = hugging_face_tokenizer(directory)
        options = {"padding": "max_length", "max_length": 77, "truncation": True}
        rates["Hugging Face Rust, one call per caption"] = best_rate(
            lambda: [hugging_face(text, **options)["input_ids"] for text in captions], count, args.repeats
        )
        rates["Hugging Face Rust, one call on the list"] = best_rate(
            lambda: hugging_face(captions, return_tensors="np", **options)["input_ids"], count, args.repeats
        )

    ours_warm = rates["keras_clip, tf.data batches of 256, warm"]
    print(f"{count} captions, best of {args.repeats}, {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}")
    print(f"| {'tokenizer':45s} | {'captions/s':>10s} | {'keras_clip tf.data (warm) is':>28s} |")
    print(f"|{'-' * 47}|{'-' * 12}:|{'-' * 30}:|")
    for name, rate in rates.items():
        print(f"| {name:45s} | {rate:10,.0f} | {ours_warm / rate:27.2f}x |")


if __name__ == "__main__":
    main()
