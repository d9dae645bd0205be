"""Converted Keras weights cached by the SHA256 of the checkpoint they came from.

`<cache>/converted/<sha256>.safetensors` holds every weight of the converted CLIP in Keras'
layout, named by its path in the model, in the dtype the checkpoint stored it (float16 stays
float16; bfloat16 is widened to float32), whatever dtype the model was built with; the header's
metadata records the architecture. Loading it builds the model with those values directly, in
any dtype: no random initialisation, no layout conversion, and each weight read once from the
file, then cast by TensorFlow into its variable's memory.

A conversion writes the file in a background thread while it fills the model (`cache_writer.py`).
"""

import json
import os

from keras_clip.checkpoints.architecture import with_architecture
from keras_clip.checkpoints.deferred_init import build_with_assigned_values
from keras_clip.checkpoints.download import file_sha256
from keras_clip.checkpoints.openai_state_dict import keras_value, same_layout
from keras_clip.checkpoints.safetensors_io import read_safetensors
from keras_clip.checkpoints.stored_array import prefetched
from keras_clip.errors import CheckpointError
from keras_clip.models.clip import CLIP
from keras_clip.utils.atomic_files import atomic_write

FORMAT = "keras_clip.converted_weights.v2"  # v2: architecture options (activation, heads, MLP width, ...)


def converted_path(cache_root, sha256):
    return os.path.join(cache_root, "converted", f"{sha256}.safetensors")


def _hash_index(cache_root):
    path = os.path.join(cache_root, "converted", "hashes.json")
    try:
        with open(path) as file:
            index = json.load(file)
    except (OSError, ValueError):
        index = {}
    return path, index if isinstance(index, dict) else {}


def _stamp(path):
    status = os.stat(path)
    return os.path.realpath(path), [status.st_size, status.st_mtime_ns, status.st_ino]


def remembered_sha256(path, cache_root):
    """The SHA256 `checkpoint_sha256` recorded for this unchanged file, or None."""
    key, stamp = _stamp(path)
    entry = _hash_index(cache_root)[1].get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return entry["sha256"]
    return None


def checkpoint_sha256(path, cache_root):
    """SHA256 of a checkpoint file, remembered by its path, size, inode and modification time.

    The file is hashed once; later calls for the unchanged file read `<cache>/converted/hashes.json`.
    """
    sha256 = remembered_sha256(path, cache_root)
    if sha256 is not None:
        return sha256
    key, stamp = _stamp(path)
    sha256 = file_sha256(path)
    index_path, index = _hash_index(cache_root)  # read again: another load may have added entries
    index[key] = {"stamp": stamp, "sha256": sha256}
    with atomic_write(index_path) as file:
        file.write(json.dumps(index, indent=0).encode())
    return sha256


def weight_names(model):
    """The paths of `model.weights` without the model's name: the cache file's tensor names."""
    prefix = model.name + "/"
    paths = [variable.path for variable in model.weights]
    return [path[len(prefix):] if path.startswith(prefix) else path for path in paths]


def load_converted(path, architecture=None, **kwargs):
    """The CLIP cached at `path`.

    Args:
        path: the cache file.
        architecture: `CLIP` arguments that replace the cached ones (e.g. a config's activation or heads:
            they change no weight's shape).
        **kwargs: extra `CLIP` constructor arguments, e.g. `name`, `dtype`.

    Raises:
        CheckpointError: the file is unreadable, of another format version, or does not match
            the model this version of keras_clip builds (the caller converts again).
    """
    # Mapped: the model's variables use the page-cached file's pages (copied only where written to).
    tensors, metadata = read_safetensors(path, mapped=True)
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise CheckpointError(f"{path} is not a cache file of format {FORMAT}")
    config = with_architecture(json.loads(metadata["config"]), architecture)

    def build(arrays):
        model = CLIP(**config, **kwargs)
        names = weight_names(model)
        if sorted(names) != sorted(arrays):
            raise CheckpointError(f"{path} was written for a different model layout")
        for name, variable in zip(names, model.weights):
            if tuple(arrays[name].shape) != tuple(variable.shape):
                raise CheckpointError(
                    f"{path}: {name} has shape {arrays[name].shape}, the model {tuple(variable.shape)}"
                )
            variable.assign(keras_value(arrays.pop(name), same_layout, variable.dtype))
        return model

    # The file is read in the background while the model's layers are being created.
    with prefetched(tensors) as arrays:
        return build_with_assigned_values(lambda: build(arrays))
