"""Small files that decode to huge images (decompression bombs), and headers that claim sizes they do not hold.

Every file is valid for its format's decoders (PIL opens each): only its size is hostile.
"""

import functools
import io
import struct
import zlib

import numpy as np
from PIL import Image

_ROWS_PER_SEGMENT = 64


def _chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@functools.lru_cache(maxsize=None)
def png_bomb(width=20000, height=20000, channels=3):
    """A valid PNG of black pixels, width x height, 8-bit RGB (20000 x 20000: 1.2 MB, 1.2 GB decoded).

    Built in well under a second: every 64 rows compress to the same deflate segment (a full flush resets
    the compressor), which is repeated; the zlib checksum of all-zero data is computed, not summed.
    """
    row_bytes = 1 + channels * width  # filter byte 0, then black samples
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(bytes(row_bytes * _ROWS_PER_SEGMENT)) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail_rows = height % _ROWS_PER_SEGMENT
    tail = compressor.compress(bytes(row_bytes * tail_rows)) + compressor.flush(zlib.Z_FINISH)
    total = row_bytes * height
    adler = ((total % 65521) << 16) | 1  # Adler-32 of zeros: a = 1, b = length (mod 65521)
    stream = b"\x78\xda" + segment * (height // _ROWS_PER_SEGMENT) + tail + struct.pack(">I", adler)
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def gif_frames(width, height, frames, colour_index=1):
    """An animated GIF of `frames` solid frames of width x height (each compresses to a few hundred bytes
    per megapixel; TensorFlow's decoder decompresses all of them)."""
    palette = list(range(256)) * 3
    images = []
    for frame in range(frames):
        image = Image.fromarray(np.full((height, width), (colour_index + frame) % 256, np.uint8), "P")
        image.putpalette(palette)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], optimize=False, disposal=1)
    return buffer.getvalue()


def gif_with_frame_size(data, width, height):
    """A copy of a GIF whose first image descriptor claims width x height (the screen keeps its size)."""
    data = bytearray(data)
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[position] == 0x21:  # skip extensions: label, then sub-blocks
        position += 2
        while data[position]:
            position += 1 + data[position]
        position += 1
    assert data[position] == 0x2C, "no image descriptor"
    struct.pack_into("<HH", data, position + 5, width, height)
    return bytes(data)


def jpeg_with_size(data, width, height):
    """A copy of a baseline or progressive JPEG whose frame header (SOF) claims width x height."""
    data = bytearray(data)
    position = 2
    while data[position + 1] not in (0xC0, 0xC1, 0xC2):
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    struct.pack_into(">HH", data, position + 5, height, width)
    return bytes(data)


def webp_lossless_header(width, height, payload=b"\0" * 16):
    """A WebP (VP8L) whose header claims width x height (each at most 16384), with `payload` as its data."""
    bits = (width - 1) | ((height - 1) << 14)
    chunk = b"\x2f" + struct.pack("<I", bits) + payload
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(chunk)) + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


def bmp_header(width, height, bits=24, length=None):
    """A BMP header claiming width x height at `bits` per pixel, followed by zeros up to `length` bytes."""
    header = b"BM" + struct.pack("<IHHI", 0, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits,
                                                                      0, 0, 2835, 2835, 0, 0)  # fmt: skip
    return header + bytes(max(0, (length or 54) - len(header)))


def _first_image_data(data):
    """(start, end) of the first image's sub-block chain in a GIF (end: just past its zero length byte)."""
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[position] == 0x21:
        position += 2
        while data[position]:
            position += 1 + data[position]
        position += 1
    flags = data[position + 9]
    start = position + 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0) + 1
    end = start
    while data[end]:
        end += 1 + data[end]
    return start, end + 1


def gif_with_sub_blocks(data, size):
    """A copy of a GIF whose first image's data is re-split into sub-blocks of `size` bytes (1..255): the same
    image to every decoder, but a chain of many more sub-blocks to follow."""
    start, end = _first_image_data(data)
    payload, position = b"", start
    while data[position]:
        payload += data[position + 1 : position + 1 + data[position]]
        position += 1 + data[position]
    chain = b"".join(bytes([len(payload[i : i + size])]) + payload[i : i + size] for i in range(0, len(payload), size))
    return data[:start] + chain + b"\0" + data[end:]


def gif_with_extensions(data, count):
    """A copy of a GIF with `count` empty comment extensions before its first image."""
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return data[:position] + b"\x21\xfe\x00" * count + data[position:]
