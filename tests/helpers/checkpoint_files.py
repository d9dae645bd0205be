"""Checkpoint files of random-weight reference models in every format `keras_clip.load` reads.

Written with PyTorch (test-only) and OpenAI's reference code, independently of keras_clip's
readers: TorchScript archives like OpenAI's releases (float16 matrices, storages relocated to
`cuda:0` by editing the pickle), `torch.save` state dicts (with non-contiguous and offset
tensors), `.safetensors` in OpenAI and Hugging Face `CLIPModel` names, plus damaged and
malicious files. `run_without_torch` runs a script in a Python where `import torch` fails.
"""

import io
import os
import pickle
import pickletools
import struct
import sys
import textwrap
import warnings
import zipfile

import numpy as np

from tests.helpers.background import Job
from tests.helpers.openai_reference import random_reference_model, reference_module

# Small widths and depths, real structure: multi-head attention in both towers, a ViT with a
# patch grid, a ModifiedResNet with strided and downsampling bottlenecks and attention pooling.
SMALL_VIT = dict(embed_dim=32, image_resolution=64, vision_layers=2, vision_width=128, vision_patch_size=16,
                 context_length=77, vocab_size=49408, transformer_width=128, transformer_heads=2, transformer_layers=2)
SMALL_RESNET = dict(embed_dim=32, image_resolution=64, vision_layers=(1, 2, 1, 1), vision_width=8,
                    vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=64,
                    transformer_heads=1, transformer_layers=2)


def release_module(config, state_dict):
    """OpenAI's CLIP holding `state_dict`, converted to float16 as OpenAI released it (LayerNorms stay float32)."""
    import torch

    model_module = reference_module("model")
    model = model_module.CLIP(**config)
    model.load_state_dict({key: torch.from_numpy(np.array(value, np.float32)) for key, value in state_dict.items()})
    model_module.convert_weights(model)
    return model.eval()


def write_torchscript(path, config, state_dict, location="cuda:0"):
    """A traced TorchScript archive like OpenAI's `.pt` releases; storages say `location`."""
    import torch

    model = release_module(config, state_dict)
    resolution = config["image_resolution"]
    example = (torch.zeros(1, 3, resolution, resolution), torch.zeros(1, config["context_length"], dtype=torch.long))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow in nn.MultiheadAttention
        traced = torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(traced, path)
    if location != "cpu":
        set_storage_location(path, location)
    return path


def _replace_strings(pickle_bytes, old, new):
    """The pickle with every unicode string `old` replaced by `new` (lengths re-encoded; memo indices unchanged)."""
    ops = list(pickletools.genops(pickle_bytes))
    output = io.BytesIO()
    for index, (opcode, arg, position) in enumerate(ops):
        end = ops[index + 1][2] if index + 1 < len(ops) else len(pickle_bytes)
        if opcode.name in ("BINUNICODE", "SHORT_BINUNICODE") and arg == old:
            encoded = new.encode("utf-8")
            output.write(b"X" + struct.pack("<I", len(encoded)) + encoded)
        else:
            output.write(pickle_bytes[position:end])
    return output.getvalue()


def rewrite_archive(path, change):
    """Rewrite a zip archive, passing each (name, bytes) through `change` (None drops the entry)."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            data = change(name, data)
            if data is not None:
                archive.writestr(name, data)


def set_storage_location(path, location):
    """Make every storage of a PyTorch archive say `location` (e.g. "cuda:0"), as a GPU-saved file does."""

    def change(name, data):
        if name.endswith(("/data.pkl", "/constants.pkl")):
            return _replace_strings(data, "cpu", location)
        return data

    rewrite_archive(path, change)


def storage_locations(path):
    """The location strings in a PyTorch archive's data.pkl persistent ids."""
    with zipfile.ZipFile(path) as archive:
        name = next(name for name in archive.namelist() if name.endswith("/data.pkl"))
        data = archive.read(name)
    strings = [arg for opcode, arg, _ in pickletools.genops(data) if opcode.name.endswith("UNICODE")]
    return {value for value in strings if value in ("cpu",) or value.startswith("cuda")}


def write_torch_state_dict(path, state_dict, dtype=None, layouts=True):
    """`torch.save` of a state dict; with `layouts`, some tensors are non-contiguous or offset views.

    Every 2-D tensor at an even position is saved as the transpose of a contiguous transposed
    copy (strides (1, rows)); every 1-D tensor at a position divisible by 3 as a slice starting at
    offset 5 of a longer storage. Values are unchanged.
    """
    import torch

    tensors = {}
    for position, (key, value) in enumerate(state_dict.items()):
        tensor = torch.from_numpy(np.array(value))
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        if layouts and tensor.ndim == 2 and position % 2 == 0:
            tensor = tensor.t().contiguous().t()
        elif layouts and tensor.ndim == 1 and position % 3 == 0:
            tensor = torch.cat([torch.zeros(5, dtype=tensor.dtype), tensor, torch.zeros(3, dtype=tensor.dtype)])[5:-3]
        tensors[key] = tensor
    torch.save(tensors, path)
    return path


def openai_to_hf(state_dict):
    """OpenAI's names -> transformers' `CLIPModel` names (ViT only), q/k/v split, projections transposed."""
    result = {"logit_scale": np.asarray(state_dict["logit_scale"])}
    text = "text_model."
    vision = "vision_model."
    context_length = state_dict["positional_embedding"].shape[0]
    positions = state_dict["visual.positional_embedding"].shape[0]
    result[text + "embeddings.token_embedding.weight"] = state_dict["token_embedding.weight"]
    result[text + "embeddings.position_embedding.weight"] = state_dict["positional_embedding"]
    result[text + "embeddings.position_ids"] = np.arange(context_length, dtype=np.int64)[None]
    result[text + "final_layer_norm.weight"] = state_dict["ln_final.weight"]
    result[text + "final_layer_norm.bias"] = state_dict["ln_final.bias"]
    result["text_projection.weight"] = np.ascontiguousarray(state_dict["text_projection"].T)
    result["visual_projection.weight"] = np.ascontiguousarray(state_dict["visual.proj"].T)
    result[vision + "embeddings.class_embedding"] = state_dict["visual.class_embedding"]
    result[vision + "embeddings.patch_embedding.weight"] = state_dict["visual.conv1.weight"]
    result[vision + "embeddings.position_embedding.weight"] = state_dict["visual.positional_embedding"]
    result[vision + "embeddings.position_ids"] = np.arange(positions, dtype=np.int64)[None]
    for part in ("weight", "bias"):
        result[vision + f"pre_layrnorm.{part}"] = state_dict[f"visual.ln_pre.{part}"]
        result[vision + f"post_layernorm.{part}"] = state_dict[f"visual.ln_post.{part}"]
    for openai_prefix, hf_prefix in (("transformer.resblocks.", text), ("visual.transformer.resblocks.", vision)):
        layers = {key[len(openai_prefix):].split(".")[0] for key in state_dict if key.startswith(openai_prefix)}
        for layer in layers:
            source = f"{openai_prefix}{layer}."
            target = f"{hf_prefix}encoder.layers.{layer}."
            for part in ("weight", "bias"):
                q, k, v = np.split(np.asarray(state_dict[f"{source}attn.in_proj_{part}"]), 3)
                result[f"{target}self_attn.q_proj.{part}"] = q
                result[f"{target}self_attn.k_proj.{part}"] = k
                result[f"{target}self_attn.v_proj.{part}"] = v
                result[f"{target}self_attn.out_proj.{part}"] = state_dict[f"{source}attn.out_proj.{part}"]
                result[f"{target}layer_norm1.{part}"] = state_dict[f"{source}ln_1.{part}"]
                result[f"{target}layer_norm2.{part}"] = state_dict[f"{source}ln_2.{part}"]
                result[f"{target}mlp.fc1.{part}"] = state_dict[f"{source}mlp.c_fc.{part}"]
                result[f"{target}mlp.fc2.{part}"] = state_dict[f"{source}mlp.c_proj.{part}"]
    return result


def write_safetensors(path, state_dict, naming="openai"):
    """`.safetensors` written by the `safetensors` package, in OpenAI's or transformers' ("hf") names."""
    from safetensors.numpy import save_file

    if naming == "hf":
        state_dict = openai_to_hf(state_dict)
    save_file({key: np.array(value, order="C") for key, value in state_dict.items()}, path)
    return path


class _RunCommand:
    """Pickles as a call of `function(*args)`: what a malicious checkpoint does."""

    def __init__(self, function, *args):
        self.function = function
        self.args = args

    def __reduce__(self):
        return self.function, self.args


def write_malicious_checkpoint(path, payload):
    """A `torch.save`-layout zip whose data.pkl unpickles `{"weight": payload}` (e.g. `_RunCommand(os.system, ...)`)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weight": payload}, protocol=2))
        archive.writestr("archive/version", "3\n")
    return path


def command_payload(command):
    """A pickle payload that runs a shell command through `os.system` when unpickled."""
    return _RunCommand(os.system, command)


def flip_storage_byte(path, key="0", position=0):
    """Invert the bits of byte `position` of storage record `<prefix>/data/<key>` in place: the zip's CRC-32
    of that record is then wrong, everything else intact (as a bad disk sector or a tampered file leaves it)."""
    with zipfile.ZipFile(path) as archive:
        info = next(info for info in archive.infolist() if info.filename.endswith(f"/data/{key}"))
    with open(path, "r+b") as file:
        file.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", file.read(4))
        file.seek(info.header_offset + 30 + name_length + extra_length + position)
        value = file.read(1)[0]
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([value ^ 0xFF]))
    return path


def truncate_file(path, fraction=0.5):
    with open(path, "rb") as file:
        data = file.read()
    with open(path, "wb") as file:
        file.write(data[: int(len(data) * fraction)])
    return path


TORCH_BLOCKER = textwrap.dedent(
    """
    import sys

    class _BlockTorch:
        # A meta path finder that makes `import torch` fail (sys.modules["torch"] = None would also
        # break scipy, which keras imports, as it probes sys.modules for torch).
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this process ({name})")
            return None

    sys.meta_path.insert(0, _BlockTorch())
    """
)


def run_without_torch(script, timeout=600, env=None):
    """Run a Python script in a subprocess where `import torch` raises ImportError; returns CompletedProcess.

    The script ends by checking that torch was never imported.
    """
    return without_torch_job(script, env).result(timeout)


def without_torch_job(script, env=None):
    """`run_without_torch` as a tests/helpers/background.py Job, to `start()` now and read later."""
    check = "\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", **(env or {}))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environment["PYTHONPATH"] = root + os.pathsep + environment.get("PYTHONPATH", "")
    return Job([sys.executable, "-c", TORCH_BLOCKER + textwrap.dedent(script) + check], env=environment, cwd=root)


def reference_state_dict(config, seed=0):
    """`(float32 reference model, float16-as-released numpy state dict)` of a random model."""
    return random_reference_model(config, seed)
