"""A stack of residual attention blocks."""

import keras

from keras_clip.layers.rematerialization import rematerialized_call
from keras_clip.layers.residual_attention_block import LAYER_NORM_EPSILON, ResidualAttentionBlock


@keras.saving.register_keras_serializable(package="keras_clip")
class Transformer(keras.layers.Layer):
    """`num_layers` ResidualAttentionBlocks applied in order to [batch, length, width].

    Args:
        width: model width.
        num_layers: number of blocks.
        num_heads: attention heads per block.
        causal: causal self-attention (text tower) or full (vision tower).
        mlp_width, activation, layer_norm_epsilon: of every block (see `ResidualAttentionBlock`).
        remat: in training, recompute each block's activations in the backward pass instead of keeping
            them (`rematerialized_call`): less memory, about one more forward pass. Inference is unchanged.

    Example:
    >>> stack = Transformer(width=64, num_layers=2, num_heads=4, causal=True)
    >>> stack(np.zeros((2, 77, 64))).shape
    TensorShape([2, 77, 64])
    """

    def __init__(self, width, num_layers, num_heads, causal=False, mlp_width=None, activation="quick_gelu",
                 layer_norm_epsilon=LAYER_NORM_EPSILON, remat=False, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.width = width
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.causal = causal
        self.mlp_width = int(mlp_width or 4 * width)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.remat = bool(remat)
        self.resblocks = [
            ResidualAttentionBlock(width, num_heads, causal, self.mlp_width, activation, layer_norm_epsilon,
                                   name=f"resblocks_{i}", dtype=self.dtype_policy)  # fmt: skip
            for i in range(num_layers)
        ]

    def build(self, input_shape):
        for block in self.resblocks:
            block.build(input_shape)

    def call(self, x, training=None):
        for block in self.resblocks:
            x = rematerialized_call(block, x, training=training) if self.remat and training else block(x)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, num_layers=self.num_layers, num_heads=self.num_heads, causal=self.causal,
                      mlp_width=self.mlp_width, activation=self.activation,
                      layer_norm_epsilon=self.layer_norm_epsilon, remat=self.remat)  # fmt: skip
        return config


def _set_tower_remat(tower, value):
    tower.transformer.remat = bool(value)


# The `remat` of a tower built on a `Transformer` (TextTransformer, VisionTransformer): its transformer's.
tower_remat = property(lambda tower: tower.transformer.remat, _set_tower_remat,
                       doc="Rematerialise the transformer blocks in training (settable; retrace the training step "
                           "after).")  # fmt: skip
