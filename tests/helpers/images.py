"""Real photographs in many encodings, and OpenAI's preprocessing pipeline reproduced with PIL + numpy.

Photographs: the two JPEGs that ship with scikit-learn (`load_sample_images`) and scikit-image's
bundled data (no download). `encode(pixels, fmt)` writes them in every format the preprocessing
reads; `reference_preprocess` is OpenAI's `clip.load` preprocessing (torchvision on a PIL image)
without torchvision, following torchvision's source for PIL inputs:
- `Resize(n, BICUBIC)`: shorter side -> n, longer -> `int(n * long / short)`; no resampling when the
  size is unchanged; otherwise PIL's `Image.resize((w, h), BICUBIC)` (PIL itself falls back to nearest
  for palette images, and resizes RGBA with premultiplied alpha);
- `CenterCrop(n)`: corner `int(round((side - n) / 2.0))`, then `Image.crop`;
- `convert("RGB")`, `ToTensor()` (uint8 / 255 in float32), `Normalize(mean, std)` in float32.
"""

import functools
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

OPENAI_MEAN = np.array((0.48145466, 0.4578275, 0.40821073), np.float32)
OPENAI_STD = np.array((0.26862954, 0.26130258, 0.27577711), np.float32)


@functools.lru_cache(maxsize=None)
def photographs():
    """Name -> uint8 RGB photograph [H, W, 3], from scikit-learn's and scikit-image's bundled images."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    samples = load_sample_images()
    images = {
        "china": samples.images[0],
        "flower": samples.images[1],
        "astronaut": data.astronaut(),
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
        "rocket": data.rocket(),
        "hubble": data.hubble_deep_field(),
        "retina": data.retina(),
    }
    return {name: np.ascontiguousarray(image[..., :3]) for name, image in images.items()}


def resized(pixels, width, height):
    """A photograph resampled to another size (Lanczos), to vary sizes and aspect ratios."""
    return np.asarray(Image.fromarray(pixels).resize((width, height), Image.LANCZOS))


@functools.lru_cache(maxsize=None)
def varied_photographs():
    """(name, uint8 RGB pixels) of real photographs: landscape, portrait, square, panoramas, tiny, large."""
    photos = photographs()
    return (
        ("china_landscape", photos["china"]),
        ("flower_landscape", photos["flower"]),
        ("astronaut_square", photos["astronaut"]),
        ("coffee_landscape", photos["coffee"]),
        ("chelsea_odd_size", photos["chelsea"]),
        ("hubble_near_square", photos["hubble"]),
        ("rocket_portrait", np.ascontiguousarray(photos["rocket"][:, 170:470])),
        ("china_tall_portrait", np.ascontiguousarray(photos["china"][:, 250:401])),
        ("flower_panorama", np.ascontiguousarray(photos["flower"][150:251])),
        ("coffee_smaller_than_224", resized(photos["coffee"], 150, 100)),
        ("chelsea_tiny_portrait", resized(photos["chelsea"], 41, 67)),
        ("retina_large", photos["retina"]),
        ("astronaut_huge", resized(photos["astronaut"], 3000, 2000)),
    )


def encode(pixels, fmt, **options):
    """Encodes uint8 RGB pixels [H, W, 3] with PIL.

    fmt: "jpeg", "jpeg_progressive", "jpeg_cmyk", "jpeg_gray", "png", "png_rgba", "png_gray",
    "png_gray_alpha", "png_palette", "png16", "png16_gray", "gif", "bmp", "bmp_rgba", "bmp_gray",
    "bmp_palette8", "bmp_palette4", "bmp_1bit", "webp".
    """
    image = Image.fromarray(pixels)
    if fmt in ("png16", "png16_gray"):
        samples = pixels if fmt == "png16" else np.asarray(image.convert("L"))
        # High bytes carry the picture, low bytes something else: a decoder must keep the high byte.
        return png_bytes((samples.astype(np.uint16) << 8) | (255 - samples))
    if fmt == "bmp_palette4":
        return bmp_palette_bytes(image.quantize(16), bits=4)
    conversions = {
        "jpeg_cmyk": "CMYK", "jpeg_gray": "L", "png_rgba": "RGBA", "png_gray": "L", "png_gray_alpha": "LA",
        "bmp_rgba": "RGBA", "bmp_gray": "L", "bmp_1bit": "1",
    }  # fmt: skip
    if fmt in conversions:
        image = image.convert(conversions[fmt])
    if fmt in ("png_palette", "gif", "bmp_palette8"):
        image = image.quantize(256)
    if fmt == "png_rgba":
        alpha = np.linspace(0, 255, pixels.shape[1]).astype(np.uint8)
        image.putalpha(Image.fromarray(np.broadcast_to(alpha, pixels.shape[:2]).copy()))
    container = fmt.split("_")[0]
    pil_format = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "bmp": "BMP", "webp": "WEBP"}[container]
    if fmt == "jpeg_progressive":
        options.setdefault("progressive", True)
    if container == "jpeg":
        options.setdefault("quality", 90)
    if container == "webp":
        options.setdefault("lossless", True)
    if container == "png":
        options.setdefault("compress_level", 1)  # fast; the pixels are the same
    buffer = io.BytesIO()
    image.save(buffer, pil_format, **options)
    return buffer.getvalue()


def expected_rgb(data):
    """The RGB content of encoded bytes, as PIL decodes them, except 16-bit grayscale PNGs.

    PIL's `convert("RGB")` of a 16-bit grayscale image saturates every value above 255; the right
    content (and what 16-bit colour PNGs give in PIL) is each sample's high byte.
    """
    image = Image.open(io.BytesIO(data))
    if image.mode in ("I;16", "I;16B", "I"):
        return np.repeat((np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def png_bytes(samples):
    """A PNG of uint8 or uint16 samples [H, W] or [H, W, C] (C = 1..4), written without PIL (PIL has no 16-bit RGB)."""
    samples = np.asarray(samples)
    height, width = samples.shape[:2]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    depth = 16 if samples.dtype == np.uint16 else 8
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = samples.astype(">u2" if depth == 16 else "u1").reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()  # filter type 0 per row

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def bmp_palette_bytes(image, bits):
    """An uncompressed palette BMP (1, 4 or 8 bits per pixel, bottom-up) of a PIL "P" image."""
    indices = np.asarray(image, np.uint8)
    height, width = indices.shape
    palette = np.asarray(image.getpalette()[: 3 * (1 << bits)], np.uint8).reshape(-1, 3)
    entries = np.zeros((1 << bits, 4), np.uint8)
    entries[: len(palette), :3] = palette[:, ::-1]  # blue, green, red, reserved
    per_byte = 8 // bits
    padded = np.zeros((height, -(-width // per_byte) * per_byte), np.uint8)
    padded[:, :width] = indices
    grouped = padded.reshape(height, -1, per_byte).astype(np.uint16)
    packed = np.zeros(grouped.shape[:2], np.uint16)
    for position in range(per_byte):
        packed |= grouped[:, :, position] << (8 - bits * (position + 1))
    row_bytes = (bits * width + 31) // 32 * 4
    rows = np.zeros((height, row_bytes), np.uint8)
    rows[:, : packed.shape[1]] = packed.astype(np.uint8)
    pixels = rows[::-1].tobytes()
    offset = 14 + 40 + entries.size
    file_header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, len(pixels), 2835, 2835, 1 << bits, 0)
    return file_header + info + entries.tobytes() + pixels


def reference_preprocess(image, resolution, mean=OPENAI_MEAN, std=OPENAI_STD, interpolation="bicubic",
                         resize_mode="shortest"):  # fmt: skip
    """The PIL/torchvision preprocessing of one image (PIL image or encoded bytes) -> float32 [R, R, 3] (NHWC).

    OpenAI's by default; open_clip's `image_transform` for other settings: torchvision's `Resize(R)` +
    `CenterCrop(R)` ("shortest"), `Resize((R, R))` ("squash"), or `ResizeKeepRatio(R, longest=1)` +
    `CenterCropOrPad(R)` ("longest"), on the PIL image; then RGB, `ToTensor`, `Normalize(mean, std)`.
    """
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    pil_filter = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[interpolation]
    width, height = image.size
    if resize_mode == "squash":
        image = image.resize((resolution, resolution), pil_filter)
    elif resize_mode == "longest":
        ratio = max(height / resolution, width / resolution)
        new_width, new_height = round(width / ratio), round(height / ratio)
        image = image.resize((new_width, new_height), pil_filter).convert("RGB")
        canvas = Image.new("RGB", (resolution, resolution))
        canvas.paste(image, ((resolution - new_width) // 2, (resolution - new_height) // 2))
        image = canvas
    else:
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = resolution, int(resolution * long / short)
        new_width, new_height = (new_short, new_long) if width <= height else (new_long, new_short)
        if (new_width, new_height) != (width, height):
            image = image.resize((new_width, new_height), pil_filter)
        top = int(round((new_height - resolution) / 2.0))
        left = int(round((new_width - resolution) / 2.0))
        image = image.crop((left, top, left + resolution, top + resolution))
    pixels = np.asarray(image.convert("RGB"), np.uint8).astype(np.float32) / np.float32(255.0)
    return (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def large_jpeg(width=6000, height=4000, quality=90):
    """A real photograph enlarged to `width` x `height`, as JPEG bytes (e.g. a 24-megapixel camera image)."""
    photo = photographs()["china"]
    image = Image.fromarray(photo).resize((width, height), Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def write_photos(folder, count=5):
    """`count` photographs as PNG and JPEG files under `folder` (one in a subfolder); their sorted paths."""
    os.makedirs(folder / "sub", exist_ok=True)
    paths = []
    for index, pixels in zip(range(count), photographs().values()):
        fmt = "jpeg" if index % 2 else "png"
        path = folder / ("sub" if index == 0 else "") / f"photo{index}.{'jpg' if fmt == 'jpeg' else 'png'}"
        path.write_bytes(encode(pixels, fmt))
        paths.append(str(path))
    return sorted(paths)
