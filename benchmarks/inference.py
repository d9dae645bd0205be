"""Inference speed of keras_clip against OpenAI's PyTorch model on this machine, in one run.

For one architecture (random weights: speed does not depend on their values), measures in
interleaved rounds, same process, same inputs:
- image throughput at batch 32; text throughput at batch 32 on full 77-token inputs (the worst
  case) and on real captions (varied English captions tokenized by keras_clip.tokenize, 10-20
  tokens typically); batch-1 image latency;
- keras_clip in float32 (the default `model.encode_image` / `encode_text` fast path), float32
  with XLA, bfloat16 and int8 weight quantisation, against OpenAI's model in float32 eager
  PyTorch (`torch.no_grad()`, `torch.set_num_threads(cores)`);
- each as a ratio to PyTorch float32 and as a fraction of the measured matmul peak.

`--model` is a released model ("ViT-B/32", "ViT-L/14", "ViT-H-14/laion2b_s32b_b79k") or open_clip's
architecture name ("ViT-H-14"). The reference is OpenAI's model code at that model's sizes; it has no
80-wide heads or GELU, so for ViT-H/14 it runs 20 heads of 64 (the same attention FLOPs) and QuickGELU.

Usage: python benchmarks/inference.py [--model ViT-B/32] [--rounds 7] [--modes float32,xla,bfloat16,int8]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script

from benchmarks.common import (  # noqa: E402
    interleaved_medians,
    machine_description,
    matmul_peak_gflops,
    print_table,
    torch_flops,
)

MODES = ("float32", "xla", "bfloat16", "int8")


OPENAI_ARGUMENTS = (
    "embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size",
    "context_length", "vocab_size", "transformer_width", "transformer_heads", "transformer_layers",
)  # fmt: skip


def architecture(name):
    """`CLIP` arguments of a released model or an architecture name."""
    from keras_clip.models.presets import architecture_by_name, find_preset

    preset = find_preset(name)
    return dict(preset.architecture if preset is not None else architecture_by_name(name))


def keras_model(state_dict, mode, options):
    import keras_clip

    if mode in ("float32", "xla", "int8"):
        model = keras_clip.build_model(state_dict, architecture=options)
    elif mode == "bfloat16":
        model = keras_clip.build_model(state_dict, dtype="bfloat16", architecture=options)
    else:
        raise ValueError(f"unknown mode {mode}")
    if mode == "xla":
        model.jit_compile_inference = True
    if mode == "int8":
        model.quantize("int8")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B/32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()

    import torch

    import keras_clip
    from tests.helpers.model_inputs import random_images, random_tokens
    from tests.helpers.openai_reference import random_reference_model
    from tests.helpers.tokenizer_corpus import benchmark_captions

    torch.set_num_threads(os.cpu_count())
    config = architecture(args.model)
    options = {key: value for key, value in config.items() if key not in OPENAI_ARGUMENTS}
    reference, state_dict = random_reference_model({key: config[key] for key in OPENAI_ARGUMENTS})
    resolution = config["image_resolution"]
    images = random_images(args.batch, resolution)
    full_tokens = np.tile(random_tokens(args.batch)[-1:], (args.batch, 1))  # every row fills the context
    caption_tokens = keras_clip.tokenize(benchmark_captions(args.batch), truncate=True)
    torch_images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    modes = [mode for mode in args.modes.split(",") if mode]
    models = {mode: keras_model(state_dict, mode, options) for mode in modes}

    def torch_call(function, *inputs):
        def run():
            with torch.no_grad():
                function(*inputs)

        return run

    def keras_call(function, inputs):
        return lambda: np.asarray(function(inputs))

    inputs = {  # task -> (keras input, torch input, tower)
        "image": (images, torch_images, "image"),
        "text": (full_tokens, torch.from_numpy(full_tokens.astype(np.int64)), "text"),
        "captions": (caption_tokens, torch.from_numpy(caption_tokens.astype(np.int64)), "text"),
        "latency": (images[:1], torch_images[:1], "image"),
    }
    flops = {
        task: torch_flops(lambda: getattr(reference, f"encode_{tower}")(torch_input))
        for task, (_, torch_input, tower) in inputs.items()
    }
    peaks = {"float32": matmul_peak_gflops("float32"), "bfloat16": matmul_peak_gflops("bfloat16")}
    print(f"Machine: {machine_description()}")
    print(f"Matmul peak: float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['bfloat16']:.0f} GFLOP/s")
    print(f"Model: {args.model} (random weights), batch {args.batch}, {args.rounds} interleaved rounds, medians\n")

    results = {}
    for task, (keras_input, torch_input, tower) in inputs.items():
        candidates = {"pytorch float32": torch_call(getattr(reference, f"encode_{tower}"), torch_input)}
        for mode, model in models.items():
            candidates[f"keras_clip {mode}"] = keras_call(getattr(model, f"encode_{tower}"), keras_input)
        results[task] = interleaved_medians(candidates, args.rounds)

    rows = []
    for name in results["image"]:
        precision = "bfloat16" if "bfloat16" in name else "float32"
        image_s, text_s, latency_s = results["image"][name], results["text"][name], results["latency"][name]
        captions_s = results["captions"][name]
        torch_image, torch_text, torch_captions, torch_latency = (
            results[t]["pytorch float32"] for t in ("image", "text", "captions", "latency")
        )
        rows.append([
            name,
            f"{args.batch / image_s:.1f}",
            f"{torch_image / image_s:.2f}x",
            f"{flops['image'] / image_s / 1e9:.0f} ({flops['image'] / image_s / 1e9 / peaks[precision]:.0%})",
            f"{args.batch / text_s:.1f}",
            f"{torch_text / text_s:.2f}x",
            f"{args.batch / captions_s:.1f}",
            f"{torch_captions / captions_s:.2f}x",
            f"{latency_s * 1000:.1f}",
            f"{latency_s / torch_latency:.2f}x",
        ])
    print_table(
        ["", "images/s", "vs PyTorch", "image GFLOP/s (of peak)", "texts/s (77 tokens)", "vs PyTorch",
         "captions/s", "vs PyTorch", "batch-1 image ms", "vs PyTorch"],
        rows,
    )


if __name__ == "__main__":
    main()
