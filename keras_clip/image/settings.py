"""How a checkpoint's images are prepared, as data (no TensorFlow): `models/presets.py` records it per checkpoint."""

import dataclasses
import operator

# OpenAI's CLIP (clip/clip.py `_transform`), RGB.
OPENAI_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
INTERPOLATIONS = ("bicubic", "bilinear")
RESIZE_MODES = ("shortest", "squash", "longest")
# The most pixels (width x height) an encoded image may have to be decoded: PIL's `Image.MAX_IMAGE_PIXELS`
# (PIL warns above it and refuses twice as many). Decoded as RGB, such an image takes 512 MB.
DEFAULT_MAX_PIXELS = 178_956_970


def check_max_pixels(max_pixels):
    """`max_pixels` as an int, or None (no limit).

    Raises:
        ValueError: it is not a positive int or None.
    """
    if max_pixels is None:
        return None
    try:
        value = operator.index(max_pixels)  # ints and numpy ints, not floats
    except TypeError:
        value = 0
    if value < 1 or isinstance(max_pixels, bool):
        raise ValueError(f"max_pixels must be a positive int or None (no limit), got {max_pixels!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Resize to a square (`resize_mode`, PIL's `interpolation`), scale to [0, 1], normalise with mean and std.

    Attributes:
        image_resolution: side of the square model input.
        mean, std: per RGB channel, of pixels scaled to [0, 1].
        interpolation: "bicubic" or "bilinear" (PIL's antialiased filters).
        resize_mode: "shortest" (shorter side, centre crop; OpenAI's), "squash" or "longest" (padded).
        max_pixels: encoded images of more pixels (width x height, read from their header) are refused
            before they are decoded; None: no limit. Not a property of the weights: a safety limit that
            travels with the model (its config, its SavedModel export).
    """

    image_resolution: int
    mean: tuple = OPENAI_IMAGE_MEAN
    std: tuple = OPENAI_IMAGE_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self):
        object.__setattr__(self, "max_pixels", check_max_pixels(self.max_pixels))
        if self.interpolation not in INTERPOLATIONS:
            expected = ", ".join(INTERPOLATIONS)
            raise ValueError(f"Unknown interpolation {self.interpolation!r}; expected one of {expected}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"Unknown resize_mode {self.resize_mode!r}; expected one of {', '.join(RESIZE_MODES)}")
        for name in ("mean", "std"):
            values = tuple(float(value) for value in getattr(self, name))
            if len(values) != 3 or (name == "std" and min(values) <= 0):
                raise ValueError(f"{name} must be 3 numbers (RGB){', all positive' if name == 'std' else ''}, "
                                 f"got {getattr(self, name)!r}")  # fmt: skip
            object.__setattr__(self, name, values)
