"""The dtypes a loaded CLIP can be built with (`keras_clip.load(..., dtype=...)`).

- "float32": the reference precision (what `None` gives under Keras' default policy).
- "bfloat16" / "float16": weights stored and computed in that dtype, half the memory, for
  inference; the embeddings of `encode_image` / `encode_text` and the logits are float32.
- "mixed_bfloat16" / "mixed_float16": float32 weights, computation in the half dtype.
Checkpoints are always converted from their stored values with one rounding to the model's
dtype; the converted-weights cache keeps the checkpoint's own precision, whatever dtype a
model is built with.
"""

import keras

MODEL_DTYPES = ("float32", "bfloat16", "float16", "mixed_bfloat16", "mixed_float16")


def model_dtype(dtype):
    """The dtype policy name to build a CLIP with, or None for Keras' default policy.

    Args:
        dtype: None, one of `MODEL_DTYPES`, or a `keras.DTypePolicy` with one of those names.

    Raises:
        ValueError: any other value (named, with the supported ones).

    Example:
    >>> model_dtype("bfloat16")
    'bfloat16'
    """
    if dtype is None:
        return None
    name = dtype.name if isinstance(dtype, keras.DTypePolicy) else dtype
    if not isinstance(name, str) or name not in MODEL_DTYPES:
        raise ValueError(
            f"Unsupported dtype {dtype!r} for a CLIP model; use None (Keras' default policy) or one of "
            f"{', '.join(repr(option) for option in MODEL_DTYPES)}"
        )
    return name
