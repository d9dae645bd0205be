"""Writing a conversion's cache file in a background thread while the model is being filled.

The conversion hands each weight to the writer in Keras' layout and in the dtype the checkpoint
stores it (float16 stays float16, which halves the file and loses nothing), not the model's
dtype, which may be bfloat16 or float16: the cache serves models of every dtype. The file is
written under a temporary name and gets its final one, the checkpoint's SHA256, when it is
complete (`commit`), so the checkpoint can be hashed meanwhile.
"""

import concurrent.futures
import json
import os
import threading

import numpy as np

from keras_clip.checkpoints.converted_cache import FORMAT, converted_path, weight_names
from keras_clip.checkpoints.safetensors_io import write_safetensors
from keras_clip.utils.atomic_files import temporary_name


class ConversionAbandoned(Exception):
    """The conversion failed: the values the writer waits for will not come."""


class _Handed:
    """A weight the conversion has yet to hand over; `np.asarray` waits for it, then forgets it."""

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.future = concurrent.futures.Future()

    def __array__(self, dtype=None, copy=None):
        value, self.future = self.future.result(), None
        array = np.asarray(value)
        if array.shape != self.shape or array.dtype != self.dtype:
            raise ValueError(f"Handed {array.dtype} {array.shape} for a {self.dtype} {self.shape} weight")
        return array if dtype is None else array.astype(dtype, copy=False)


class CacheWriter:
    """Writes the cache file of a model being converted, from the values the conversion hands over.

    Args:
        model: the CLIP being built (its weights exist; their names and shapes make the header).
        dtypes: `[(variable, numpy dtype)]` for every weight of `model`, in the order the values
            will be handed over (the file is written in that order), with the dtype each is
            stored in by the checkpoint.
        cache_root: the cache folder; the file is written to a temporary name in `converted/`.

    Example:
    >>> writer = CacheWriter(model, [(variable, np.float16), ...], cache_root)
    >>> writer.put(variable, value)  # for each weight, in that order
    >>> writer.commit(converted_path(cache_root, sha256))
    """

    def __init__(self, model, dtypes, cache_root):
        names = dict(zip((id(weight) for weight in model.weights), weight_names(model)))
        if len(set(names.values())) != len(model.weights):
            raise ValueError("The model's weight paths are not unique; cannot cache its weights by name")
        self._handed = {id(variable): _Handed(variable.shape, dtype) for variable, dtype in dtypes}
        if set(self._handed) != set(names):
            raise ValueError("The values handed to the cache writer must be those of every weight of the model")
        values = {names[key]: handed for key, handed in self._handed.items()}
        metadata = {"format": FORMAT, "config": json.dumps(model.architecture())}
        self._temporary = temporary_name(converted_path(cache_root, "pending"), ".safetensors")
        self._error = None
        self._thread = threading.Thread(
            target=self._write, args=(values, metadata), name="keras_clip_cache_writer", daemon=True
        )
        self._thread.start()

    def _write(self, values, metadata):
        try:
            # 64-byte aligned: a later load maps the file and its tensors use the mapped memory as it is.
            write_safetensors(self._temporary, values, metadata, alignment=64)
        except BaseException as error:  # given to the caller by commit()
            self._error = error

    def put(self, variable, value):
        """Hand over `variable`'s value (Keras layout, the checkpoint's dtype); the writer only reads it."""
        self._handed.pop(id(variable)).future.set_result(value)

    def commit(self, path):
        """Wait for the file, then move it to `path` (raises what the writing raised)."""
        self._thread.join()
        if self._error is not None:
            self.discard()
            raise self._error
        os.replace(self._temporary, path)

    def discard(self):
        """Stop writing (the conversion failed) and remove the file."""
        for handed in self._handed.values():
            if not handed.future.done():
                handed.future.set_exception(ConversionAbandoned())
        self._thread.join()
        if os.path.exists(self._temporary):
            os.remove(self._temporary)
