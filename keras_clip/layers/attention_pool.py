"""ModifiedResNet's attention pooling: the mean feature attends over the whole feature map."""

import keras
from keras import ops

from keras_clip.layers.attention import scaled_dot_product_attention


@keras.saving.register_keras_serializable(package="keras_clip")
class AttentionPool2d(keras.layers.Layer):
    """Pools an NHWC feature map to one vector with a single-query multi-head attention.

    The sequence is the spatial mean followed by every position, plus a learned positional
    embedding; the mean token is the only query.

    Args:
        spatial_dim: height (= width) of the input feature map.
        embed_dim: input channels.
        num_heads: attention heads.
        output_dim: output features (defaults to `embed_dim`).

    Example:
    >>> pool = AttentionPool2d(spatial_dim=7, embed_dim=128, num_heads=2, output_dim=64)
    >>> pool(np.zeros((2, 7, 7, 128))).shape
    TensorShape([2, 64])
    """

    def __init__(self, spatial_dim, embed_dim, num_heads, output_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.spatial_dim = spatial_dim
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.output_dim = output_dim or embed_dim

        def dense(units, name):
            initializer = keras.initializers.RandomNormal(stddev=embed_dim**-0.5)
            return keras.layers.Dense(units, kernel_initializer=initializer, name=name, dtype=self.dtype_policy)

        self.q_proj = dense(embed_dim, "q_proj")
        self.k_proj = dense(embed_dim, "k_proj")
        self.v_proj = dense(embed_dim, "v_proj")
        self.c_proj = dense(self.output_dim, "c_proj")

    def build(self, input_shape=None):
        self.positional_embedding = self.add_weight(
            shape=(self.spatial_dim**2 + 1, self.embed_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.embed_dim**-0.5),
            name="positional_embedding",
        )
        tokens_shape = (None, None, self.embed_dim)
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.c_proj):
            layer.build(tokens_shape)

    def call(self, x):
        batch = ops.shape(x)[0]
        x = ops.reshape(x, (batch, -1, self.embed_dim))
        x = ops.concatenate([ops.mean(x, axis=1, keepdims=True), x], axis=1)
        x = x + ops.cast(self.positional_embedding, x.dtype)
        pooled = scaled_dot_product_attention(
            self.q_proj(x[:, :1]), self.k_proj(x), self.v_proj(x), self.num_heads
        )
        return self.c_proj(pooled[:, 0])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            spatial_dim=self.spatial_dim,
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            output_dim=self.output_dim,
        )
        return config
