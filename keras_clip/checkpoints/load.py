"""`keras_clip.load`: a CLIP from a released model's name or from a checkpoint file, without PyTorch.

Names are OpenAI's (`available_models()`): the checkpoint is downloaded once into the cache and
verified (see `download.py`). Files are recognised by their content:
- PyTorch zip archives (`.pt`, `.pth`, `.bin`): `torch.save` state dicts and TorchScript
  archives such as OpenAI's releases, read by `torch_zip.py` (no code from the file is run);
- `.safetensors`;
- in OpenAI's / open_clip's parameter names or in Hugging Face transformers' `CLIPModel` names;
- our own `.keras` models and `.weights.h5` weights.
A converted checkpoint's Keras weights are cached under the checkpoint's SHA256, so loading the
same checkpoint again skips reading and converting it.
"""

import os
import warnings

import numpy as np

from keras_clip.checkpoints import download
from keras_clip.checkpoints.converted_cache import checkpoint_sha256, converted_path, load_converted, save_converted
from keras_clip.checkpoints.deferred_init import build_with_assigned_values
from keras_clip.checkpoints.errors import CheckpointError
from keras_clip.checkpoints.hf_names import hf_to_openai, is_hf_clip
from keras_clip.checkpoints.keras_files import load_model_file, load_weights_file
from keras_clip.checkpoints.openai_state_dict import StateDictError, build_model, openai_weight_map
from keras_clip.checkpoints.safetensors_io import read_safetensors
from keras_clip.checkpoints.stored_array import prefetched
from keras_clip.checkpoints.torch_zip import LEGACY_TORCH_MAGIC, ZIP_MAGIC, read_torch_state_dict

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
# Weights files of a model folder as open_clip and transformers publish them, in order of preference.
FOLDER_CHECKPOINTS = (
    "open_clip_model.safetensors",
    "model.safetensors",
    "open_clip_pytorch_model.bin",
    "pytorch_model.bin",
)


def model_name(name):
    """The Keras model name for a released model, as `create_model` names it."""
    return "clip_" + name.replace("/", "_").replace("@", "_").replace("-", "_").lower()


def checkpoint_format(path):
    """"torch", "safetensors", "keras" or "weights.h5", from the file's first bytes (or its name).

    Raises:
        CheckpointError: neither the content nor the name tells a supported format.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        head = file.read(16)
    if head.startswith(HDF5_MAGIC):
        return "weights.h5"
    if head.startswith(ZIP_MAGIC):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
            if {"config.json", "metadata.json"} <= names:
                return "keras"
        except zipfile.BadZipFile:
            pass  # a damaged zip: named by the reader its suffix selects
        return "keras" if path.endswith(".keras") else "torch"
    if head.startswith(LEGACY_TORCH_MAGIC):
        return "torch"
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < os.path.getsize(path):
        return "safetensors"
    for suffixes, kind in ((TORCH_SUFFIXES, "torch"), ((".safetensors",), "safetensors"), ((".keras",), "keras")):
        if path.endswith(suffixes):
            return kind
    if path.endswith(".h5"):
        return "weights.h5"
    raise CheckpointError(
        f"{path} is not a supported checkpoint: expected a PyTorch zip archive (.pt/.pth/.bin), .safetensors, "
        ".keras or .weights.h5"
    )


def read_openai_state_dict(path, kind=None):
    """A checkpoint file's parameters in OpenAI's names (mapped from transformers' if needed), lazily read.

    Args:
        path: a PyTorch zip archive or a `.safetensors` file.
        kind: "torch" or "safetensors"; found from the content if None.
    """
    kind = kind or checkpoint_format(path)
    if kind == "torch":
        state_dict = read_torch_state_dict(path)
    elif kind == "safetensors":
        state_dict, _ = read_safetensors(path)
    else:
        raise CheckpointError(f"{path} is a {kind} file, not a PyTorch or safetensors checkpoint")
    return hf_to_openai(state_dict) if is_hf_clip(state_dict) else state_dict


def _cached_model(cache_file, name):
    if not os.path.isfile(cache_file):
        return None
    try:
        return load_converted(cache_file, name=name)
    except (CheckpointError, StateDictError, KeyError, ValueError) as error:
        warnings.warn(f"Ignoring the cached conversion {cache_file} ({error}); converting again", stacklevel=3)
        return None


def _convert(path, kind, sha256, root, name):
    """Convert a PyTorch or safetensors checkpoint, caching the result under its SHA256."""
    cache_file = converted_path(root, sha256)
    model = _cached_model(cache_file, name)
    if model is not None:
        return model
    try:
        # build_model assigns in sorted key order: read in that order while it creates the layers.
        with prefetched(read_openai_state_dict(path, kind)) as state_dict:
            model = build_with_assigned_values(lambda: build_model(state_dict, name=name))
    except StateDictError as error:
        raise StateDictError(f"{path}: {error}") from None
    save_converted(model, cache_file, sha256, half_precision=_from_float16(model, state_dict))
    return model


def _from_float16(model, state_dict):
    """The model's weights whose values came from float16 arrays (OpenAI's releases store most so)."""
    return [
        variable
        for key, (variable, _) in openai_weight_map(model).items()
        if variable is not None and key in state_dict and np.dtype(state_dict[key].dtype) == np.float16
    ]


def _checkpoint_in_folder(folder):
    """The weights file of a downloaded model folder (open_clip's or transformers' file names)."""
    for file_name in FOLDER_CHECKPOINTS:
        path = os.path.join(folder, file_name)
        if os.path.isfile(path):
            return path
    raise CheckpointError(f"{folder} is a folder without a checkpoint file; looked for {', '.join(FOLDER_CHECKPOINTS)}")


def load_model(name_or_path, cache_dir=None, progress=True):
    """A `keras_clip.CLIP` from a released model's name or a checkpoint file (see `load`)."""
    root = download.cache_root(cache_dir)
    name_or_path = os.fspath(name_or_path)
    if name_or_path in download.OPENAI_MODELS:
        name = model_name(name_or_path)
        _, sha256 = download.OPENAI_MODELS[name_or_path]
        model = _cached_model(converted_path(root, sha256), name)
        if model is not None:
            return model
        path = download.download_checkpoint(name_or_path, cache_dir=root, progress=progress)
        return _convert(path, "torch", sha256, root, name)
    if os.path.isdir(name_or_path):
        name_or_path = _checkpoint_in_folder(name_or_path)
    if not os.path.isfile(name_or_path):
        raise ValueError(
            f"{name_or_path!r} is neither a released CLIP model ({', '.join(download.OPENAI_MODELS)}) "
            "nor an existing checkpoint file"
        )
    kind = checkpoint_format(name_or_path)
    if kind == "keras":
        return load_model_file(name_or_path)
    if kind == "weights.h5":
        return load_weights_file(name_or_path)
    return _convert(name_or_path, kind, checkpoint_sha256(name_or_path, root), root, "clip")


def load(name_or_path, cache_dir=None):
    """A CLIP model and its image preprocessing, from a released model's name or a checkpoint file.

    Args:
        name_or_path: one of `keras_clip.available_models()` (e.g. "ViT-B/32"; downloaded once,
            SHA256-checked), or the path of a checkpoint: OpenAI's TorchScript `.pt`, a
            `torch.save` state dict (`.pt`/`.pth`/`.bin`), a `.safetensors` file (OpenAI /
            open_clip or Hugging Face `CLIPModel` names), a `.keras` model or a `.weights.h5`
            written by keras_clip; or a folder holding one of `FOLDER_CHECKPOINTS` (as
            open_clip's and transformers' downloads do).
        cache_dir: where downloads and converted weights are cached (default `$KERAS_CLIP_CACHE`,
            else `~/.cache/keras_clip`).

    Returns:
        `(model, preprocess)`: a `keras_clip.CLIP` and `keras_clip.ImagePreprocessor(model.image_resolution)`.

    Raises:
        CheckpointError: unreadable or unsupported file (`UnsafeCheckpointError` if its pickle asks
            for anything but tensors).
        StateDictError: the weights do not describe a CLIP (missing, unexpected or misshapen keys).
        DownloadError / ChecksumError: the download failed or did not match its published SHA256.

    Example:
    >>> model, preprocess = keras_clip.load("ViT-B/32")
    >>> image_features = model.encode_image(preprocess(images))
    """
    from keras_clip.preprocessing import ImagePreprocessor

    model = load_model(name_or_path, cache_dir=cache_dir)
    return model, ImagePreprocessor(model.image_resolution)
