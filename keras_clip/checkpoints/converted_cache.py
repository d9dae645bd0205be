"""Converted Keras weights cached by the SHA256 of the checkpoint they came from.

`<cache>/converted/<sha256>.safetensors` holds every weight of the converted CLIP in Keras'
layout, in `model.weights` order, named by its path in the model, in the dtype the checkpoint
stored it (float16 stays float16; bfloat16 is widened to float32), whatever dtype the model was
built with; the header's metadata records the architecture. Loading it builds the model with
those values directly, in any dtype: no random initialisation, no layout conversion, and each
weight read once from the file, then cast by TensorFlow into its variable's memory.

A conversion writes the file in a background thread (`CacheWriter`) while it fills the model.
"""

import json
import os
import threading

import numpy as np

from keras_clip.checkpoints.atomic_file import atomic_write, temporary_name
from keras_clip.checkpoints.deferred_init import build_with_assigned_values
from keras_clip.checkpoints.download import file_sha256
from keras_clip.checkpoints.errors import CheckpointError
from keras_clip.checkpoints.keras_files import architecture_config
from keras_clip.checkpoints.openai_state_dict import keras_value, openai_weight_map, same_layout
from keras_clip.checkpoints.safetensors_io import read_safetensors, write_safetensors
from keras_clip.checkpoints.stored_array import DerivedArray, prefetched
from keras_clip.model import CLIP

FORMAT = "keras_clip.converted_weights.v1"


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


def _weight_names(model):
    prefix = model.name + "/"
    return [variable.path[len(prefix):] if variable.path.startswith(prefix) else variable.path for variable in model.weights]


def _source_values(model, state_dict):
    """`{variable id: array-like}`: each weight's value in the checkpoint, Keras layout, stored dtype."""
    values = {}
    for key, (variable, convert) in openai_weight_map(model).items():
        if variable is not None:
            value = state_dict[key]
            dtype = np.dtype(value.dtype)
            values[id(variable)] = DerivedArray(
                variable.shape, dtype, lambda value=value, convert=convert, dtype=dtype: keras_value(value, convert, dtype)
            )
    return values


class CacheWriter:
    """Writes a converted model's cache file in a background thread, from the checkpoint's arrays.

    The values are read from the state dict again, in its dtypes (float16 arrays stay float16,
    which halves the file and loses nothing), not from the model, which may hold them rounded
    to bfloat16 or float16, or not hold them yet: the writer can start as soon as the model's
    weights exist (their names and shapes make the file's header) and run while it is filled.
    The file gets its name, the checkpoint's SHA256, when it is complete (`commit`), so the
    checkpoint can be hashed meanwhile.

    Args:
        model: the CLIP being built from `state_dict` (`build_model`'s architecture and names).
        state_dict: the checkpoint's arrays in OpenAI's names (array-likes read on demand; not
            ones another thread consumes, such as `prefetched` ones).
        cache_root: the cache folder; the file is written to a temporary name in its `converted/`.

    Example:
    >>> writer = CacheWriter(model, state_dict, cache_root)
    >>> load_openai_state_dict(model, prefetched_state_dict)
    >>> writer.commit(converted_path(cache_root, sha256))
    """

    def __init__(self, model, state_dict, cache_root):
        names = _weight_names(model)
        if len(set(names)) != len(names):
            raise ValueError("The model's weight paths are not unique; cannot cache its weights by name")
        sources = _source_values(model, state_dict)
        missing = [name for name, weight in zip(names, model.weights) if id(weight) not in sources]
        if missing:
            raise ValueError(f"No checkpoint value for the model's weights {missing[:5]}; cannot cache them")
        values = {name: sources[id(weight)] for name, weight in zip(names, model.weights)}
        metadata = {"format": FORMAT, "config": json.dumps(architecture_config(model))}
        self._temporary = temporary_name(converted_path(cache_root, "pending"), ".safetensors")
        self._error = None
        self._thread = threading.Thread(
            target=self._write, args=(values, metadata), name="keras_clip_cache_writer", daemon=True
        )
        self._thread.start()

    def _write(self, values, metadata):
        try:
            write_safetensors(self._temporary, values, metadata)
        except BaseException as error:  # handed to the caller by commit()
            self._error = error

    def commit(self, path):
        """Wait for the file, then move it to `path` (raises what the writing raised)."""
        self._thread.join()
        if self._error is not None:
            self.discard()
            raise self._error
        os.replace(self._temporary, path)

    def discard(self):
        """Wait for the writer and remove its file (the conversion failed)."""
        self._thread.join()
        if os.path.exists(self._temporary):
            os.remove(self._temporary)


def save_converted(model, state_dict, cache_root, sha256):
    """Write the cache file of `model`, built from `state_dict`, and wait for it (see `CacheWriter`)."""
    CacheWriter(model, state_dict, cache_root).commit(converted_path(cache_root, sha256))


def load_converted(path, **kwargs):
    """The CLIP cached at `path`.

    Args:
        path: the cache file.
        **kwargs: extra `CLIP` constructor arguments, e.g. `name`, `dtype`.

    Raises:
        CheckpointError: the file is unreadable, of another format version, or does not match
            the model this version of keras_clip builds (the caller converts again).
    """
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT or "config" not in metadata:
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
            variable.assign(keras_value(arrays.pop(name), same_layout, variable.dtype))
        return model

    # The file is read in the background while the model's layers are being created.
    with prefetched(tensors) as arrays:
        return build_with_assigned_values(lambda: build(arrays))
