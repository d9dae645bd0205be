"""Converted Keras weights cached by the SHA256 of the checkpoint they came from.

`<cache>/converted/<sha256>.safetensors` holds every weight of the converted CLIP in Keras'
layout and dtype, in `model.weights` order, named by its path in the model; the header's
metadata records the architecture. Loading it builds the model with those values directly:
no random initialisation, no layout conversion, and each weight read once from the file
straight into the memory its TensorFlow variable then uses.
"""

import json
import os

import keras
import numpy as np

from keras_clip.checkpoints.atomic_file import atomic_write
from keras_clip.checkpoints.deferred_init import build_with_assigned_values
from keras_clip.checkpoints.download import file_sha256
from keras_clip.checkpoints.errors import CheckpointError
from keras_clip.checkpoints.keras_files import architecture_config
from keras_clip.checkpoints.safetensors_io import read_safetensors, write_safetensors
from keras_clip.checkpoints.stored_array import DerivedArray, aligned_empty, prefetched
from keras_clip.model import CLIP

FORMAT = "keras_clip.converted_weights.v1"


def _as_tensor(array):
    """The array as a TensorFlow tensor sharing its (64-byte aligned, freshly read) memory: no copy."""
    if keras.backend.backend() != "tensorflow" or array.ndim == 0 or array.ctypes.data % 64:
        return array
    import tensorflow as tf

    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())


def _as_numpy(variable):
    """The variable's current value as a numpy array, sharing TensorFlow's memory where it can."""
    if keras.backend.backend() != "tensorflow":
        return variable.numpy()
    import tensorflow as tf

    return np.asarray(tf.convert_to_tensor(variable.value))


def converted_path(cache_root, sha256):
    return os.path.join(cache_root, "converted", f"{sha256}.safetensors")


def checkpoint_sha256(path, cache_root):
    """SHA256 of a checkpoint file, remembered by its path, size, inode and modification time.

    The file is hashed once; later calls for the unchanged file read `<cache>/converted/hashes.json`.
    """
    status = os.stat(path)
    key = os.path.realpath(path)
    stamp = [status.st_size, status.st_mtime_ns, status.st_ino]
    index_path = os.path.join(cache_root, "converted", "hashes.json")
    try:
        with open(index_path) as file:
            index = json.load(file)
    except (OSError, ValueError):
        index = {}
    entry = index.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return entry["sha256"]
    sha256 = file_sha256(path)
    index[key] = {"stamp": stamp, "sha256": sha256}
    with atomic_write(index_path) as file:
        file.write(json.dumps(index, indent=0).encode())
    return sha256


def _weight_names(model):
    prefix = model.name + "/"
    return [variable.path[len(prefix):] if variable.path.startswith(prefix) else variable.path for variable in model.weights]


def _stored_value(weight, half_precision):
    if not half_precision:
        return _as_numpy(weight)
    return DerivedArray(weight.shape, np.float16, lambda: _as_numpy(weight).astype(np.float16))


def save_converted(model, path, source_sha256, half_precision=()):
    """Write `model`'s weights to `path` (through a temporary file).

    Args:
        model: the converted CLIP.
        path: the cache file.
        source_sha256: the checkpoint's SHA256, recorded in the metadata.
        half_precision: weights whose values are float16 numbers (they came from float16
            arrays): stored as float16, which halves the file and loses nothing.
    """
    names = _weight_names(model)
    if len(set(names)) != len(names):
        raise ValueError("The model's weight paths are not unique; cannot cache its weights by name")
    half_precision = {id(weight) for weight in half_precision}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(architecture_config(model)),
        "source_sha256": source_sha256,
    }
    values = {name: _stored_value(weight, id(weight) in half_precision) for name, weight in zip(names, model.weights)}
    write_safetensors(path, values, metadata)


def _widened(stored):
    """A stored array as float32 in 64-byte aligned memory (float16 cache entries are widened)."""
    array = np.asarray(stored)
    if array.dtype != np.float16:
        return array
    widened = aligned_empty(array.shape, np.float32)
    np.copyto(widened, array)
    return widened


def load_converted(path, **kwargs):
    """The CLIP cached at `path`.

    Raises:
        CheckpointError: the file is unreadable, of another format version, or does not match
            the model this version of keras_clip builds (the caller converts again).
    """
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cache file of format {FORMAT}")
    config = json.loads(metadata["config"])

    def build(arrays):
        model = CLIP(**config, **kwargs)
        names = _weight_names(model)
        if sorted(names) != sorted(arrays):
            raise CheckpointError(f"{path} was written for a different model layout")
        for name, variable in zip(names, model.weights):
            if tuple(arrays[name].shape) != tuple(variable.shape):
                raise CheckpointError(f"{path}: {name} has shape {arrays[name].shape}, the model {tuple(variable.shape)}")
            variable.assign(_as_tensor(np.asarray(arrays.pop(name))))
        return model

    # The file is read in the background while the model's layers are being created.
    with prefetched(tensors, read=_widened) as arrays:
        return build_with_assigned_values(lambda: build(arrays))
