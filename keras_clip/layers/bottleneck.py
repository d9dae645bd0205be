"""ModifiedResNet's residual bottleneck with average-pool anti-aliasing."""

import keras

BATCH_NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.9  # PyTorch's momentum=0.1 in Keras' convention


def batch_norm(name, policy, gamma_initializer="ones"):
    return keras.layers.BatchNormalization(
        epsilon=BATCH_NORM_EPSILON,
        momentum=BATCH_NORM_MOMENTUM,
        gamma_initializer=gamma_initializer,
        name=name,
        dtype=policy,
    )


def conv(filters, kernel_size, name, policy):
    return keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=name, dtype=policy)


@keras.saving.register_keras_serializable(package="keras_clip")
class Bottleneck(keras.layers.Layer):
    """1x1 -> 3x3 -> (avg-pool if strided) -> 1x1 convolutions, each batch-normalised, plus a shortcut.

    All convolutions have stride 1; a stride > 1 is an average pool after the 3x3 convolution and
    before the shortcut's 1x1 convolution (OpenAI's anti-aliased ResNet-D variant).

    Args:
        inplanes: input channels.
        planes: bottleneck channels; the block outputs `4 * planes`.
        stride: spatial downsampling factor.

    Example:
    >>> block = Bottleneck(inplanes=64, planes=16, stride=2)
    >>> block(np.zeros((1, 8, 8, 64))).shape
    TensorShape([1, 4, 4, 64])
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        policy = self.dtype_policy
        out_planes = planes * self.expansion
        self.conv1 = conv(planes, 1, "conv1", policy)
        self.bn1 = batch_norm("bn1", policy)
        self.conv2 = conv(planes, 3, "conv2", policy)
        self.bn2 = batch_norm("bn2", policy)
        self.conv3 = conv(out_planes, 1, "conv3", policy)
        # Zero-initialised last gain: each block starts as the identity (OpenAI's initialisation).
        self.bn3 = batch_norm("bn3", policy, gamma_initializer="zeros")
        self.pool = keras.layers.AveragePooling2D(stride, name="avgpool", dtype=policy) if stride > 1 else None
        self.has_downsample = stride > 1 or inplanes != out_planes
        if self.has_downsample:
            self.downsample_conv = conv(out_planes, 1, "downsample_conv", policy)
            self.downsample_bn = batch_norm("downsample_bn", policy)

    def build(self, input_shape):
        batch, height, width, _ = input_shape
        self.conv1.build(input_shape)
        self.bn1.build((batch, height, width, self.planes))
        self.conv2.build((batch, height, width, self.planes))
        self.bn2.build((batch, height, width, self.planes))
        self.conv3.build((batch, None, None, self.planes))
        self.bn3.build((batch, None, None, self.planes * self.expansion))
        if self.has_downsample:
            self.downsample_conv.build((batch, None, None, self.inplanes))
            self.downsample_bn.build((batch, None, None, self.planes * self.expansion))

    def call(self, x, training=None):
        out = keras.ops.relu(self.bn1(self.conv1(x), training=training))
        out = keras.ops.relu(self.bn2(self.conv2(out), training=training))
        if self.pool is not None:
            out = self.pool(out)
        out = self.bn3(self.conv3(out), training=training)
        identity = x
        if self.has_downsample:
            if self.pool is not None:
                identity = self.pool(identity)
            identity = self.downsample_bn(self.downsample_conv(identity), training=training)
        return keras.ops.relu(out + identity)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if height is not None:
            height //= self.stride
        if width is not None:
            width //= self.stride
        return (batch, height, width, self.planes * self.expansion)

    def get_config(self):
        config = super().get_config()
        config.update(inplanes=self.inplanes, planes=self.planes, stride=self.stride)
        return config
