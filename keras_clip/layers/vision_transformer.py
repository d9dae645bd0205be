"""The ViT image tower: CLIP's (class token) and SigLIP's (attention pooling)."""

import keras
from keras import ops

from keras_clip.layers.layer_normalization import LeanLayerNormalization
from keras_clip.layers.probe_pooling import ProbePooling
from keras_clip.layers.residual_attention_block import LAYER_NORM_EPSILON
from keras_clip.layers.shapes import check_image_shape
from keras_clip.layers.transformer import Transformer, tower_remat

POOLINGS = ("class_token", "map")


@keras.saving.register_keras_serializable(package="keras_clip")
class VisionTransformer(keras.layers.Layer):
    """Patch embedding, transformer, and a pooled image embedding.

    `pooling="class_token"` is CLIP's layout: a class token, a LayerNorm before the transformer, and a
    projection of the class token's output. `pooling="map"` is SigLIP's: a patch embedding with a bias,
    no class token and no LayerNorm before the transformer, a LayerNorm on every token, then multi-head
    attention pooling (`ProbePooling`) and no projection (`output_dim` must equal `width`).

    Args:
        image_resolution: height and width of the square input images.
        patch_size: side of the square patches (the stride of the patch convolution). Pixels beyond the
            last whole patch are not seen, as in PyTorch (SigLIP So400m/14 at 384: 27 x 27 patches).
        width: transformer width.
        num_layers: transformer depth.
        num_heads: attention heads.
        output_dim: size of the projected image embedding.
        mlp_width: hidden width of the blocks' MLPs (None: 4 * width).
        activation: the MLPs' activation: "quick_gelu" (OpenAI's), "gelu" or "gelu_tanh".
        layer_norm_epsilon: epsilon of every LayerNorm.
        pooling: how the image is summarised: "class_token" (CLIP's) or "map" (SigLIP's attention pooling).
        remat: in training, recompute each transformer block's activations in the backward pass
            instead of keeping them: less memory for about one more forward pass (see `Transformer`).

    Example:
    >>> tower = VisionTransformer(image_resolution=32, patch_size=8, width=64, num_layers=2,
    ...                           num_heads=1, output_dim=32)
    >>> tower(np.zeros((2, 32, 32, 3))).shape
    TensorShape([2, 32])
    """

    def __init__(self, image_resolution, patch_size, width, num_layers, num_heads, output_dim, mlp_width=None,
                 activation="quick_gelu", layer_norm_epsilon=LAYER_NORM_EPSILON, pooling="class_token",
                 remat=False, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown image pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        if pooling == "map" and output_dim != width:
            raise ValueError(f'pooling="map" has no projection: output_dim {output_dim} must equal width {width}')
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
        self.class_token = pooling == "class_token"
        self.conv1 = keras.layers.Conv2D(
            width, patch_size, strides=patch_size, use_bias=not self.class_token, name="conv1", dtype=policy
        )
        if self.class_token:
            self.ln_pre = LeanLayerNormalization(epsilon=layer_norm_epsilon, name="ln_pre", dtype=policy)
        self.transformer = Transformer(width, num_layers, num_heads, False, self.mlp_width, activation,
                                       layer_norm_epsilon, remat=remat, name="transformer", dtype=policy)  # fmt: skip
        self.ln_post = LeanLayerNormalization(epsilon=layer_norm_epsilon, name="ln_post", dtype=policy)
        if not self.class_token:
            self.attn_pool = ProbePooling(width, num_heads, self.mlp_width, activation, layer_norm_epsilon,
                                          name="attn_pool", dtype=policy)  # fmt: skip

    def build(self, input_shape=None):
        scale = self.width**-0.5
        positions = self.grid_size**2 + int(self.class_token)
        if self.class_token:
            self.class_embedding = self.add_weight(
                shape=(self.width,), initializer=keras.initializers.RandomNormal(stddev=scale), name="class_embedding"
            )
        self.positional_embedding = self.add_weight(
            shape=(positions, self.width),
            initializer=keras.initializers.RandomNormal(stddev=scale),
            name="positional_embedding",
        )
        if self.class_token:
            self.proj = self.add_weight(
                shape=(self.width, self.output_dim), initializer=keras.initializers.RandomNormal(stddev=scale),
                name="proj",
            )  # fmt: skip
        resolution = self.image_resolution
        self.conv1.build((None, resolution, resolution, 3))
        tokens_shape = (None, positions, self.width)
        self.transformer.build(tokens_shape)
        if self.class_token:
            self.ln_pre.build(tokens_shape)
            self.ln_post.build((None, self.width))
        else:
            self.ln_post.build(tokens_shape)
            self.attn_pool.build(tokens_shape)

    remat = tower_remat

    def call(self, images):
        check_image_shape(images.shape, self.image_resolution, "VisionTransformer")
        x = self.conv1(images)
        batch = ops.shape(x)[0]
        x = ops.reshape(x, (batch, self.grid_size**2, self.width))
        if not self.class_token:
            x = self.transformer(x + ops.cast(self.positional_embedding, x.dtype))
            return self.attn_pool(self.ln_post(x))
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
            remat=self.remat,
        )
        return config
