"""Converted Keras weights cached by the SHA256 of the checkpoint they came from.

`<cache>/converted/<sha256>.safetensors` holds every weight of the converted CLIP in Keras'
layout and dtype, in `model.weights` order, named by its path in the model; the header's
metadata records the architecture. Loading it builds the model with those values directly
(no random initialisation, no layout conversion, one weight in memory at a time).
"""

import json
import os

import numpy as np

from keras_clip.checkpoints.deferred_init import build_with_assigned_values
from keras_clip.checkpoints.errors import CheckpointError
from keras_clip.checkpoints.keras_files import architecture_config
from keras_clip.checkpoints.safetensors_io import read_safetensors, write_safetensors
from keras_clip.model import CLIP

FORMAT = "keras_clip.converted_weights.v1"


def converted_path(cache_root, sha256):
    return os.path.join(cache_root, "converted", f"{sha256}.safetensors")


def _weight_names(model):
    prefix = model.name + "/"
    return [variable.path[len(prefix):] if variable.path.startswith(prefix) else variable.path for variable in model.weights]


def save_converted(model, path, source_sha256):
    """Write `model`'s weights to `path` (through a temporary file)."""
    names = _weight_names(model)
    if len(set(names)) != len(names):
        raise ValueError("The model's weight paths are not unique; cannot cache its weights by name")
    metadata = {
        "format": FORMAT,
        "config": json.dumps(architecture_config(model)),
        "source_sha256": source_sha256,
    }
    write_safetensors(path, dict(zip(names, model.weights)), metadata)


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

    def build():
        model = CLIP(**config, **kwargs)
        names = _weight_names(model)
        if names != list(tensors):
            raise CheckpointError(f"{path} was written for a different model layout")
        for name, variable in zip(names, model.weights):
            stored = tensors[name]
            if tuple(stored.shape) != tuple(variable.shape):
                raise CheckpointError(f"{path}: {name} has shape {stored.shape}, the model {tuple(variable.shape)}")
            variable.assign(np.asarray(stored))
        return model

    return build_with_assigned_values(build)
