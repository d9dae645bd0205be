"""Multi-head self-attention with one fused query/key/value projection."""

import keras
from keras import ops


def scaled_dot_product_attention(query, key, value, num_heads, mask=None):
    """Attention over [batch, length, width] tensors split into `num_heads` heads.

    Scores and softmax are computed in float32 whatever the input dtype, so the layer is
    safe under `mixed_bfloat16` / `mixed_float16` policies.

    Args:
        query: [batch, query_length, width].
        key, value: [batch, key_length, width].
        num_heads: number of attention heads; `width` must be divisible by it.
        mask: optional additive mask broadcastable to [query_length, key_length].

    Returns:
        [batch, query_length, width] in the dtype of `query`.
    """
    batch = ops.shape(query)[0]
    width = query.shape[-1]
    head_dim = width // num_heads

    def split_heads(x):
        return ops.reshape(x, (batch, -1, num_heads, head_dim))

    query = split_heads(query) * ops.cast(head_dim**-0.5, query.dtype)
    key, value = split_heads(key), split_heads(value)
    scores = ops.einsum("bqhd,bkhd->bhqk", query, key)
    scores = ops.cast(scores, "float32")
    if mask is not None:
        scores = scores + mask
    weights = ops.cast(ops.softmax(scores, axis=-1), value.dtype)
    output = ops.einsum("bhqk,bkhd->bqhd", weights, value)
    return ops.reshape(output, (batch, -1, width))


@keras.saving.register_keras_serializable(package="keras_clip")
class FusedSelfAttention(keras.layers.Layer):
    """Self-attention whose query, key and value come from one [width, 3 * width] projection.

    This is the parameter layout of `torch.nn.MultiheadAttention` (`in_proj_weight`,
    `in_proj_bias`, `out_proj`), which OpenAI's CLIP uses.

    Args:
        width: model width (input and output features).
        num_heads: number of attention heads.
        causal: if True, position i attends only to positions <= i.

    Example:
    >>> attention = FusedSelfAttention(width=64, num_heads=4, causal=True)
    >>> attention(np.zeros((2, 10, 64))).shape
    TensorShape([2, 10, 64])
    """

    def __init__(self, width, num_heads, causal=False, **kwargs):
        super().__init__(**kwargs)
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        self.width = width
        self.num_heads = num_heads
        self.causal = causal
        self.in_proj = keras.layers.Dense(3 * width, name="in_proj", dtype=self.dtype_policy)
        self.out_proj = keras.layers.Dense(width, name="out_proj", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.in_proj.build(input_shape)
        self.out_proj.build(tuple(input_shape)[:-1] + (self.width,))

    def call(self, x):
        query, key, value = ops.split(self.in_proj(x), 3, axis=-1)
        mask = None
        if self.causal:
            length = ops.shape(x)[1]
            positions = ops.arange(length)
            future = ops.greater(positions[None, :], positions[:, None])
            mask = ops.where(future, float("-inf"), 0.0)
        return self.out_proj(scaled_dot_product_attention(query, key, value, self.num_heads, mask))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, num_heads=self.num_heads, causal=self.causal)
        return config
