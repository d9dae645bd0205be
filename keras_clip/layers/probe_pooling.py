"""SigLIP's image pooling: one learned probe attends over every token, then a residual MLP."""

import keras
from keras import ops

from keras_clip.layers.activations import get_activation
from keras_clip.layers.attention import scaled_dot_product_attention
from keras_clip.layers.layer_normalization import LeanLayerNormalization
from keras_clip.layers.residual_attention_block import LAYER_NORM_EPSILON


@keras.saving.register_keras_serializable(package="keras_clip")
class ProbePooling(keras.layers.Layer):
    """Multi-head attention pooling: `y = attn(probe, x, x)`, then `y + mlp(ln(y))`, one vector per image.

    The attention has `torch.nn.MultiheadAttention`'s parameter layout (one [width, 3 * width] input
    projection: query rows from the probe, key and value rows from the tokens), as SigLIP's
    `MultiheadAttentionPoolingHead`.

    Args:
        width: token width (input and output features).
        num_heads: attention heads.
        mlp_width: hidden width of the MLP (None: 4 * width).
        activation: the MLP's activation: "quick_gelu", "gelu" or "gelu_tanh" (SigLIP's).
        layer_norm_epsilon: epsilon of the LayerNorm.

    Example:
    >>> pooling = ProbePooling(width=64, num_heads=4)
    >>> pooling(np.zeros((2, 16, 64))).shape
    TensorShape([2, 64])
    """

    def __init__(self, width, num_heads, mlp_width=None, activation="gelu_tanh", layer_norm_epsilon=LAYER_NORM_EPSILON,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        self.width = width
        self.num_heads = num_heads
        self.mlp_width = int(mlp_width or 4 * width)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        policy = self.dtype_policy
        self.in_proj = keras.layers.Dense(3 * width, name="in_proj", dtype=policy)
        self.out_proj = keras.layers.Dense(width, name="out_proj", dtype=policy)
        self.ln = LeanLayerNormalization(epsilon=layer_norm_epsilon, name="ln", dtype=policy)
        self.c_fc = keras.layers.Dense(self.mlp_width, activation=get_activation(activation), name="c_fc", dtype=policy)
        self.c_proj = keras.layers.Dense(width, name="c_proj", dtype=policy)

    def build(self, input_shape):
        self.probe = self.add_weight(shape=(self.width,), initializer="glorot_uniform", name="probe")
        pooled_shape = (None, 1, self.width)
        self.in_proj.build(input_shape)
        for layer in (self.out_proj, self.ln, self.c_fc):
            layer.build(pooled_shape)
        self.c_proj.build((None, 1, self.mlp_width))

    def call(self, x):
        kernel, bias = ops.cast(self.in_proj.kernel, x.dtype), ops.cast(self.in_proj.bias, x.dtype)
        width = self.width
        # The probe's query only; the tokens' keys and values only (no query for every token).
        query = ops.matmul(ops.cast(self.probe, x.dtype)[None, :], kernel[:, :width]) + bias[:width]
        query = ops.broadcast_to(query[None], (ops.shape(x)[0], 1, width))
        key_value = ops.matmul(x, kernel[:, width:]) + bias[width:]
        key, value = key_value[..., :width], key_value[..., width:]
        y = self.out_proj(scaled_dot_product_attention(query, key, value, self.num_heads))
        y = y + self.c_proj(self.c_fc(self.ln(y)))
        return y[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, num_heads=self.num_heads, mlp_width=self.mlp_width,
                      activation=self.activation, layer_norm_epsilon=self.layer_norm_epsilon)  # fmt: skip
        return config
