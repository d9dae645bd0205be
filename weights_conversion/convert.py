"""Convert a CLIP checkpoint to a Keras `.keras` model or `.weights.h5` file, without PyTorch.

A thin script over `keras-clip convert OUTPUT --model SOURCE` (see its --help), kept here where
users look for conversion scripts. SOURCE is a released model's name (e.g. ViT-B/32) or any
checkpoint `keras_clip.load` reads: OpenAI's TorchScript `.pt`, `torch.save` state dicts, `.safetensors`
(OpenAI / open_clip or Hugging Face `CLIPModel` names), model folders, `.keras`, `.weights.h5`.

Examples:
  python weights_conversion/convert.py ViT-B/32 clip_vit_b32.keras
  python weights_conversion/convert.py ~/Downloads/open_clip_model.safetensors model.weights.h5
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="convert.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", help="model name (e.g. ViT-B/32) or checkpoint path")
    parser.add_argument("output", help="destination ending in .keras or .weights.h5")
    parser.add_argument("--cache-dir",
                        help="download / conversion cache (default $KERAS_CLIP_CACHE or ~/.cache/keras_clip)")
    args = parser.parse_args(argv)
    from keras_clip.cli import main as keras_clip_main

    command = ["convert", args.output, "--model", args.source]
    return keras_clip_main(command + (["--cache-dir", args.cache_dir] if args.cache_dir else []))


if __name__ == "__main__":
    sys.exit(main())
