"""OpenAI's CLIP image preprocessing, in graph: decode, bicubic resize, centre crop, normalise.

OpenAI's `clip.load` preprocesses with torchvision on PIL images: `Resize(R, BICUBIC)` (shorter side to R),
`CenterCrop(R)`, RGB conversion, `ToTensor()` (scale to [0, 1]) and `Normalize(mean, std)`. The functions
here reproduce it with core TensorFlow ops (see `image_resizing` for how the resampling matches PIL's),
so the same graph runs eagerly, in `tf.function`, in `tf.data` and in a SavedModel served by stock
TensorFlow Serving.

Where OpenAI's pipeline has PIL quirks, the image's content wins: palette images (GIF, palette PNG/BMP)
are resized bicubically after decoding (PIL resizes palette indices with nearest neighbour), RGBA images
lose their alpha before resizing (PIL resizes premultiplied colours), and 16-bit grayscale PNGs keep
their high byte (PIL saturates them to white). RGB, grayscale and CMYK images match OpenAI's exactly.
"""

import dataclasses

import keras
import tensorflow as tf

from keras_clip.image.decoding import decode_image
from keras_clip.image.resizing import resize_to_square
from keras_clip.image.settings import DEFAULT_MAX_PIXELS, OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, Preprocessing

# Images decoded at once by a batch of encoded images inside a graph: bounds the memory a batch of
# large photographs takes (a 6000x4000 JPEG needs about 100 MB while it is resized).
DEFAULT_PARALLEL_ITERATIONS = 4


def normalize_image(images, mean=OPENAI_IMAGE_MEAN, std=OPENAI_IMAGE_STD):
    """Pixels in [0, 255] -> float32 scaled to [0, 1] and normalised with mean and std (last axis RGB; OpenAI's).

    The arithmetic is PyTorch's `ToTensor` + `Normalize` in float32 (divide by 255, subtract the mean,
    divide by the std), so uint8 pixels give bit-identical results eagerly, in `tf.function` and in
    `tf.data` (not under XLA, which may reorder it). The divisions are `divide_no_nan`: TensorFlow's
    graph optimiser turns a plain division by a constant into a multiplication by its reciprocal,
    which changes the last bit.
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    # Rows of width x channels, with the channel statistics tiled along them: broadcasting a row is
    # several times faster than broadcasting over an innermost axis of size 3.
    rows = tf.reshape(tf.cast(images, tf.float32), [-1, shape[-2] * 3])
    mean = tf.tile(tf.constant(mean, tf.float32), [shape[-2]])
    std = tf.tile(tf.constant(std, tf.float32), [shape[-2]])
    normalized = tf.math.divide_no_nan(tf.math.divide_no_nan(rows, tf.constant(255.0)) - mean, std)
    return tf.reshape(normalized, shape)


def as_rgb_pixels(images):
    """Checks pixel images ([N, H, W, C] or [H, W, C]; uint8 or float) and makes them RGB.

    One channel is repeated three times; a fourth (alpha) channel is dropped, as PIL's convert("RGB") does.
    """
    if images.shape.rank not in (3, 4):
        raise ValueError(
            f"Expected images [N, H, W, C] or [H, W, C] or encoded image bytes, got a {images.dtype.name} "
            f"tensor of shape {images.shape}"
        )
    if images.dtype != tf.uint8 and not images.dtype.is_floating:
        raise ValueError(f"Images must be uint8 (0..255) or float (values in [0, 255]), got {images.dtype.name}")
    channels = images.shape[-1]
    if channels == 1:
        return tf.repeat(images, 3, axis=-1)
    if channels == 4:
        return images[..., :3]
    if channels != 3:
        raise ValueError(f"Images need 1 (grayscale), 3 (RGB) or 4 (RGBA) channels, got shape {images.shape}")
    return images


def _pixels(images, settings):
    return resize_to_square(images, settings.image_resolution, settings.interpolation, settings.resize_mode)


def check_not_empty(images):
    """Pixel images with no rows or no columns cannot be resized: a clear error (ValueError when the shape is
    known, else InvalidArgumentError at run time) instead of a division by zero."""
    shape = images.shape
    height, width = shape[-3], shape[-2]
    if height == 0 or width == 0:
        raise ValueError(f"Images of {height} x {width} pixels (shape {shape}) have nothing to resize")
    if height is not None and width is not None:
        return images
    dynamic = tf.shape(images)
    check = tf.debugging.Assert(tf.logical_and(dynamic[-3] > 0, dynamic[-2] > 0), [tf.strings.join([
        "Images of ", tf.strings.as_string(dynamic[-3]), " x ", tf.strings.as_string(dynamic[-2]),
        " pixels have nothing to resize",
    ])])  # fmt: skip
    with tf.control_dependencies([check]):
        return tf.identity(images)


def _decoded_pixels(data, settings, index=None, path=None):
    return _pixels(decode_image(data, index=index, path=path, max_pixels=settings.max_pixels), settings)


def _preprocess_encoded(data, settings, parallel_iterations, path):
    if data.shape.rank == 0:
        return _decoded_pixels(data, settings, path=path)
    if data.shape.rank != 1:
        raise ValueError(f"Encoded images must be a scalar or a vector of strings, got shape {data.shape}")
    if path is not None:
        raise ValueError("path= names one encoded image (a scalar string); a batch's images are named by index")
    side = settings.image_resolution
    if tf.executing_eagerly():
        pixels = [_decoded_pixels(data[index], settings, index=index) for index in range(len(data))]
        return tf.stack(pixels) if pixels else tf.zeros([0, side, side, 3], tf.uint8)

    # No Python control flow depends on tensors here: skipping AutoGraph's conversion saves seconds of tracing.
    @tf.autograph.experimental.do_not_convert
    def preprocess_one(element):
        encoded, index = element
        return _decoded_pixels(encoded, settings, index=index)

    return tf.map_fn(
        preprocess_one,
        (data, tf.range(tf.shape(data)[0])),
        fn_output_signature=tf.TensorSpec([side, side, 3], tf.uint8),
        parallel_iterations=parallel_iterations,
    )


def preprocess_image(
    images,
    image_resolution,
    parallel_iterations=DEFAULT_PARALLEL_ITERATIONS,
    path=None,
    mean=OPENAI_IMAGE_MEAN,
    std=OPENAI_IMAGE_STD,
    interpolation="bicubic",
    resize_mode="shortest",
    max_pixels=DEFAULT_MAX_PIXELS,
):
    """A CLIP's image preprocessing of encoded images or pixels, as TensorFlow ops (usable in `tf.data`).

    By default OpenAI's: resize the shorter side with PIL's bicubic filter, centre crop, normalise with
    OpenAI's mean and std; other checkpoints' settings are arguments (`keras_clip.load` returns them).

    Args:
        images: encoded image bytes (JPEG, PNG, GIF, BMP, WebP) as a scalar or [N] `tf.string`, or pixels
            [N, H, W, C] / [H, W, C] with C = 1, 3 or 4: uint8 in 0..255 or float with values in [0, 255]
            (float pixels are resampled without PIL's rounding to 8 bits).
        image_resolution: the side of the square output, e.g. 224.
        parallel_iterations: how many encoded images of a batch are decoded at once in a graph.
        path: for one encoded image (a scalar string), the file it came from, named in errors.
        mean, std: per RGB channel, of pixels scaled to [0, 1].
        interpolation: "bicubic" or "bilinear" (PIL's antialiased filters, bit for bit).
        resize_mode: "shortest" (shorter side to `image_resolution`, centre crop), "squash" (both sides)
            or "longest" (longer side, centred on black).
        max_pixels: encoded images of more pixels (width x height, read from their header before
            decoding) are refused; None: no limit. Default: PIL's 178,956,970.

    Returns:
        float32 [N, R, R, 3] (or [R, R, 3] for one image), R = `image_resolution`.

    Raises:
        CorruptImageError: eagerly, bytes that are not a decodable image (its `index` in the batch, or
            `path`, set), `ImageTooLargeError` for one of more than `max_pixels`; in a graph, a
            `tf.errors.InvalidArgumentError` whose message names it ("the image at index 3").
        ValueError: pixel images of 0 rows or columns.

    Example:
    >>> dataset = tf.data.Dataset.list_files("photos/*.jpg").map(tf.io.read_file)
    >>> dataset = dataset.map(lambda data: preprocess_image(data, 224)).batch(32)
    >>> next(iter(dataset)).shape
    TensorShape([32, 224, 224, 3])
    """
    settings = Preprocessing(image_resolution, mean, std, interpolation, resize_mode, max_pixels)
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.string:
        pixels = _preprocess_encoded(images, settings, parallel_iterations, path)
    elif images.shape.rank == 4 and images.shape[0] == 0:  # an empty batch, whatever its images' size
        side = settings.image_resolution
        pixels = tf.zeros([0, side, side, 3], as_rgb_pixels(images).dtype)
    else:
        pixels = _pixels(check_not_empty(as_rgb_pixels(images)), settings)
    return normalize_image(pixels, settings.mean, settings.std)


@keras.saving.register_keras_serializable(package="keras_clip")
class ImagePreprocessor(keras.layers.Layer):
    """A CLIP's image preprocessing as a Keras layer: encoded bytes or pixels in, model input out.

    Decodes encoded images (JPEG incl. CMYK and progressive, PNG incl. 16-bit and palette, GIF first
    frame, BMP, WebP; grayscale and alpha become RGB), then by default does OpenAI's preprocessing:
    resizes the shorter side to `image_resolution` with PIL's antialiased bicubic filter, crops the
    centre square, scales to [0, 1] and normalises with OpenAI's mean and standard deviation. Other
    checkpoints' settings (`keras_clip.load` returns the layer for a checkpoint) are arguments. Encoded
    images of different sizes in one batch are processed image by image (at most `parallel_iterations`
    at once in a graph), so memory is bounded by the largest images, not by the batch size. Only core
    TensorFlow ops are used: the layer works in `tf.data` and in SavedModels served by TF Serving.

    Args:
        image_resolution: side of the square output images (the model's `image_resolution`).
        parallel_iterations: how many encoded images of a batch are decoded at once inside a graph.
        mean, std: per RGB channel, of pixels scaled to [0, 1] (OpenAI's by default).
        interpolation: "bicubic" (OpenAI's) or "bilinear".
        resize_mode: "shortest" (OpenAI's), "squash" or "longest".
        max_pixels: encoded images of more pixels (width x height, from their header) are refused before
            they are decoded (a decompression bomb can claim gigapixels in a few kilobytes); None: no limit.
            Default: PIL's 178,956,970; `keras_clip.load(..., max_pixels=)` sets it.

    Inputs: `tf.string` encoded images, a scalar or [N]; or pixels [N, H, W, C] / [H, W, C]
    (C = 1, 3 or 4), uint8 in 0..255 or float with values in [0, 255].
    Outputs: float32 [N, R, R, 3] (or [R, R, 3] for a single image).

    Example:
    >>> preprocess = ImagePreprocessor(224)
    >>> images = preprocess(tf.stack([tf.io.read_file("cat.jpg"), tf.io.read_file("dog.png")]))
    >>> images.shape
    TensorShape([2, 224, 224, 3])
    """

    def __init__(self, image_resolution=224, parallel_iterations=DEFAULT_PARALLEL_ITERATIONS, mean=OPENAI_IMAGE_MEAN,
                 std=OPENAI_IMAGE_STD, interpolation="bicubic", resize_mode="shortest", max_pixels=DEFAULT_MAX_PIXELS,
                 **kwargs):  # fmt: skip
        kwargs.setdefault("dtype", "float32")
        super().__init__(autocast=False, **kwargs)
        # Lets callers pass Python bytes or lists of them; `call` converts them to tf.string.
        self._allow_non_tensor_positional_args = True
        self.settings = Preprocessing(int(image_resolution), mean, std, interpolation, resize_mode, max_pixels)
        self.image_resolution = self.settings.image_resolution
        self.parallel_iterations = int(parallel_iterations)
        self.built = True

    @classmethod
    def from_settings(cls, settings, **kwargs):
        """The layer of a `Preprocessing` record (e.g. a checkpoint's, from `keras_clip.models.presets`)."""
        return cls(**dataclasses.asdict(settings), **kwargs)

    def call(self, inputs):
        settings = self.settings
        return preprocess_image(inputs, self.image_resolution, self.parallel_iterations, None, settings.mean,
                                settings.std, settings.interpolation, settings.resize_mode,
                                settings.max_pixels)  # fmt: skip

    def compute_output_shape(self, input_shape):
        side = (self.image_resolution, self.image_resolution, 3)
        rank = len(input_shape)
        if rank in (0, 3):
            return side
        if rank in (1, 4):
            return (input_shape[0],) + side
        raise ValueError(f"Expected encoded images of rank 0 or 1 or pixels of rank 3 or 4, got shape {input_shape}")

    def get_config(self):
        config = super().get_config()
        config.update(dataclasses.asdict(self.settings), parallel_iterations=self.parallel_iterations)
        return config
