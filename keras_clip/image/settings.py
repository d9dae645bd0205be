"""How a checkpoint's images are prepared, as data (no TensorFlow): `models/presets.py` records it per checkpoint."""

import dataclasses

# OpenAI's CLIP (clip/clip.py `_transform`), RGB.
OPENAI_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
INTERPOLATIONS = ("bicubic", "bilinear")
RESIZE_MODES = ("shortest", "squash", "longest")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Resize to a square (`resize_mode`, PIL's `interpolation`), scale to [0, 1], normalise with mean and std.

    Attributes:
        image_resolution: side of the square model input.
        mean, std: per RGB channel, of pixels scaled to [0, 1].
        interpolation: "bicubic" or "bilinear" (PIL's antialiased filters).
        resize_mode: "shortest" (shorter side, centre crop; OpenAI's), "squash" or "longest" (padded).
    """

    image_resolution: int
    mean: tuple = OPENAI_IMAGE_MEAN
    std: tuple = OPENAI_IMAGE_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"

    def __post_init__(self):
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
