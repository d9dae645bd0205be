"""Pre-LayerNorm transformer block: attention and an MLP, each with a residual."""

import keras
from keras import ops

from keras_clip.layers.activations import dense_of_activation, get_activation
from keras_clip.layers.attention import FusedSelfAttention
from keras_clip.layers.layer_normalization import LeanLayerNormalization

LAYER_NORM_EPSILON = 1e-5  # OpenAI's and open_clip's (SigLIP's is 1e-6)


@keras.saving.register_keras_serializable(package="keras_clip")
class ResidualAttentionBlock(keras.layers.Layer):
    """`x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`, as in OpenAI's CLIP.

    Args:
        width: model width.
        num_heads: number of attention heads.
        causal: apply a causal mask in the attention (the text tower does).
        mlp_width: hidden width of the MLP (None: 4 * width, OpenAI's).
        activation: the MLP's activation: "quick_gelu" (OpenAI's), "gelu" or "gelu_tanh".
        layer_norm_epsilon: epsilon of both LayerNorms.

    Example:
    >>> block = ResidualAttentionBlock(width=64, num_heads=4)
    >>> block(np.zeros((2, 10, 64))).shape
    TensorShape([2, 10, 64])
    """

    def __init__(self, width, num_heads, causal=False, mlp_width=None, activation="quick_gelu",
                 layer_norm_epsilon=LAYER_NORM_EPSILON, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.width = width
        self.num_heads = num_heads
        self.causal = causal
        self.mlp_width = int(mlp_width or 4 * width)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        policy = self.dtype_policy
        self.ln_1 = LeanLayerNormalization(epsilon=layer_norm_epsilon, name="ln_1", dtype=policy)
        self.attn = FusedSelfAttention(width, num_heads, causal=causal, name="attn", dtype=policy)
        self.ln_2 = LeanLayerNormalization(epsilon=layer_norm_epsilon, name="ln_2", dtype=policy)
        self.c_fc = keras.layers.Dense(self.mlp_width, name="c_fc", dtype=policy)  # activation: in `call`
        get_activation(activation)  # an unknown name fails here
        self.c_proj = keras.layers.Dense(width, name="c_proj", dtype=policy)

    def build(self, input_shape):
        for layer in (self.ln_1, self.attn, self.ln_2, self.c_fc):
            layer.build(input_shape)
        self.c_proj.build(tuple(input_shape)[:-1] + (self.mlp_width,))

    def call(self, x, training=None):
        x = x + self.attn(self.ln_1(x))
        hidden = self.c_fc(self.ln_2(x))
        if training:  # c_proj(activation(hidden)), keeping only `hidden` for the gradient (see activations.py)
            kernel, bias = (ops.cast(weight, hidden.dtype) for weight in (self.c_proj.kernel, self.c_proj.bias))
            return x + dense_of_activation(hidden, kernel, bias, self.activation)
        return x + self.c_proj(get_activation(self.activation)(hidden))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, num_heads=self.num_heads, causal=self.causal, mlp_width=self.mlp_width,
                      activation=self.activation, layer_norm_epsilon=self.layer_norm_epsilon)  # fmt: skip
        return config
