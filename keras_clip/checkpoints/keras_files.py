"""Our own files: `.keras` models and `.weights.h5` weights that record their architecture.

Keras' `.weights.h5` holds weights only; `save_weights_with_config` adds the CLIP constructor
arguments as the HDF5 root attribute `keras_clip_config`, so `load_weights_file` can rebuild the
model from the file alone. Both are written through a temporary file and renamed.
"""

import json
import zipfile

import keras

from keras_clip.checkpoints.deferred_init import build_with_assigned_values
from keras_clip.errors import CheckpointError
from keras_clip.models.clip import CLIP
from keras_clip.utils.atomic_files import atomic_path

CONFIG_ATTRIBUTE = "keras_clip_config"
def save_weights_with_config(model, path):
    """`model.save_weights(path)` plus the architecture, written through a temporary file."""
    import h5py

    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"A Keras weights file name must end in .weights.h5; got {path}")
    with atomic_path(path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary)
        with h5py.File(temporary, "a") as file:
            file.attrs[CONFIG_ATTRIBUTE] = json.dumps(model.architecture())
    return str(path)


def save_model_file(model, path):
    """`model.save(path)` (`.keras`), written through a temporary file."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"A Keras model file name must end in .keras; got {path}")
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)
    return str(path)


def load_weights_file(path, **kwargs):
    """A CLIP from a `.weights.h5` written by `save_weights_with_config` (or `keras_clip.load`'s tools).

    Raises:
        CheckpointError: the file does not record its architecture, or is not an HDF5 file.
    """
    import h5py

    try:
        with h5py.File(path, "r") as file:
            recorded = file.attrs.get(CONFIG_ATTRIBUTE)
    except OSError as error:
        raise CheckpointError(f"{path} is not a readable HDF5 weights file ({error})") from None
    if recorded is None:
        raise CheckpointError(
            f"{path} does not record its CLIP architecture (no '{CONFIG_ATTRIBUTE}' attribute); create the model "
            "with keras_clip.create_model(name) or keras_clip.CLIP(...) and call model.load_weights(path)"
        )
    config = json.loads(recorded)

    def build():
        model = CLIP(**config, **kwargs)
        model.load_weights(path)
        return model

    return build_with_assigned_values(build)


def load_model_file(path, dtype=None):
    """A CLIP saved as `.keras` (Keras' safe mode: no arbitrary code is deserialised).

    Args:
        path: the `.keras` file.
        dtype: None for the dtype policy the file records, or a policy name to rebuild the
            model with (its weights cast to the policy's variable dtype).
    """
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is not a loadable .keras file ({error})") from error
    if not isinstance(model, CLIP):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a keras_clip CLIP")
    if dtype is None or dtype == model.dtype_policy.name:
        return model
    return _with_dtype(model, dtype)


def _with_dtype(model, dtype):
    """A copy of a CLIP built with another dtype policy, its weights cast to it."""

    def build():
        copy = CLIP(**model.architecture(), name=model.name, dtype=dtype, remat=model.remat)
        for target, source in zip(copy.weights, model.weights):
            target.assign(keras.ops.cast(source.value, target.dtype))
        return copy

    return build_with_assigned_values(build)
