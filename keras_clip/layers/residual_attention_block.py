"""Pre-LayerNorm transformer block: attention and a QuickGELU MLP, each with a residual."""

import keras

from keras_clip.layers.activations import quick_gelu
from keras_clip.layers.attention import FusedSelfAttention

LAYER_NORM_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="keras_clip")
class ResidualAttentionBlock(keras.layers.Layer):
    """`x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`, as in OpenAI's CLIP.

    Args:
        width: model width.
        num_heads: number of attention heads.
        causal: apply a causal mask in the attention (the text tower does).

    Example:
    >>> block = ResidualAttentionBlock(width=64, num_heads=4)
    >>> block(np.zeros((2, 10, 64))).shape
    TensorShape([2, 10, 64])
    """

    def __init__(self, width, num_heads, causal=False, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.num_heads = num_heads
        self.causal = causal
        policy = self.dtype_policy
        self.ln_1 = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="ln_1", dtype=policy)
        self.attn = FusedSelfAttention(width, num_heads, causal=causal, name="attn", dtype=policy)
        self.ln_2 = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="ln_2", dtype=policy)
        self.c_fc = keras.layers.Dense(4 * width, activation=quick_gelu, name="c_fc", dtype=policy)
        self.c_proj = keras.layers.Dense(width, name="c_proj", dtype=policy)

    def build(self, input_shape):
        for layer in (self.ln_1, self.attn, self.ln_2, self.c_fc):
            layer.build(input_shape)
        self.c_proj.build(tuple(input_shape)[:-1] + (4 * self.width,))

    def call(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(self.c_fc(self.ln_2(x)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, num_heads=self.num_heads, causal=self.causal)
        return config
