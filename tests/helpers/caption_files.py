"""Caption datasets on disk, in every layout `keras_clip.data` reads, made from real photographs.

`captioned_photos(n)` gives small crops of scikit-learn's and scikit-image's bundled photographs
with captions; `write_caption_dataset(root, layout, samples)` writes them as a CSV, TSV or JSON-lines
file beside the images, a folder with side-car `.txt` files, or WebDataset-style tar shards, and
returns what to pass to `caption_dataset` as its source. `corrupt_image(kind)` gives bytes that are
not a decodable image.
"""

import dataclasses
import io
import json
import os
import tarfile

import numpy as np
from PIL import Image

from tests.helpers.images import encode, photographs

LAYOUTS = ("csv", "tsv", "jsonl", "folder", "tar")
_WORDS = ("red", "small", "bright", "old", "quiet", "wet", "striped", "distant", "round", "tall")
_SUBJECTS = ("cat", "temple", "flower", "cup of coffee", "astronaut", "rocket", "galaxy", "retina")


@dataclasses.dataclass
class CaptionedPhoto:
    """One sample: `name` (file stem), its encoded image and format, and its captions."""

    name: str
    pixels: np.ndarray
    fmt: str
    data: bytes
    captions: list

    @property
    def filename(self):
        return f"{self.name}.{'jpg' if self.fmt == 'jpeg' else self.fmt}"


def captioned_photos(count, seed=0, captions_per_photo=1, min_side=24, max_side=64, formats=("png", "jpeg")):
    """`count` small crops of real photographs (sizes and aspect ratios vary) with distinct captions."""
    rng = np.random.default_rng(seed)
    photos = list(photographs().items())
    samples = []
    for index in range(count):
        subject, photo = photos[index % len(photos)]
        crop_height, crop_width = (int(rng.integers(min(photo.shape[:2]) // 3, min(photo.shape[:2]))) for _ in "hw")
        top = int(rng.integers(0, photo.shape[0] - crop_height + 1))
        left = int(rng.integers(0, photo.shape[1] - crop_width + 1))
        size = (int(rng.integers(min_side, max_side + 1)), int(rng.integers(min_side, max_side + 1)))
        crop = Image.fromarray(photo[top : top + crop_height, left : left + crop_width]).resize(size, Image.LANCZOS)
        pixels = np.asarray(crop)
        fmt = formats[index % len(formats)]
        captions = [
            f"photo {index}: a {_WORDS[(index + k) % len(_WORDS)]} {subject}, take {k}"
            for k in range(captions_per_photo)
        ]
        samples.append(CaptionedPhoto(f"sample_{index:03d}", pixels, fmt, encode(pixels, fmt), captions))
    return samples


def corrupt_image(kind):
    """Bytes a decoder must reject: "truncated" (half a JPEG), "text", "empty" or "bad_png" (broken data)."""
    photo = photographs()["chelsea"][:40, :40]
    if kind == "truncated":
        data = encode(photo, "jpeg")
        return data[: len(data) // 2]
    if kind == "text":
        return b"this is not an image, just text saved with an image's name\n"
    if kind == "empty":
        return b""
    if kind == "bad_png":
        data = bytearray(encode(photo, "png"))
        data[60:120] = b"\0" * 60  # inside the compressed pixel data: the checksum fails
        return bytes(data)
    raise ValueError(f"unknown corruption {kind!r}")


def write_file(path, data):
    """Writes bytes (or text) to a temporary name, then renames it into place."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.partial"
    with open(temporary, "wb") as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(temporary, path)


def _write_images(folder, samples, skip=()):
    for sample in samples:
        if sample.name not in skip:
            write_file(os.path.join(folder, sample.filename), sample.data)


def _table(samples, delimiter, columns, folder_name):
    header = delimiter.join(columns)
    lines = [header]
    for sample in samples:
        path = f"{folder_name}/{sample.filename}" if folder_name else sample.filename
        for caption in sample.captions:  # one row per (image, caption): images repeat
            quoted = '"' + caption.replace('"', '""') + '"' if (delimiter in caption or '"' in caption) else caption
            lines.append(delimiter.join([path, quoted]))
    return "\n".join(lines) + "\n"


def write_caption_dataset(root, layout, samples, missing=(), columns=("filepath", "caption"), shards=2):
    """Writes `samples` in `layout` under `root`; returns the source to pass to `caption_dataset`.

    Args:
        root: a folder (created).
        layout: one of `LAYOUTS`.
        samples: `CaptionedPhoto`s, in the order the source lists them.
        missing: names of samples whose image is listed but not written (caption files only; in a
            tar shard such a sample has its captions and no image).
        columns: the image and caption column names (or JSON keys).
        shards: number of tar shards (samples spread in order, first shards fuller).
    """
    if layout in ("csv", "tsv"):
        _write_images(os.path.join(root, "images"), samples, skip=missing)
        path = os.path.join(root, f"captions.{layout}")
        write_file(path, _table(samples, "," if layout == "csv" else "\t", columns, "images"))
        return path
    if layout == "jsonl":
        _write_images(os.path.join(root, "images"), samples, skip=missing)
        path = os.path.join(root, "captions.jsonl")
        records = [
            {columns[0]: f"images/{s.filename}", columns[1]: s.captions[0] if len(s.captions) == 1 else s.captions}
            for s in samples
        ]
        write_file(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
        return path
    if layout == "folder":
        folder = os.path.join(root, "photos")
        _write_images(folder, samples, skip=missing)
        for sample in samples:
            write_file(os.path.join(folder, sample.name + ".txt"), "\n".join(sample.captions) + "\n")
        return folder
    if layout == "tar":
        return write_tar_shards(os.path.join(root, "shards"), samples, shards, missing=missing)
    raise ValueError(f"unknown layout {layout!r}; known: {LAYOUTS}")


def tar_bytes(members, format=tarfile.PAX_FORMAT, compress=False):
    """A tar archive (bytes) of (name, bytes) members, in order; `compress` gzips it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w", format=format) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sample_members(sample, missing=False):
    """The tar members of one sample: `key.<ext>` image (unless `missing`) and `key.txt` captions."""
    members = [] if missing else [(sample.filename, sample.data)]
    return members + [(f"{sample.name}.txt", ("\n".join(sample.captions) + "\n").encode("utf-8"))]


def write_tar_shards(folder, samples, shards, missing=(), compress=False):
    """Samples spread over `shards` shards `shard-000.tar`...; returns the `{000..NNN}` pattern."""
    per_shard = -(-len(samples) // shards)
    extension = "tar.gz" if compress else "tar"
    for shard in range(shards):
        members = []
        for sample in samples[shard * per_shard : (shard + 1) * per_shard]:
            members += sample_members(sample, missing=sample.name in missing)
        write_file(os.path.join(folder, f"shard-{shard:03d}.{extension}"), tar_bytes(members, compress=compress))
    return os.path.join(folder, f"shard-{{000..{shards - 1:03d}}}.{extension}")
