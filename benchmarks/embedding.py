"""Embedding JPEG files from disk against the model's in-memory throughput, in one run.

Writes `--images` JPEG files (default 2,000; 640x480 crops of real photographs bundled with
scikit-learn / scikit-image, quality 90) to a temporary folder, then measures
- in memory: `model.encode_image` on already preprocessed float32 batches (the model alone);
- from disk: `keras_clip.embed_images(model, folder)`, what the CLI runs: tf.data reads the files
  ahead; each batch is decoded, preprocessed (OpenAI's pipeline) and embedded in one graph;
in interleaved rounds, and prints images/s and the ratio disk / memory (target: ≥ 0.9: I/O is
hidden and decoding costs little next to the model).
With `--engine ray`, also `keras-clip embed FOLDER --out DIR --engine ray` through its function
(`embed_collection` from the model's `.keras` file, Ray actors, shards of `--shard-size`): once with Ray's
start included (a cold run, what one command on a laptop pays), then in the interleaved rounds on the
running Ray instance (what a cluster's user pays: the workers' start and model load, the shards' files).
Target: ≥ 0.85 of `embed_images`' throughput.

Usage: python benchmarks/embedding.py [--model ViT-B/32] [--images 2000] [--batch 32] [--rounds 2]
                                      [--engine ray] [--shard-size 10000] [--workers 1]
"""

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script

from benchmarks.common import interleaved_medians, machine_description, print_table  # noqa: E402


def write_jpegs(folder, count, seed=0):
    """`count` 640x480 JPEGs cropped from real photographs; returns their paths."""
    from PIL import Image

    from tests.helpers.images import photographs

    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.fromarray(p).resize((960, 720), Image.LANCZOS)) for p in photographs().values()]
    paths = []
    for index in range(count):
        photo = photos[index % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - 480), rng.integers(0, photo.shape[1] - 640)
        path = os.path.join(folder, f"{index:05d}.jpg")
        Image.fromarray(photo[top:top + 480, left:left + 640]).save(path, quality=90)
        paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B/32")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--shard-size", type=int, default=10_000)  # `keras-clip embed`'s default
    parser.add_argument("--workers", type=int, default=1, help="Ray workers (the CPUs are shared equally)")
    args = parser.parse_args()

    import tensorflow as tf

    import keras_clip

    model = keras_clip.create_model(args.model)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_jpegs(folder, args.images)
        megabytes = sum(os.path.getsize(path) for path in paths) / 1e6
        # The in-memory input: the same files, preprocessed once up front (not timed).
        encoded = [Path(path).read_bytes() for path in paths]
        pixels = np.concatenate([
            keras_clip.preprocess_image(tf.constant(encoded[i:i + 256]), model.image_resolution).numpy()
            for i in range(0, len(encoded), 256)
        ])

        def in_memory():
            for start in range(0, len(pixels), args.batch):
                np.asarray(model.encode_image(pixels[start:start + args.batch]))

        def from_disk():
            keras_clip.embed_images(model, folder, batch_size=args.batch, verbose=False)

        # Warm-up: trace the model's compiled graph and the pipeline's functions once.
        np.asarray(model.encode_image(pixels[:args.batch]))
        keras_clip.embed_images(model, paths[:args.batch], batch_size=args.batch, verbose=False)
        print(f"Machine: {machine_description()}")
        print(f"Model: {args.model} (random weights), {args.images} JPEGs 640x480 ({megabytes:.0f} MB), "
              f"batch {args.batch}, {args.rounds} interleaved rounds, medians\n")
        candidates = {"in memory": in_memory, "from disk": from_disk}
        if args.engine == "ray":
            ray_run, work = ray_engine_run(model, folder, args)
            cold = timed(ray_run)  # before anything else starts Ray
            candidates["ray, Ray running"] = ray_run
        seconds = interleaved_medians(candidates, args.rounds, warmup=0)
        if args.engine == "ray":
            seconds["ray, Ray's start included"] = cold
            work.cleanup()
    memory_rate, disk_rate = args.images / seconds["in memory"], args.images / seconds["from disk"]
    rows = [["model.encode_image, preprocessed arrays", f"{memory_rate:.1f}", "1.00", ""],
            ["embed_images(folder), JPEG files", f"{disk_rate:.1f}", f"{disk_rate / memory_rate:.2f}", "1.00"]]
    for name in ("ray, Ray's start included", "ray, Ray running"):
        if name in seconds:
            rate = args.images / seconds[name]
            rows.append([f"embed_collection(engine={name})", f"{rate:.1f}", f"{rate / memory_rate:.2f}",
                         f"{rate / disk_rate:.2f}"])  # fmt: skip
    print_table(["", "images/s", "vs in memory", "vs embed_images"], rows)


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def ray_engine_run(model, folder, args):
    """(a function embedding the folder on Ray into a new output folder at each call, its work folder)."""
    from keras_clip.serving.shards import embed_collection

    work = tempfile.TemporaryDirectory()
    model_path = os.path.join(work.name, "model.keras")
    model.save(model_path)
    runs = itertools.count()

    def run():
        embed_collection(model_path, folder, os.path.join(work.name, f"run_{next(runs)}"), engine="ray",
                         shard_size=args.shard_size, batch_size=args.batch, workers=args.workers, verbose=False)

    return run, work


if __name__ == "__main__":
    main()
