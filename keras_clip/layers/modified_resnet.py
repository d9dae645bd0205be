"""CLIP's ModifiedResNet image tower (RN50, RN101, RN50x4, RN50x16, RN50x64)."""

import keras
from keras import ops

from keras_clip.layers.attention_pool import AttentionPool2d
from keras_clip.layers.bottleneck import Bottleneck, batch_norm, conv
from keras_clip.layers.rematerialization import rematerialized_call
from keras_clip.layers.shapes import check_image_shape


@keras.saving.register_keras_serializable(package="keras_clip")
class ModifiedResNet(keras.layers.Layer):
    """A ResNet with a 3-convolution stem, anti-aliased strided blocks and attention pooling.

    Args:
        layers: four ints, the number of Bottleneck blocks in each stage.
        output_dim: size of the image embedding.
        num_heads: attention heads of the final attention pooling.
        image_resolution: height and width of the square input images (a multiple of 32).
        width: channels after the stem; stage i has `width * 2**i` bottleneck channels.
        remat: in training, recompute each Bottleneck's activations in the backward pass instead of
            keeping them (`rematerialized_call`; BatchNorm statistics are still updated once per step):
            less memory for about one more forward pass. Inference is unchanged.

    Example:
    >>> tower = ModifiedResNet(layers=(1, 1, 1, 1), output_dim=32, num_heads=2,
    ...                        image_resolution=64, width=8)
    >>> tower(np.zeros((2, 64, 64, 3))).shape
    TensorShape([2, 32])
    """

    def __init__(self, layers, output_dim, num_heads, image_resolution=224, width=64, remat=False, **kwargs):
        super().__init__(**kwargs)
        if len(layers) != 4:
            raise ValueError(f"ModifiedResNet needs 4 stage depths; got layers={layers}")
        if image_resolution % 32:
            raise ValueError(f"image_resolution {image_resolution} is not a multiple of 32")
        self.stage_depths = tuple(int(n) for n in layers)
        self.output_dim = output_dim
        self.num_heads = num_heads
        self.image_resolution = image_resolution
        self.width = width
        self.remat = bool(remat)
        policy = self.dtype_policy
        self.stem_padding = keras.layers.ZeroPadding2D(1, name="stem_padding", dtype=policy)
        self.conv1 = keras.layers.Conv2D(width // 2, 3, strides=2, use_bias=False, name="conv1", dtype=policy)
        self.bn1 = batch_norm("bn1", policy)
        self.conv2 = conv(width // 2, 3, "conv2", policy)
        self.bn2 = batch_norm("bn2", policy)
        self.conv3 = conv(width, 3, "conv3", policy)
        self.bn3 = batch_norm("bn3", policy)
        self.stem_pool = keras.layers.AveragePooling2D(2, name="avgpool", dtype=policy)
        self.blocks = []  # stages one after another; block names say "layer{stage}_{index}" as OpenAI's keys do
        inplanes = width
        for stage, depth in enumerate(self.stage_depths):
            planes = width * 2**stage
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 else 1
                self.blocks.append(
                    Bottleneck(inplanes, planes, stride, name=f"layer{stage + 1}_{index}", dtype=policy)
                )
                inplanes = planes * Bottleneck.expansion
        self.attnpool = AttentionPool2d(
            image_resolution // 32, width * 32, num_heads, output_dim, name="attnpool", dtype=policy
        )

    def build(self, input_shape=None):
        size = self.image_resolution
        half = self.width // 2
        self.stem_padding.build((None, size, size, 3))
        self.conv1.build((None, size + 2, size + 2, 3))
        size //= 2
        self.bn1.build((None, size, size, half))
        self.conv2.build((None, size, size, half))
        self.bn2.build((None, size, size, half))
        self.conv3.build((None, size, size, half))
        self.bn3.build((None, size, size, self.width))
        shape = (None, size // 2, size // 2, self.width)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.attnpool.build(shape)

    def call(self, images, training=None):
        check_image_shape(images.shape, self.image_resolution, "ModifiedResNet")
        x = self.conv1(self.stem_padding(images))
        x = ops.relu(self.bn1(x, training=training))
        x = ops.relu(self.bn2(self.conv2(x), training=training))
        x = ops.relu(self.bn3(self.conv3(x), training=training))
        x = self.stem_pool(x)
        for block in self.blocks:
            if self.remat and training:
                x = rematerialized_call(block, x, training=training)
            else:
                x = block(x, training=training)
        return self.attnpool(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            layers=list(self.stage_depths),
            output_dim=self.output_dim,
            num_heads=self.num_heads,
            image_resolution=self.image_resolution,
            width=self.width,
            remat=self.remat,
        )
        return config
