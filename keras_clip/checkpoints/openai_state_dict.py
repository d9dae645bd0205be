"""OpenAI's CLIP parameter names (those of `clip/model.py`) mapped onto our Keras weights.

`build_model(state_dict)` infers the architecture from the shapes, as OpenAI's `build_model`
does, builds a CLIP and assigns every array to its weight, converting PyTorch layouts
(Linear [out, in], Conv2d OIHW) to Keras' ([in, out], HWIO).

Each array is converted by TensorFlow in one step (transposed at its narrower dtype, cast once)
from the memory it was read into: a weight is copied once on its way into its variable.
"""

import numpy as np
import tensorflow as tf

from keras_clip.checkpoints.architecture import METADATA_KEYS, check_metadata, infer_architecture, with_architecture
from keras_clip.checkpoints.dtypes import model_dtype
from keras_clip.checkpoints.stored_array import reads_into_new_memory
from keras_clip.errors import CheckpointError, StateDictError
from keras_clip.models.clip import CLIP


def _linear(weight):
    return tf.transpose(weight)


def _conv(weight):
    return tf.transpose(weight, (2, 3, 1, 0))


def same_layout(array):
    return array


def _scalar(array):
    return tf.reshape(array, ())


def _vector(array):
    return tf.reshape(array, (-1,))


def _dense(prefix, dense):
    return {f"{prefix}.weight": (dense.kernel, _linear), f"{prefix}.bias": (dense.bias, same_layout)}


def _layer_norm(prefix, norm):
    return {f"{prefix}.weight": (norm.gamma, same_layout), f"{prefix}.bias": (norm.beta, same_layout)}


def _batch_norm(prefix, norm):
    return {
        f"{prefix}.weight": (norm.gamma, same_layout),
        f"{prefix}.bias": (norm.beta, same_layout),
        f"{prefix}.running_mean": (norm.moving_mean, same_layout),
        f"{prefix}.running_var": (norm.moving_variance, same_layout),
        f"{prefix}.num_batches_tracked": (None, None),  # a training counter Keras does not keep
    }


def _conv2d(prefix, conv):
    return {f"{prefix}.weight": (conv.kernel, _conv)}


def _transformer(prefix, transformer):
    weights = {}
    for index, block in enumerate(transformer.resblocks):
        name = f"{prefix}.resblocks.{index}"
        weights[f"{name}.attn.in_proj_weight"] = (block.attn.in_proj.kernel, _linear)
        weights[f"{name}.attn.in_proj_bias"] = (block.attn.in_proj.bias, same_layout)
        weights.update(_dense(f"{name}.attn.out_proj", block.attn.out_proj))
        weights.update(_layer_norm(f"{name}.ln_1", block.ln_1))
        weights.update(_layer_norm(f"{name}.ln_2", block.ln_2))
        weights.update(_dense(f"{name}.mlp.c_fc", block.c_fc))
        weights.update(_dense(f"{name}.mlp.c_proj", block.c_proj))
    return weights


def _vision_transformer(visual):
    weights = {"visual.positional_embedding": (visual.positional_embedding, same_layout)}
    weights.update(_conv2d("visual.conv1", visual.conv1))
    weights.update(_layer_norm("visual.ln_post", visual.ln_post))
    weights.update(_transformer("visual.transformer", visual.transformer))
    if visual.class_token:
        weights["visual.class_embedding"] = (visual.class_embedding, same_layout)
        weights["visual.proj"] = (visual.proj, same_layout)
        weights.update(_layer_norm("visual.ln_pre", visual.ln_pre))
        return weights
    pool = visual.attn_pool
    weights["visual.conv1.bias"] = (visual.conv1.bias, same_layout)
    weights["visual.attn_pool.probe"] = (pool.probe, _vector)
    weights["visual.attn_pool.in_proj_weight"] = (pool.in_proj.kernel, _linear)
    weights["visual.attn_pool.in_proj_bias"] = (pool.in_proj.bias, same_layout)
    weights.update(_dense("visual.attn_pool.out_proj", pool.out_proj))
    weights.update(_layer_norm("visual.attn_pool.ln", pool.ln))
    weights.update(_dense("visual.attn_pool.mlp.c_fc", pool.c_fc))
    weights.update(_dense("visual.attn_pool.mlp.c_proj", pool.c_proj))
    return weights


def _modified_resnet(visual):
    weights = {}
    for index in (1, 2, 3):
        weights.update(_conv2d(f"visual.conv{index}", getattr(visual, f"conv{index}")))
        weights.update(_batch_norm(f"visual.bn{index}", getattr(visual, f"bn{index}")))
    for block in visual.blocks:
        stage, index = block.name[len("layer"):].split("_")
        prefix = f"visual.layer{stage}.{index}"
        for part in (1, 2, 3):
            weights.update(_conv2d(f"{prefix}.conv{part}", getattr(block, f"conv{part}")))
            weights.update(_batch_norm(f"{prefix}.bn{part}", getattr(block, f"bn{part}")))
        if block.has_downsample:
            weights.update(_conv2d(f"{prefix}.downsample.0", block.downsample_conv))
            weights.update(_batch_norm(f"{prefix}.downsample.1", block.downsample_bn))
    pool = visual.attnpool
    weights["visual.attnpool.positional_embedding"] = (pool.positional_embedding, same_layout)
    for name in ("q_proj", "k_proj", "v_proj", "c_proj"):
        weights.update(_dense(f"visual.attnpool.{name}", getattr(pool, name)))
    return weights


def openai_weight_map(model):
    """`{openai_key: (keras_variable or None, layout_conversion)}` for every parameter of `model`.

    A None variable marks a key that is accepted and ignored (BatchNorm's `num_batches_tracked`).
    """
    weights = _modified_resnet(model.visual) if model.is_resnet else _vision_transformer(model.visual)
    text = model.text
    weights.update(
        {
            "positional_embedding": (text.positional_embedding, same_layout),
            "text_projection": (text.text_projection, same_layout),
            "token_embedding.weight": (text.token_embedding.embeddings, same_layout),
            "logit_scale": (model.logit_scale, _scalar),
        }
    )
    if text.projection_bias:
        weights["text_projection_bias"] = (text.text_projection_bias, same_layout)
    if model.logit_bias is not None:
        weights["logit_bias"] = (model.logit_bias, _scalar)
    weights.update(_layer_norm("ln_final", text.ln_final))
    weights.update(_transformer("transformer", text.transformer))
    return weights


_DLPACK_DTYPES = tuple(np.dtype(name) for name in ("float16", "float32", "float64"))


def as_tensor(value):
    """A TensorFlow tensor of a state dict's value: the memory of a freshly read array, else a copy.

    Arrays read from a file by our checkpoint readers (`StoredArray`s) are in new 64-byte aligned
    buffers that the tensor can use as they are; other arrays (e.g. a caller's numpy arrays,
    which must not change with the model) are copied.
    """
    array = np.asarray(value)
    if (
        reads_into_new_memory(value)
        and array.ndim
        and array.dtype in _DLPACK_DTYPES
        and array.flags.c_contiguous
        and array.ctypes.data % 64 == 0
    ):
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.convert_to_tensor(array)


def keras_value(value, convert, dtype):
    """A state dict's value in Keras layout and `dtype`: transposed at the narrower dtype, cast once."""
    tensor = as_tensor(value)
    dtype = tf.as_dtype(dtype)
    if tensor.dtype.size <= dtype.size:
        return tf.cast(convert(tensor), dtype)
    return convert(tf.cast(tensor, dtype))


def assignments(model, state_dict):
    """`[(key, variable, layout conversion)]` in assignment order, if the state dict fits `model`.

    Raises:
        StateDictError: keys are missing or unexpected (the first ten of each named).
    """
    weight_map = openai_weight_map(model)
    optional = {key for key, (variable, _) in weight_map.items() if variable is None}
    provided = set(state_dict) - set(METADATA_KEYS)
    missing = sorted(set(weight_map) - optional - provided)
    unexpected = sorted(provided - set(weight_map))
    if missing or unexpected:
        details = []
        if missing:
            details.append(f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        if unexpected:
            details.append(f"unexpected keys {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
        raise StateDictError("The state dict does not match the CLIP architecture: " + "; ".join(details))
    return [(key, *weight_map[key]) for key in sorted(provided) if weight_map[key][0] is not None]


def load_openai_state_dict(model, state_dict):
    """Assign a state dict with OpenAI's names to an existing CLIP, checking every key.

    Raises:
        StateDictError: a key is missing, unexpected, or has the wrong shape (named, with both shapes).
    """
    assign_state_dict(assignments(model, state_dict), state_dict)


def assign_state_dict(planned, state_dict, on_value=None):
    """Assign the values of `assignments(model, state_dict)`, checking each one's shape.

    Args:
        planned: `assignments(model, state_dict)`.
        state_dict: OpenAI parameter names -> arrays (read in sorted key order).
        on_value: optional `on_value(variable, value)`, called with each value in Keras' layout
            and the state dict's dtype before it is cast and assigned (e.g. `CacheWriter.put`).

    Raises:
        StateDictError: a value has the wrong shape (named, with both shapes).
    """
    for key, variable, convert in planned:
        try:
            value = convert(as_tensor(state_dict[key]))
            layout = f"Keras layout {tuple(value.shape)}"
        except CheckpointError:  # the file could not be read (truncated, corrupt): not a shape problem
            raise
        except (tf.errors.InvalidArgumentError, ValueError):  # e.g. a 2-D array for a convolution kernel
            value, layout = None, "not convertible to the Keras layout"
        if value is None or tuple(value.shape) != tuple(variable.shape):
            raise StateDictError(
                f"Shape mismatch for {key!r}: the state dict has {tuple(np.shape(state_dict[key]))} "
                f"({layout}), the model expects {tuple(variable.shape)} (Keras layout)"
            )
        if on_value is not None:
            on_value(variable, value)
        variable.assign(tf.cast(value, variable.dtype))


def build_model(state_dict, dtype=None, architecture=None, **kwargs):
    """A CLIP with the architecture and weights of a state dict in OpenAI's naming.

    Arrays are cast to the model's variable dtype (float16 ones upcast to float32 exactly under
    the default policy). Every key must be used exactly once.

    Args:
        state_dict: mapping of OpenAI parameter names (as in `clip/model.py`) to numpy arrays.
        dtype: None (Keras' default policy, float32) or one of `MODEL_DTYPES`: "bfloat16" or
            "float16" store the weights in that dtype for inference (embeddings and logits
            stay float32), "mixed_bfloat16" / "mixed_float16" keep float32 weights and compute
            in the half dtype. See `keras_clip/checkpoints/dtypes.py`.
        architecture: `CLIP` arguments the weights cannot tell, e.g. `{"activation": "gelu",
            "vision_heads": 16}` (see `model_for_state_dict`).
        **kwargs: extra `CLIP` constructor arguments, e.g. `name`.

    Returns:
        A `keras_clip.CLIP`.

    Raises:
        ValueError: an unsupported `dtype`.
        StateDictError: the state dict does not describe a CLIP (missing, unexpected or misshapen keys).

    Example:
    >>> model = keras_clip.build_model({k: v.numpy() for k, v in torch_model.state_dict().items()}, dtype="bfloat16")
    """
    model = model_for_state_dict(state_dict, dtype=dtype, architecture=architecture, **kwargs)
    load_openai_state_dict(model, state_dict)
    return model


def model_for_state_dict(state_dict, dtype=None, architecture=None, **kwargs):
    """A CLIP of the architecture a state dict describes, not yet holding its weights (see `build_model`).

    Args:
        architecture: `CLIP` arguments the weights cannot tell (heads, activation, LayerNorm epsilon,
            pooling), e.g. from the checkpoint's config; sizes it also gives must agree with the weights.

    Raises:
        StateDictError: the weights describe another size than `architecture` states (named).
    """
    dtype = model_dtype(dtype)
    config = infer_architecture(state_dict)
    check_metadata(state_dict, config)
    return CLIP(**with_architecture(config, architecture), dtype=dtype, **kwargs)
