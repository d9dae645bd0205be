"""Convert a CLIP checkpoint to a Keras `.keras` model or `.weights.h5` weights file, without PyTorch.

SOURCE is anything `keras_clip.load` reads: one of OpenAI's model names (downloaded and
SHA256-checked into the cache), OpenAI's TorchScript `.pt` files, `torch.save` state dicts
(`.pt`/`.pth`/`.bin`), `.safetensors` in OpenAI/open_clip or Hugging Face `CLIPModel` names,
or our own `.keras` / `.weights.h5`. PyTorch checkpoints are read with a restricted unpickler:
no code from the file runs. The output is written to a temporary file and renamed.

A `.weights.h5` output records the architecture (HDF5 attribute `keras_clip_config`), so
`keras_clip.load("model.weights.h5")` rebuilds the model from it alone.

Examples:
  python weights_conversion/convert.py ViT-B/32 clip_vit_b32.keras
  python weights_conversion/convert.py ~/Downloads/open_clip_model.safetensors model.weights.h5
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="convert.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", help="model name (e.g. ViT-B/32) or checkpoint path")
    parser.add_argument("output", help="destination ending in .keras or .weights.h5")
    parser.add_argument("--cache-dir", help="download / conversion cache (default $KERAS_CLIP_CACHE or ~/.cache/keras_clip)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.output.endswith((".keras", ".weights.h5")):
        sys.exit(f"error: the output must end in .keras or .weights.h5, got {args.output}")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_clip.checkpoints.keras_files import architecture_config, save_model_file, save_weights_with_config
    from keras_clip.checkpoints.load import load_model

    start = time.perf_counter()
    model = load_model(args.source, cache_dir=args.cache_dir)
    if args.output.endswith(".keras"):
        save_model_file(model, args.output)
    else:
        save_weights_with_config(model, args.output)
    parameters = sum(int(weight.numpy().size) for weight in model.weights)
    print(f"architecture: {architecture_config(model)}")
    print(f"parameters: {parameters:,}")
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
