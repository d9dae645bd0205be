"""CLIP's ViT image tower."""

import keras
from keras import ops

from keras_clip.layers.residual_attention_block import LAYER_NORM_EPSILON
from keras_clip.layers.shapes import check_image_shape
from keras_clip.layers.transformer import Transformer

POOLINGS = ("class_token",)


@keras.saving.register_keras_serializable(package="keras_clip")
class VisionTransformer(keras.layers.Layer):
    """Patch embedding, class token, transformer, and a projection of the class token.

    Args:
        image_resolution: height and width of the square input images.
        patch_size: side of the square patches (the stride of the bias-free patch convolution).
        width: transformer width.
        num_layers: transformer depth.
        num_heads: attention heads.
        output_dim: size of the projected image embedding.
        mlp_width: hidden width of the blocks' MLPs (None: 4 * width).
        activation: the MLPs' activation: "quick_gelu" (OpenAI's), "gelu" or "gelu_tanh".
        layer_norm_epsilon: epsilon of every LayerNorm.
        pooling: how the image is summarised: "class_token" (the class token's output).

    Example:
    >>> tower = VisionTransformer(image_resolution=32, patch_size=8, width=64, num_layers=2,
    ...                           num_heads=1, output_dim=32)
    >>> tower(np.zeros((2, 32, 32, 3))).shape
    TensorShape([2, 32])
    """

    def __init__(self, image_resolution, patch_size, width, num_layers, num_heads, output_dim, mlp_width=None,
                 activation="quick_gelu", layer_norm_epsilon=LAYER_NORM_EPSILON, pooling="class_token",
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if image_resolution % patch_size:
            raise ValueError(f"image_resolution {image_resolution} is not a multiple of patch_size {patch_size}")
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown image pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        self.image_resolution = image_resolution
        self.patch_size = patch_size
        self.width = width
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.output_dim = output_dim
        self.mlp_width = int(mlp_width or 4 * width)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pooling = pooling
        self.grid_size = image_resolution // patch_size
        policy = self.dtype_policy
        self.conv1 = keras.layers.Conv2D(
            width, patch_size, strides=patch_size, use_bias=False, name="conv1", dtype=policy
        )
        self.ln_pre = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="ln_pre", dtype=policy)
        self.transformer = Transformer(width, num_layers, num_heads, False, self.mlp_width, activation,
                                       layer_norm_epsilon, name="transformer", dtype=policy)  # fmt: skip
        self.ln_post = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="ln_post", dtype=policy)

    def build(self, input_shape=None):
        scale = self.width**-0.5
        self.class_embedding = self.add_weight(
            shape=(self.width,), initializer=keras.initializers.RandomNormal(stddev=scale), name="class_embedding"
        )
        self.positional_embedding = self.add_weight(
            shape=(self.grid_size**2 + 1, self.width),
            initializer=keras.initializers.RandomNormal(stddev=scale),
            name="positional_embedding",
        )
        self.proj = self.add_weight(
            shape=(self.width, self.output_dim), initializer=keras.initializers.RandomNormal(stddev=scale), name="proj"
        )
        resolution = self.image_resolution
        self.conv1.build((None, resolution, resolution, 3))
        tokens_shape = (None, self.grid_size**2 + 1, self.width)
        for layer in (self.ln_pre, self.transformer):
            layer.build(tokens_shape)
        self.ln_post.build((None, self.width))

    def call(self, images):
        check_image_shape(images.shape, self.image_resolution, "VisionTransformer")
        x = self.conv1(images)
        batch = ops.shape(x)[0]
        x = ops.reshape(x, (batch, self.grid_size**2, self.width))
        class_token = ops.broadcast_to(ops.cast(self.class_embedding, x.dtype), (batch, 1, self.width))
        x = ops.concatenate([class_token, x], axis=1)
        x = x + ops.cast(self.positional_embedding, x.dtype)
        x = self.transformer(self.ln_pre(x))
        x = self.ln_post(x[:, 0, :])
        return ops.matmul(x, ops.cast(self.proj, x.dtype))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_resolution=self.image_resolution,
            patch_size=self.patch_size,
            width=self.width,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            output_dim=self.output_dim,
            mlp_width=self.mlp_width,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            pooling=self.pooling,
        )
        return config
