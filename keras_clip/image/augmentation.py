"""CLIP training augmentation: OpenCLIP's random resized crop, then OpenAI's normalisation.

OpenCLIP trains CLIP with torchvision's `RandomResizedCrop(R, scale=(0.9, 1.0), interpolation=BICUBIC)`
(aspect ratios (3/4, 4/3)) and no flips. This module samples crop boxes by torchvision's rule (10 tries
of a random area fraction and log-uniform aspect ratio, then a centred crop of the closest allowed aspect
ratio) with TensorFlow's stateless random ops, and resizes with PIL's bicubic filter (`image_resizing`).
Keras has no random-resized-crop layer (`RandomCrop` cuts fixed-size windows, `RandomZoom` fills borders
of a same-size batch), so the sampling is built from `tf.random.stateless_*` ops, seeded per element:
identical seeds give identical images eagerly, in `tf.function` and in `tf.data` at any parallelism.
Horizontal flips are off by default, because captions say "left" and "right".
"""

import math

import keras
import tensorflow as tf

from keras_clip.image.decoding import decode_image
from keras_clip.image.preprocessing import (
    DEFAULT_PARALLEL_ITERATIONS, as_rgb_pixels, check_not_empty, normalize_image, preprocess_image,
)
from keras_clip.image.resizing import resize_image
from keras_clip.image.settings import DEFAULT_MAX_PIXELS

OPENCLIP_SCALE = (0.9, 1.0)
TORCHVISION_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_ATTEMPTS = 10  # torchvision's number of tries before the centred fallback


def random_resized_crop_box(height, width, seed, scale=OPENCLIP_SCALE, ratio=TORCHVISION_RATIO):
    """A crop box by torchvision's `RandomResizedCrop.get_params` rule, with stateless random ops.

    Args:
        height, width: the image size (int scalars or tensors).
        seed: int32/int64 tensor of shape [2], a stateless random seed.
        scale: range of the crop's area as a fraction of the image's.
        ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.

    Returns:
        (top, left, crop_height, crop_width) as int32 scalar tensors.
    """
    area_seed, ratio_seed, top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    float_height = tf.cast(height, tf.float32)
    float_width = tf.cast(width, tf.float32)
    target_area = float_height * float_width * tf.random.stateless_uniform([_ATTEMPTS], area_seed, *scale)
    log_ratio = tf.random.stateless_uniform([_ATTEMPTS], ratio_seed, math.log(ratio[0]), math.log(ratio[1]))
    aspect = tf.exp(log_ratio)
    # tf.round rounds halves to even, like Python's round in torchvision.
    widths = tf.cast(tf.round(tf.sqrt(target_area * aspect)), tf.int32)
    heights = tf.cast(tf.round(tf.sqrt(target_area / aspect)), tf.int32)
    fits = (widths > 0) & (widths <= width) & (heights > 0) & (heights <= height)
    first_fit = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)

    # No try fits: the whole image, narrowed to the nearest allowed aspect ratio, centred.
    image_ratio = float_width / float_height
    fallback_height = tf.where(
        image_ratio < ratio[0], tf.cast(tf.round(float_width / ratio[0]), tf.int32), height
    )
    fallback_width = tf.where(image_ratio > ratio[1], tf.cast(tf.round(float_height * ratio[1]), tf.int32), width)

    found = tf.reduce_any(fits)
    crop_height = tf.where(found, heights[first_fit], fallback_height)
    crop_width = tf.where(found, widths[first_fit], fallback_width)
    random_top = tf.random.stateless_uniform([], top_seed, 0, height - crop_height + 1, dtype=tf.int32)
    random_left = tf.random.stateless_uniform([], left_seed, 0, width - crop_width + 1, dtype=tf.int32)
    top = tf.where(found, random_top, (height - crop_height) // 2)
    left = tf.where(found, random_left, (width - crop_width) // 2)
    return top, left, crop_height, crop_width


def crop_and_resize(image, box, image_resolution):
    """`image[top:top + h, left:left + w]` resized to a square of side `image_resolution` with PIL's bicubic filter."""
    top, left, crop_height, crop_width = box
    crop = image[top : top + crop_height, left : left + crop_width]
    return resize_image(crop, image_resolution, image_resolution)


def augment_image(
    image,
    image_resolution,
    seed,
    scale=OPENCLIP_SCALE,
    ratio=TORCHVISION_RATIO,
    horizontal_flip=False,
    normalize=True,
    index=None,
    path=None,
    max_pixels=DEFAULT_MAX_PIXELS,
):
    """Random resized crop (and optional horizontal flip) of one image, as TensorFlow ops for `tf.data`.

    Args:
        image: one image: encoded bytes (scalar `tf.string`) or pixels [H, W, C] (C = 1, 3 or 4),
            uint8 or float in [0, 255].
        image_resolution: side of the square output.
        seed: int32/int64 tensor of shape [2]; the same seed gives the same crop.
        scale: range of the crop's area fraction (OpenCLIP trains CLIP with (0.9, 1.0)).
        ratio: range of the crop's aspect ratio.
        horizontal_flip: flip left-right with probability 1/2.
        normalize: return OpenAI-normalised float32 (True) or pixels in [0, 255] (False).
        index, path: how errors name an encoded image (its position, its file), as `decode_image`.
        max_pixels: encoded images of more pixels are refused before decoding, as `decode_image`.

    Returns:
        float32 [R, R, 3], R = `image_resolution` (uint8 pixels when `normalize=False` and the input
        is encoded or uint8).

    Example:
    >>> encoded_images = tf.data.Dataset.list_files("photos/*.jpg").map(tf.io.read_file)
    >>> seeds = tf.data.Dataset.random(seed=0).batch(2)
    >>> dataset = tf.data.Dataset.zip(encoded_images, seeds).map(
    ...     lambda data, seed: augment_image(data, 224, seed), num_parallel_calls=tf.data.AUTOTUNE)
    >>> next(iter(dataset)).shape
    TensorShape([224, 224, 3])
    """
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.string:
        image = decode_image(image, index=index, path=path, max_pixels=max_pixels)
    elif image.shape.rank != 3:
        raise ValueError(f"augment_image takes one image [H, W, C] or encoded bytes, got shape {image.shape}")
    else:
        image = check_not_empty(as_rgb_pixels(image))
    seed = tf.convert_to_tensor(seed)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    shape = tf.shape(image)
    box = random_resized_crop_box(shape[0], shape[1], crop_seed, scale, ratio)
    output = crop_and_resize(image, box, image_resolution)
    if horizontal_flip:
        output = tf.image.stateless_random_flip_left_right(output, flip_seed)
    output = tf.ensure_shape(output, [image_resolution, image_resolution, 3])
    return normalize_image(output) if normalize else output


@keras.saving.register_keras_serializable(package="keras_clip")
class TrainingAugmentation(keras.layers.Layer):
    """OpenCLIP's training preprocessing as a Keras layer: random resized crop, OpenAI normalisation.

    In training (the default when called directly, and in `fit`) every image gets its own random crop
    (`augment_image`); with `training=False` the layer does `ImagePreprocessor`'s deterministic
    resize and centre crop. Seeds come from a `keras.random.SeedGenerator`: one draw per call, folded
    with each element's index, so a given `seed` reproduces the same sequence of batches. For
    reproducible `tf.data` pipelines with parallel maps, pass per-element seeds to `augment_image`.

    Args:
        image_resolution: side of the square output images.
        scale: range of the crop's area as a fraction of the image's (OpenCLIP's default (0.9, 1.0)).
        ratio: range of the crop's aspect ratio (width / height).
        horizontal_flip: flip images left-right with probability 1/2 (off: captions mention sides).
        seed: int seed of the layer's random stream (None: a random one).
        parallel_iterations: how many images of a batch are processed at once inside a graph.

    Inputs: encoded images (`tf.string`, [N] or scalar) or pixels [N, H, W, C] / [H, W, C].
    Outputs: float32 [N, R, R, 3] (or [R, R, 3]).

    Example:
    >>> augment = TrainingAugmentation(224, seed=1)
    >>> pairs = tf.data.Dataset.from_tensor_slices({"jpeg": jpeg_bytes, "tokens": keras_clip.tokenize(captions)})
    >>> dataset = pairs.batch(64).map(lambda batch: {"images": augment(batch["jpeg"]), "tokens": batch["tokens"]})
    """

    def __init__(
        self,
        image_resolution=224,
        scale=OPENCLIP_SCALE,
        ratio=TORCHVISION_RATIO,
        horizontal_flip=False,
        seed=None,
        parallel_iterations=DEFAULT_PARALLEL_ITERATIONS,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(autocast=False, **kwargs)
        # Lets callers pass Python bytes or lists of them; `call` converts them to tf.string.
        self._allow_non_tensor_positional_args = True
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio}")
        self.image_resolution = int(image_resolution)
        self.scale = tuple(float(value) for value in scale)
        self.ratio = tuple(float(value) for value in ratio)
        self.horizontal_flip = bool(horizontal_flip)
        self.seed = seed
        self.parallel_iterations = int(parallel_iterations)
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.built = True

    def call(self, inputs, training=True):
        if not training:
            return preprocess_image(inputs, self.image_resolution, self.parallel_iterations)
        inputs = tf.convert_to_tensor(inputs)
        if inputs.shape.rank in (0, 3):
            return self.call(inputs[None], training=training)[0]
        call_seed = tf.cast(self.seed_generator.next(), tf.int64)
        # Encoded and uint8 images stay 8-bit until normalisation (as PIL's are); float ones stay float.
        pixel_dtype = tf.uint8 if inputs.dtype in (tf.string, tf.uint8) else tf.float32
        if tf.executing_eagerly():
            pixels = [self._augment_one((inputs[index], index), call_seed) for index in range(len(inputs))]
            pixels = tf.stack(pixels) if pixels else tf.zeros([0, self.image_resolution, self.image_resolution, 3])
            pixels = tf.cast(pixels, pixel_dtype)
        else:
            pixels = tf.map_fn(
                tf.autograph.experimental.do_not_convert(lambda element: self._augment_one(element, call_seed)),
                (inputs, tf.range(tf.shape(inputs)[0])),
                fn_output_signature=tf.TensorSpec([self.image_resolution] * 2 + [3], pixel_dtype),
                parallel_iterations=self.parallel_iterations,
            )
        return normalize_image(pixels)

    def _augment_one(self, element, call_seed):
        image, index = element
        seed = tf.random.experimental.stateless_fold_in(call_seed, tf.cast(index, tf.int64))
        return augment_image(
            image, self.image_resolution, seed, self.scale, self.ratio, self.horizontal_flip, False, index=index
        )

    def compute_output_shape(self, input_shape):
        side = (self.image_resolution, self.image_resolution, 3)
        return side if len(input_shape) in (0, 3) else (input_shape[0],) + side

    def get_config(self):
        config = super().get_config()
        config.update(
            image_resolution=self.image_resolution,
            scale=self.scale,
            ratio=self.ratio,
            horizontal_flip=self.horizontal_flip,
            seed=self.seed,
            parallel_iterations=self.parallel_iterations,
        )
        return config
