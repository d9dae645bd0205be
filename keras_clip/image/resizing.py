"""PIL's bicubic and bilinear resampling, and the geometry of torchvision's and open_clip's resize modes.

PIL resizes in two separable passes (horizontal then vertical; vertical first in Pillow 13 when the
height shrinks much more than the width). For each output pixel a pass takes the filter (bicubic: the
Keys cubic, a = -0.5, support 2; bilinear: the triangle, support 1), widened by the downscaling factor
(antialiasing), at the input pixels under it, normalises these taps to sum to one and rounds them to
22-bit fixed point; 8-bit pixels are summed with the integer taps and rounded back to 8 bits after each pass.

Here the taps are computed in float64 with PIL's formulas and rounding, and each pass is a product of
a banded matrix (the taps) with the image, computed in blocks of `_OUTPUTS_PER_BLOCK` output pixels:
a block needs only the window of input rows under its taps, so a block is one small dense matrix
product. A pixel times a 22-bit tap does not fit float32's 24-bit significand, so each tap is split
into a high and a low part (tap = high * 256 + low) whose sums are exact in float32, and the two
sums are combined in int32: the result is PIL's, bit for bit. Only the pixels of the requested output
window are computed, so a centre crop costs what its pixels cost, not what the whole resize would.
"""

import tensorflow as tf

# PIL's fixed-point precision for the taps of 8-bit images (32 bits - 8 for the pixel - 2 for overshoot).
_PRECISION_BITS = 22
# Taps are split at this power of two. Sums of pixel x low part stay below 2^24 (exact in float32) for
# filters of up to 514 taps, i.e. downscaling by up to 128x; sums of pixel x high part are multiples
# of 256 below 2^31 (exact in float32 and in int32).
_TAP_SPLIT = 256
_OUTPUTS_PER_BLOCK = 8
# Blocks are resampled in groups whose input windows hold at most this many float32 values (4 MB: faster
# than larger groups, measured on a 3000 x 4000 photograph).
_MAX_WINDOW_VALUES = 1 << 20
_BICUBIC_A = -0.5
RESIZE_MODES = ("shortest", "squash", "longest")


def shorter_side_size(height, width, resolution):
    """The (height, width) torchvision's `Resize(resolution)` gives an image: shorter side = resolution.

    The longer side becomes `int(resolution * longer / shorter)` (truncated), as in torchvision.

    Args:
        height, width: int scalars (Python or tensors), the image size.
        resolution: int, the new length of the shorter side.

    Returns:
        (new_height, new_width) as int32 scalar tensors.
    """
    height = tf.cast(height, tf.int64)
    width = tf.cast(width, tf.int64)
    shorter = tf.minimum(height, width)
    # Exact integer floor; equal to Python's int(r * long / short) for any realistic image size.
    new_height = tf.where(height <= width, tf.constant(resolution, tf.int64), resolution * height // shorter)
    new_width = tf.where(height <= width, resolution * width // shorter, tf.constant(resolution, tf.int64))
    return tf.cast(new_height, tf.int32), tf.cast(new_width, tf.int32)


def center_crop_offsets(height, width, size):
    """torchvision's `CenterCrop(size)` corner: `int(round((side - size) / 2))`, halves to even.

    Returns:
        (top, left) as int32 scalar tensors.
    """
    # tf.round rounds halves to even, like Python's round.
    top = tf.round(tf.cast(height - size, tf.float64) / 2.0)
    left = tf.round(tf.cast(width - size, tf.float64) / 2.0)
    return tf.cast(top, tf.int32), tf.cast(left, tf.int32)


def _keys_cubic(x):
    """PIL's bicubic filter, written in PIL's operation order (float64)."""
    x = tf.abs(x)
    near = ((_BICUBIC_A + 2.0) * x - (_BICUBIC_A + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * _BICUBIC_A
    return tf.where(x < 1.0, near, tf.where(x < 2.0, far, tf.zeros_like(x)))


def _triangle(x):
    """PIL's bilinear filter (float64)."""
    x = tf.abs(x)
    return tf.where(x < 1.0, 1.0 - x, tf.zeros_like(x))


# interpolation name -> (PIL's filter, its support)
FILTERS = {"bicubic": (_keys_cubic, 2.0), "bilinear": (_triangle, 1.0)}


def check_interpolation(interpolation):
    if interpolation not in FILTERS:
        raise ValueError(f"Unknown interpolation {interpolation!r}; expected one of {', '.join(FILTERS)}")
    return interpolation


def _fixed_point(weights):
    """PIL's rounding of normalised taps to 22-bit integers (half away from zero), as float64."""
    scaled = weights * float(1 << _PRECISION_BITS)
    return tf.where(scaled < 0.0, tf.math.ceil(scaled - 0.5), tf.math.floor(scaled + 0.5))


class _BandedResampling:
    """The taps of one pass, as per-block dense matrices over windows of the input.

    Args:
        input_size: int32 scalar, pixels along the resampled axis.
        output_size: the size of the whole resized axis.
        first, count: the output window computed: pixels first .. first + count - 1.
        exact_8_bit: PIL's fixed-point taps, split in two parts (see the module docstring);
            otherwise the float taps, unrounded.
        interpolation: "bicubic" or "bilinear".
    """

    def __init__(self, input_size, output_size, first, count, exact_8_bit, interpolation):
        self.count = count
        self.exact_8_bit = exact_8_bit
        self.blocks = (count + _OUTPUTS_PER_BLOCK - 1) // _OUTPUTS_PER_BLOCK
        # The last block is padded with copies of the last output pixel (sliced off after).
        outputs = first + tf.minimum(tf.range(self.blocks * _OUTPUTS_PER_BLOCK), count - 1)
        outputs = tf.reshape(outputs, [self.blocks, _OUTPUTS_PER_BLOCK, 1])

        # PIL's filter for each output pixel: its centre, support and the input pixels under it.
        scale = tf.cast(input_size, tf.float64) / tf.cast(output_size, tf.float64)
        filter_scale = tf.maximum(scale, 1.0)
        kernel, kernel_support = FILTERS[interpolation]
        support = kernel_support * filter_scale
        center = (tf.cast(outputs, tf.float64) + 0.5) * scale
        # C's (int) conversion truncates toward zero, as tf.cast does.
        taps_start = tf.maximum(tf.cast(center - support + 0.5, tf.int32), 0)
        taps_end = tf.minimum(tf.cast(center + support + 0.5, tf.int32), input_size)

        # Each block reads one window of input pixels: from its first output's first tap on.
        starts = taps_start[:, 0, 0]
        self.window = tf.reduce_max(taps_end[:, -1, 0] - starts)
        self.starts = tf.minimum(starts, input_size - self.window)
        positions = self.starts[:, None, None] + tf.range(self.window)[None, None, :]  # [blocks, 1, window]
        offsets = tf.cast(positions, tf.float64) - center + 0.5
        weights = kernel(offsets * (1.0 / filter_scale))
        weights = tf.where((positions >= taps_start) & (positions < taps_end), weights, 0.0)
        # A running sum adds the taps one after another, in PIL's order (a tree reduction could differ
        # in the last bit); the zeros before the first tap change nothing.
        total = tf.math.cumsum(weights, axis=2)[..., -1:]
        weights = tf.where(total != 0.0, weights / total, weights)
        if exact_8_bit:
            taps = _fixed_point(weights)
            high = tf.round(taps / _TAP_SPLIT) * _TAP_SPLIT
            weights = tf.concat([high, taps - high], axis=1)
        self.matrices = tf.cast(weights, tf.float32)  # [blocks, parts * outputs, window]

    def _resample_blocks(self, rows, blocks):
        """Output pixels of the given blocks: [len(blocks) * _OUTPUTS_PER_BLOCK, M] from rows [input_size, M]."""
        starts = tf.gather(self.starts, blocks)
        windows = tf.gather(rows, tf.reshape(starts[:, None] + tf.range(self.window)[None, :], [-1]))
        windows = tf.reshape(tf.cast(windows, tf.float32), [tf.size(blocks), self.window, tf.shape(rows)[1]])
        sums = tf.matmul(tf.gather(self.matrices, blocks), windows)  # [blocks, parts * outputs, M]
        if self.exact_8_bit:
            parts = tf.reshape(tf.cast(sums, tf.int32), [tf.size(blocks), 2, _OUTPUTS_PER_BLOCK, -1])
            fixed_point = tf.reduce_sum(parts, axis=1) + (1 << (_PRECISION_BITS - 1))
            # Arithmetic shift: floor division, as in PIL.
            pixels = tf.cast(tf.clip_by_value(tf.bitwise.right_shift(fixed_point, _PRECISION_BITS), 0, 255), tf.float32)
        else:
            pixels = tf.clip_by_value(sums, 0.0, 255.0)
        return tf.reshape(pixels, [-1, tf.shape(rows)[1]])

    def __call__(self, rows):
        """Resamples rows [input_size, M] along axis 0 -> [count, M] float32 (whole numbers for exact_8_bit).

        Blocks are resampled in groups whose input windows take at most `_MAX_WINDOW_VALUES` values: one
        group for small images, many for large photographs. One loop serves both: the graph has no branch
        here (each branch is a function that tf.data instantiates again for every iterator).
        """
        window_values = tf.cast(self.window, tf.int64) * tf.cast(tf.shape(rows)[1], tf.int64)
        group = tf.clip_by_value(_MAX_WINDOW_VALUES // window_values, 1, tf.cast(self.blocks, tf.int64))
        group = tf.cast(group, tf.int32)
        groups = (self.blocks + group - 1) // group
        outputs = tf.TensorArray(tf.float32, size=groups, element_shape=[None, None], infer_shape=False)

        def resample_group(index, outputs):
            blocks = tf.range(index * group, tf.minimum((index + 1) * group, self.blocks))
            return index + 1, outputs.write(index, self._resample_blocks(rows, blocks))

        _, outputs = tf.while_loop(lambda index, _: index < groups, resample_group, (0, outputs))
        return outputs.concat()[: self.count]


def _resample_axis(images, axis, output_size, first, count, exact_8_bit, interpolation):
    """Resamples `axis` (1: vertical, 2: horizontal; a tensor) of [N, H, W, C] images to output pixels
    first..first + count - 1.

    Returns float32 (whole numbers for exact_8_bit).
    """
    # [H, N, W, C] or [W, C, N, H]: both are transposes of two blocks of dimensions (2-D transposes, which
    # TensorFlow does much faster than a general one), and the first is free for one image.
    # Each permutation is its own inverse.
    to_front = tf.where(tf.equal(axis, 1), [1, 0, 2, 3], [2, 3, 0, 1])
    moved = tf.transpose(images, to_front)
    input_size = tf.shape(moved)[0]

    def resample():
        rows = tf.reshape(moved, [input_size, -1])
        resampled = _BandedResampling(input_size, output_size, first, count, exact_8_bit, interpolation)(rows)
        return tf.reshape(resampled, tf.concat([[count], tf.shape(moved)[1:]], 0))

    # PIL skips a pass when its size is kept (pre-resized photographs: 3x faster than resampling).
    kept = tf.equal(input_size, output_size)
    resampled = tf.cond(kept, lambda: tf.cast(moved[first : first + count], tf.float32), resample)
    return tf.transpose(resampled, to_front)


def _static(size):
    return size if isinstance(size, int) else None


def resize_window(images, height, width, top, left, window_height, window_width, interpolation="bicubic"):
    """`resize_image(images, height, width)[..., top:top + window_height, left:left + window_width, :]`.

    Computes only the pixels of the window (a centre crop's cost is the crop's, not the whole resize's).

    Args:
        images: [N, H, W, C] or [H, W, C]; uint8 (resampled exactly like PIL resamples 8-bit images,
            rounding after each pass) or float with values in [0, 255] (same filter, unrounded taps,
            clipped to [0, 255]).
        height, width: the size of the whole resized image.
        top, left: the window's corner in the resized image.
        window_height, window_width: the window's size (Python ints make the graph static).
        interpolation: PIL's "bicubic" or "bilinear" filter.

    Returns:
        [N, window_height, window_width, C] (or without N); uint8 for uint8 input, float32 otherwise.
    """
    check_interpolation(interpolation)
    images = tf.convert_to_tensor(images)
    if images.shape.rank == 3:
        return resize_window(images[None], height, width, top, left, window_height, window_width, interpolation)[0]
    exact_8_bit = images.dtype == tf.uint8
    if not exact_8_bit:
        images = tf.cast(images, tf.float32)
    shape = tf.shape(images)

    # Pillow 13 resamples vertically first when the height shrinks by more than twice as many pixels as
    # the width (earlier versions always go horizontally first); the order changes the rounding in between.
    # The order is data, not a branch: the first pass's axis, size and window are chosen by `tf.where`.
    height_reduction = shape[1] - height
    vertical_first = (height_reduction > 0) & (height_reduction > (shape[2] - width) * 2)
    vertical = (1, height, top, window_height)  # (axis, output size, first output pixel, output pixels)
    horizontal = (2, width, left, window_width)
    first_pass = [tf.where(vertical_first, v, h) for v, h in zip(vertical, horizontal)]
    second_pass = [tf.where(vertical_first, h, v) for v, h in zip(vertical, horizontal)]
    resized = _resample_axis(images, *first_pass, exact_8_bit, interpolation)
    resized = _resample_axis(resized, *second_pass, exact_8_bit, interpolation)
    if exact_8_bit:
        resized = tf.cast(resized, tf.uint8)
    return tf.ensure_shape(resized, [images.shape[0], _static(window_height), _static(window_width), images.shape[3]])


def resize_image(images, height, width, interpolation="bicubic"):
    """Resizes like PIL's `Image.resize((width, height), Image.BICUBIC)` (or `BILINEAR`).

    Args:
        images: [N, H, W, C] or [H, W, C]; uint8 (resampled exactly like PIL resamples 8-bit images,
            rounding after each pass: equal to PIL's output) or float with values in [0, 255] (same
            filter, clipped to [0, 255], not rounded).
        height, width: the output size (ints or int32 scalar tensors).
        interpolation: "bicubic" or "bilinear".

    Returns:
        uint8 images for uint8 input, float32 otherwise; [N, height, width, C] (or [height, width, C]).
    """
    return resize_window(images, height, width, 0, 0, height, width, interpolation)


def resize_and_center_crop(images, resolution, interpolation="bicubic"):
    """torchvision's `Resize(resolution)` (shorter side) then `CenterCrop(resolution)` on PIL images.

    Args:
        images: [N, H, W, C] or [H, W, C], uint8 or float in [0, 255] (see `resize_image`).
        resolution: int, the side of the square output.
        interpolation: "bicubic" or "bilinear".

    Returns:
        [N, resolution, resolution, C] (or [resolution, resolution, C]); uint8 for uint8 input, else float32.
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    height, width = shape[-3], shape[-2]
    new_height, new_width = shorter_side_size(height, width, resolution)
    top, left = center_crop_offsets(new_height, new_width, resolution)
    return resize_window(images, new_height, new_width, top, left, resolution, resolution, interpolation)


def longer_side_size(height, width, resolution):
    """open_clip's `ResizeKeepRatio(longest=1)`: the longer side becomes `resolution`, the shorter
    `round(side * resolution / longer)` (halves to even, as Python's round)."""
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    ratio = tf.maximum(height, width) / resolution
    return tf.cast(tf.round(height / ratio), tf.int32), tf.cast(tf.round(width / ratio), tf.int32)


def resize_and_pad(images, resolution, interpolation="bicubic"):
    """open_clip's "longest" mode: the longer side resized to `resolution`, then centred on a black square.

    The padding is split as `CenterCropOrPad` splits it (the odd pixel at the bottom / right).
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    new_height, new_width = longer_side_size(shape[-3], shape[-2], resolution)
    resized = resize_image(images, new_height, new_width, interpolation)
    top, left = (resolution - new_height) // 2, (resolution - new_width) // 2
    padding = [[top, resolution - new_height - top], [left, resolution - new_width - left], [0, 0]]
    if images.shape.rank == 4:
        padding = [[0, 0]] + padding
    padded = tf.pad(resized, padding)
    return tf.ensure_shape(padded, images.shape[:-3].concatenate([resolution, resolution, images.shape[-1]]))


def resize_to_square(images, resolution, interpolation="bicubic", resize_mode="shortest"):
    """Images of any size to [resolution, resolution] by a checkpoint's resize mode.

    Args:
        images: [N, H, W, C] or [H, W, C], uint8 or float in [0, 255].
        resolution: the side of the square output.
        interpolation: "bicubic" or "bilinear" (PIL's filters).
        resize_mode: "shortest" (shorter side to `resolution`, centre crop; OpenAI's), "squash" (both
            sides to `resolution`, the aspect ratio lost) or "longest" (longer side, black padding).
    """
    if resize_mode == "shortest":
        return resize_and_center_crop(images, resolution, interpolation)
    if resize_mode == "squash":
        return resize_image(images, resolution, resolution, interpolation)
    if resize_mode == "longest":
        return resize_and_pad(images, resolution, interpolation)
    raise ValueError(f"Unknown resize_mode {resize_mode!r}; expected one of {', '.join(RESIZE_MODES)}")
