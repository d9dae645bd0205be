"""`keras_clip.load`: a CLIP from a released model's name or from a checkpoint file, without PyTorch.

Names are those of `keras_clip.models.presets` (OpenAI's, as `available_models()`): the checkpoint
is downloaded once into the cache and verified (see `download.py`). Files are recognised by their content:
- PyTorch zip archives (`.pt`, `.pth`, `.bin`): `torch.save` state dicts and TorchScript
  archives such as OpenAI's releases, read by `torch_zip.py` (no code from the file is run);
- `.safetensors`;
- in OpenAI's / open_clip's parameter names or in Hugging Face transformers' `CLIPModel` names;
- our own `.keras` models and `.weights.h5` weights.
A converted checkpoint's Keras weights are cached under the checkpoint's SHA256, so loading the
same checkpoint again skips reading and converting it. `dtype="bfloat16"` (or another of
`MODEL_DTYPES`) builds the model in that precision; the cache keeps the checkpoint's own.
"""

import concurrent.futures
import dataclasses
import json
import os
import warnings

from keras_clip.checkpoints import download
from keras_clip.checkpoints.architecture import same_architecture, with_architecture
from keras_clip.checkpoints.cache_writer import CacheWriter
from keras_clip.checkpoints.converted_cache import checkpoint_sha256, converted_path, load_converted, remembered_sha256
from keras_clip.checkpoints.deferred_init import build_with_assigned_values
from keras_clip.checkpoints.dtypes import model_dtype
from keras_clip.checkpoints.hub import download_from_hub, hub_sha256
from keras_clip.checkpoints.hf_names import hf_to_openai, is_hf_clip
from keras_clip.checkpoints.keras_files import load_model_file, load_weights_file
from keras_clip.checkpoints.openai_state_dict import assign_state_dict, assignments, model_for_state_dict
from keras_clip.checkpoints.publisher_configs import (
    open_clip_architecture,
    open_clip_preprocessing,
    transformers_architecture,
    transformers_preprocessing,
)
from keras_clip.checkpoints.safetensors_io import read_safetensors
from keras_clip.checkpoints.stored_array import prefetched
from keras_clip.checkpoints.torch_zip import LEGACY_TORCH_MAGIC, ZIP_MAGIC, read_torch_state_dict
from keras_clip.errors import CheckpointError, ChecksumError, StateDictError
from keras_clip.image.preprocessing import ImagePreprocessor
from keras_clip.image.settings import DEFAULT_MAX_PIXELS, Preprocessing
from keras_clip.models.presets import (
    HUB_FILES,
    PRESETS,
    architecture_by_name,
    available_models,
    find_preset,
    get_preset,
    model_name,
    preset_by_sha256,
)
from keras_clip.utils.atomic_files import remove_stale_temporaries

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
# Weights files of a model folder as open_clip and transformers publish them, in order of preference,
# each with the config file that describes it.
FOLDER_CHECKPOINTS = {
    "open_clip_model.safetensors": "open_clip_config.json",
    "model.safetensors": "config.json",
    "open_clip_pytorch_model.bin": "open_clip_config.json",
    "pytorch_model.bin": "config.json",
}


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


def _cached_model(cache_file, name, dtype, architecture=None):
    if not os.path.isfile(cache_file):
        return None
    try:
        return load_converted(cache_file, architecture, name=name, dtype=dtype)
    except StateDictError:  # the architecture asked for does not fit these weights: not the cache's fault
        raise
    except (CheckpointError, KeyError, ValueError) as error:
        warnings.warn(f"Ignoring the cached conversion {cache_file} ({error}); converting again", stacklevel=3)
        return None


def _convert(path, kind, root, name, dtype, sha256=None, architecture=None, verify=False):
    """Convert a PyTorch or safetensors checkpoint, caching the result under its SHA256.

    With the SHA256 known, the cache is consulted first. Otherwise (a file not seen before) the
    file is converted while it is hashed in the background: hashing first to look for a cached
    conversion would take about as long as converting. The cache file is written in the
    background too, from the values the conversion hands over, and named once the hash is known.
    With `verify`, the file is hashed while it is converted and must have the given `sha256`.

    Raises:
        ChecksumError: with `verify`, the file's SHA256 is not `sha256` (nothing is cached).
    """
    if sha256 is not None:
        model = _cached_model(converted_path(root, sha256), name, dtype, architecture)
        if model is not None:
            return model
    writer = None
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="keras_clip_hash") as hasher:
        hashing = hasher.submit(checkpoint_sha256, path, root) if sha256 is None or verify else None
        source = read_openai_state_dict(path, kind)

        def build(state_dict):
            nonlocal writer
            model = model_for_state_dict(state_dict, dtype=dtype, architecture=architecture, name=name)
            planned = assignments(model, state_dict)
            writer = CacheWriter(model, [(variable, state_dict[key].dtype) for key, variable, _ in planned], root)
            assign_state_dict(planned, state_dict, on_value=writer.put)
            return model

        try:
            # Arrays are read in the order assign_state_dict assigns them, while the layers are created.
            with prefetched(source) as state_dict:
                model = build_with_assigned_values(lambda: build(state_dict))
            if hashing is not None and sha256 is not None and hashing.result() != sha256:
                raise ChecksumError(f"{path} has SHA256 {hashing.result()}, not the published {sha256}; not used")
            sha256 = sha256 or hashing.result()
        except BaseException as error:
            if writer is not None:
                writer.discard()
            if isinstance(error, StateDictError):
                raise StateDictError(f"{path}: {error}") from None
            raise
        writer.commit(converted_path(root, sha256))
    return model


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable JSON config ({error})") from None


def model_folder(folder):
    """(weights file, `CLIP` arguments or None, `Preprocessing` or None) of a downloaded model folder.

    The weights are open_clip's or transformers' files (`FOLDER_CHECKPOINTS`); their config, when the
    folder has it, gives the architecture the weights cannot tell and the image preprocessing.

    Raises:
        CheckpointError: no weights file, or a config keras_clip cannot honour (the value named).
    """
    for file_name, config_name in FOLDER_CHECKPOINTS.items():
        path = os.path.join(folder, file_name)
        if os.path.isfile(path):
            break
    else:
        expected = ", ".join(FOLDER_CHECKPOINTS)
        raise CheckpointError(f"{folder} is a folder without a checkpoint file; looked for {expected}")
    config_path = os.path.join(folder, config_name)
    if not os.path.isfile(config_path):
        return path, None, None
    config = _read_json(config_path)
    if config_name == "open_clip_config.json":
        if "model_cfg" not in config:
            raise CheckpointError(f"{config_path} has no model_cfg")
        architecture = open_clip_architecture(config["model_cfg"], config_path)
        preprocessing = open_clip_preprocessing(config.get("preprocess_cfg"), architecture["image_resolution"],
                                                config_path)  # fmt: skip
    else:
        architecture = transformers_architecture(config, config_path)
        processor_path = os.path.join(folder, "preprocessor_config.json")
        processor = _read_json(processor_path) if os.path.isfile(processor_path) else {}
        preprocessing = transformers_preprocessing(processor, architecture["image_resolution"], processor_path)
    return path, architecture, preprocessing


HUB_PREFIX = "hf-hub:"


def _load_preset(preset, root, verbose, dtype):
    name = model_name(preset.name)
    architecture = dict(preset.architecture)
    checkpoint = preset.checkpoint
    if checkpoint.hub_repo is None:  # OpenAI's URL: the download itself checks the published SHA256
        model = _cached_model(converted_path(root, checkpoint.sha256), name, dtype, architecture)
        if model is None:
            path = download.download_checkpoint(preset.name, cache_dir=root, verbose=verbose)
            model = _convert(path, "torch", root, name, dtype, checkpoint.sha256, architecture)
        return model
    # open_clip's files are tried in HUB_FILES' order; other publishers' (SigLIP's model.safetensors) by name.
    files = HUB_FILES if checkpoint.file_name in HUB_FILES else (checkpoint.file_name,)
    path = download_from_hub(checkpoint.hub_repo, files, verbose=verbose)
    return _convert_hub_file(path, root, name, dtype, architecture)


def _convert_hub_file(path, root, name, dtype, architecture=None):
    """A Hub file converted (or taken from the cache), checked against the SHA256 the Hub reported."""
    sha256 = hub_sha256(path)
    return _convert(path, checkpoint_format(path), root, name, dtype, sha256, architecture, verify=sha256 is not None)


def _load_hub_repository(repo_id, root, verbose, dtype):
    """A model from any Hub repository in open_clip's layout (weights and open_clip_config.json)."""
    path = download_from_hub(repo_id, HUB_FILES, verbose=verbose)
    download_from_hub(repo_id, ("open_clip_config.json",), verbose=verbose)
    path, architecture, preprocessing = model_folder(os.path.dirname(path))
    return _convert_hub_file(path, root, model_name(repo_id), dtype, architecture), preprocessing


def load_with_preprocessing(name_or_path, cache_dir=None, verbose=True, dtype=None, pretrained=None,
                            architecture=None, remat=None):  # fmt: skip
    """(`keras_clip.CLIP`, its `Preprocessing`) from a released model's name or a checkpoint (see `load`);
    the model's `preprocessing` is set to it."""
    model, preprocessing = _model_and_preprocessing(name_or_path, cache_dir, verbose, dtype, pretrained, architecture)
    model.preprocessing = preprocessing
    if remat is not None:  # a training option, not part of the weights: set on the loaded model
        model.remat = remat
    return model, preprocessing


def _model_and_preprocessing(name_or_path, cache_dir, verbose, dtype, pretrained, architecture):
    dtype = model_dtype(dtype)
    root = download.cache_root(cache_dir)
    for folder in (root, os.path.dirname(converted_path(root, ""))):  # files of loads killed while writing
        remove_stale_temporaries(folder)
    name_or_path = os.fspath(name_or_path)
    preset = find_preset(name_or_path, pretrained)
    if preset is None and name_or_path.startswith(HUB_PREFIX):
        repo_id = name_or_path[len(HUB_PREFIX):]
        preset = next((p for p in PRESETS.values() if p.checkpoint.hub_repo == repo_id), None)
        if preset is None:
            return _load_hub_repository(repo_id, root, verbose, dtype)
    if preset is not None:
        return _load_preset(preset, root, verbose, dtype), preset.preprocessing
    if pretrained is not None:
        get_preset(name_or_path, pretrained)  # raises, naming the unknown tag
    architecture = architecture_arguments(architecture)
    preprocessing = None
    if os.path.isdir(name_or_path):
        name_or_path, folder_architecture, preprocessing = model_folder(name_or_path)
        architecture = dict(folder_architecture or {}, **(architecture or {})) or None
    if not os.path.isfile(name_or_path):
        raise ValueError(
            f"{name_or_path!r} is neither a released CLIP model (keras_clip.list_pretrained(); OpenAI's: "
            f"{', '.join(available_models())}), a Hugging Face Hub repository ('hf-hub:<owner>/<name>') "
            "nor an existing checkpoint file or folder"
        )
    kind = checkpoint_format(name_or_path)
    if kind == "keras":
        model = load_model_file(name_or_path, dtype=dtype)
    elif kind == "weights.h5":
        model = load_weights_file(name_or_path, dtype=dtype)
    else:
        sha256 = remembered_sha256(name_or_path, root)
        known = None if architecture is not None else preset_by_sha256(sha256)
        model = _convert(name_or_path, kind, root, "clip", dtype, sha256, architecture or _architecture_of(known))
        if architecture is None and known is None:
            # The file's SHA256 is known once it is converted: a release's file gets the release's architecture.
            sha256 = remembered_sha256(name_or_path, root)
            known = preset_by_sha256(sha256)
            if known is None:
                warnings.warn(UNKNOWN_ARCHITECTURE.format(path=name_or_path), stacklevel=3)
            elif not same_architecture(with_architecture(model.architecture(), known.architecture),
                                       model.architecture()):  # fmt: skip
                model = _cached_model(converted_path(root, sha256), "clip", dtype, _architecture_of(known))
        preprocessing = known.preprocessing if known is not None else preprocessing
    return model, preprocessing or Preprocessing(model.image_resolution)


UNKNOWN_ARCHITECTURE = (
    "{path} has no config beside it and is not a released checkpoint keras_clip knows: its activation and "
    "attention heads cannot be read from its weights, so OpenAI's are used (QuickGELU, 64-wide heads). For "
    "other checkpoints pass them, e.g. keras_clip.load(path, architecture='ViT-H-14') (open_clip's names; "
    "'-quickgelu' for QuickGELU) or architecture={{'activation': 'gelu', 'vision_heads': 16}}, or load the "
    "folder that holds the checkpoint with its open_clip_config.json or config.json."
)


def _architecture_of(preset):
    return None if preset is None else dict(preset.architecture)


def architecture_arguments(architecture):
    """`architecture=` as `CLIP` arguments: a dict as given, or open_clip's architecture name (see `load`)."""
    if architecture is None or isinstance(architecture, dict):
        return architecture
    return dict(architecture_by_name(architecture))


def load_model(name_or_path, cache_dir=None, verbose=True, dtype=None, pretrained=None, architecture=None,
               remat=None):  # fmt: skip
    """A `keras_clip.CLIP` from a released model's name or a checkpoint file (see `load`)."""
    return load_with_preprocessing(name_or_path, cache_dir, verbose, dtype, pretrained, architecture, remat)[0]


def load(name_or_path, cache_dir=None, dtype=None, verbose=True, pretrained=None, architecture=None,
         max_pixels=DEFAULT_MAX_PIXELS, remat=None):  # fmt: skip
    """A CLIP model and its image preprocessing, from a released model's name or a checkpoint.

    Args:
        name_or_path: one of
            - a released model: OpenAI's name (`keras_clip.available_models()`, e.g. "ViT-B/32"), or
              open_clip's "<architecture>/<tag>" (`keras_clip.list_pretrained()`, e.g.
              "ViT-B-32/laion2b_s34b_b79k"), downloaded once and SHA256-checked;
            - "hf-hub:<owner>/<name>": a Hugging Face Hub repository in open_clip's layout (weights and
              open_clip_config.json), through `huggingface_hub` and its cache;
            - a folder as open_clip or transformers publish one: the weights with their config
              (`open_clip_config.json`, or transformers' `config.json` and `preprocessor_config.json`),
              whose activation, heads, MLP widths, LayerNorm epsilon and preprocessing are used;
            - a checkpoint file: OpenAI's TorchScript `.pt`, a `torch.save` state dict, a `.safetensors`
              file (OpenAI / open_clip or transformers `CLIPModel` names), or keras_clip's `.keras` /
              `.weights.h5`. A file without a config gets OpenAI's activation and heads (with a warning,
              unless its SHA256 is a release's): pass `architecture` for other checkpoints.
        cache_dir: where OpenAI's downloads and converted weights are cached (default `$KERAS_CLIP_CACHE`,
            else `~/.cache/keras_clip`); Hub files stay in the Hugging Face cache.
        dtype: None (Keras' default policy: float32, or what a `.keras` file records) or one of
            "float32", "bfloat16", "float16", "mixed_bfloat16", "mixed_float16". "bfloat16" /
            "float16" store the weights in that dtype (half the memory; for inference: the
            weights, logit_scale included, are rounded to it); `encode_image`, `encode_text`
            and the logits still return float32. The mixed policies keep float32 weights.
        verbose: show progress bars while downloading.
        pretrained: open_clip's tag, with an architecture name: `load("ViT-B-32", pretrained="laion2b_s34b_b79k")`.
        architecture: for a checkpoint without a config: open_clip's architecture name ("ViT-H-14";
            "ViT-H-14-quickgelu" for QuickGELU) or a dict of `CLIP` arguments the weights cannot tell.
        max_pixels: encoded images of more pixels (width x height, read from their header) are refused
            before they are decoded, by the returned preprocessor and the model's `preprocessing` (used by
            `embed_images`, evaluation and SavedModel exports); None: no limit. Default: PIL's 178,956,970.
        remat: True to rematerialise every residual block in training (less memory for big batches; see
            `keras_clip.CLIP`), False to not; None keeps what a `.keras` file recorded (else False).

    Returns:
        `(model, preprocess)`: a `keras_clip.CLIP` and the `keras_clip.ImagePreprocessor` the checkpoint
        was trained with (OpenAI's for OpenAI's checkpoints and files without a config).

    Raises:
        ValueError: an unsupported `dtype`, or neither a model name nor an existing file.
        CheckpointError: unreadable or unsupported file or config (`UnsafeCheckpointError` if its pickle
            asks for anything but tensors).
        StateDictError: the weights do not describe a CLIP (missing, unexpected or misshapen keys).
        DownloadError / ChecksumError: the download failed or did not match its published SHA256.

    Example:
    >>> model, preprocess = keras_clip.load("ViT-B/32")
    >>> image_features = model.encode_image(preprocess(photos))
    >>> half_model, _ = keras_clip.load("ViT-B/32", dtype="bfloat16")
    """
    model, preprocessing = load_with_preprocessing(name_or_path, cache_dir, verbose, dtype, pretrained, architecture,
                                                   remat)  # fmt: skip
    model.preprocessing = preprocessing = dataclasses.replace(preprocessing, max_pixels=max_pixels)
    return model, ImagePreprocessor.from_settings(preprocessing)
