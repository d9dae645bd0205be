"""Convert a CLIP checkpoint to a Keras `.keras` model or `.weights.h5` weights file, without PyTorch.

--model is anything `keras_clip.load` reads: a released model's name (downloaded and SHA256-checked
into the cache), OpenAI's TorchScript `.pt`, a `torch.save` state dict (`.pt`/`.pth`/`.bin`), a
`.safetensors` file in OpenAI / open_clip or Hugging Face `CLIPModel` names, a model folder, or our
own `.keras` / `.weights.h5`. PyTorch checkpoints are read with a restricted unpickler: no code from
the file runs. The output is written to a temporary file and renamed. A `.weights.h5` output
records the architecture, so `keras_clip.load("model.weights.h5")` rebuilds the model from it alone.

Examples:
  keras-clip convert clip_vit_b32.keras --model ViT-B/32
  keras-clip convert model.weights.h5 --model ~/Downloads/open_clip_model.safetensors
"""

import os
import time

from keras_clip.cli import arguments
from keras_clip.cli.loading import load_clip

OUTPUT_SUFFIXES = (".keras", ".weights.h5")


def add_arguments(parser):
    parser.add_argument("output", help="file to write, ending in .keras or .weights.h5")
    arguments.add_model(parser)


def run(args):
    if not args.output.endswith(OUTPUT_SUFFIXES):
        raise arguments.UsageError(f"the output must end in .keras or .weights.h5, got {args.output}")
    from keras_clip.checkpoints.keras_files import save_model_file, save_weights_with_config

    start = time.perf_counter()
    model = load_clip(args)
    if args.output.endswith(".keras"):
        save_model_file(model, args.output)
    else:
        save_weights_with_config(model, args.output)
    print(f"architecture: {model.architecture()}")
    print(f"parameters: {model.count_params():,}")
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")
    return 0
