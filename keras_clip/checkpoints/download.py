"""Downloading released checkpoints (`models/presets.py` says where they are) into a verified local cache.

The cache folder is `cache_dir=` if given, else `$KERAS_CLIP_CACHE`, else `~/.cache/keras_clip`.
A file is downloaded to a temporary name beside its final one, checked against its published
SHA256, and only then renamed into place; a cached file whose hash is wrong is fetched again
with a warning. A complete cache needs no network.

`$KERAS_CLIP_BASE_URL` points the downloads at a mirror with OpenAI's layout
(`<base>/<sha256>/<file name>`), e.g. an internal server for machines without internet access.

Example:
>>> path = download_checkpoint("ViT-B/32")   # ~/.cache/keras_clip/ViT-B-32.pt
"""

import hashlib
import http.client
import os
import urllib.request
import warnings

from keras_clip.errors import CacheFolderError, ChecksumError, DownloadError
from keras_clip.models.presets import OPENAI_BASE_URL, get_preset
from keras_clip.utils.atomic_files import atomic_write

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60


def cache_root(cache_dir=None):
    """The cache folder: `cache_dir`, else `$KERAS_CLIP_CACHE`, else `~/.cache/keras_clip` (it may not exist yet).

    Raises:
        CacheFolderError: the path, or a folder above it, is a file (named, with where the path came from).
    """
    origin = "cache_dir" if cache_dir else "$KERAS_CLIP_CACHE" if os.environ.get("KERAS_CLIP_CACHE") else None
    folder = cache_dir or os.environ.get("KERAS_CLIP_CACHE") or os.path.join("~", ".cache", "keras_clip")
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    ancestor = folder
    while not os.path.isdir(ancestor):
        if os.path.lexists(ancestor):
            where = "it" if ancestor == folder else ancestor
            hint = f"point {origin} at a folder" if origin else "remove that file"
            raise CacheFolderError(f"The keras_clip cache folder {folder} cannot be created: {where} is a file; {hint}")
        parent = os.path.dirname(ancestor)
        if parent == ancestor:
            break
        ancestor = parent
    return folder


def checkpoint_url(name):
    """The download URL of a released model (`$KERAS_CLIP_BASE_URL` replaces OpenAI's server)."""
    url = get_preset(name).checkpoint.url
    base_url = os.environ.get("KERAS_CLIP_BASE_URL")
    if base_url and url.startswith(OPENAI_BASE_URL + "/"):
        url = base_url.rstrip("/") + url[len(OPENAI_BASE_URL):]
    return url


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as file:
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        while True:
            count = file.readinto(buffer)
            if not count:
                return digest.hexdigest()
            digest.update(view[:count])


def _fetch(url, path, expected_sha256, verbose):
    """Download `url` to `path` through a temporary file, checking length and SHA256."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, atomic_write(path) as output:
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=os.path.basename(path),
                disable=not verbose,
            ) as bar:
                while True:
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    output.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise DownloadError(f"Download of {url} was interrupted after {received} of {total} bytes")
            if digest.hexdigest() != expected_sha256:
                raise ChecksumError(
                    f"Downloaded {url} but its SHA256 is {digest.hexdigest()}, not the published "
                    f"{expected_sha256}; the file was not kept"
                )
    except (OSError, ValueError, http.client.HTTPException) as error:
        if isinstance(error, DownloadError):
            raise
        raise DownloadError(f"Download of {url} failed after {received} bytes: {error}") from error


def download_checkpoint(name, cache_dir=None, verbose=True):
    """The path of a released model's checkpoint in the cache, downloading it if needed.

    Args:
        name: a released model's name (`keras_clip.models.presets`), e.g. "ViT-B/32".
        cache_dir: cache folder (see `cache_root`).
        verbose: show a progress bar while downloading.

    Returns:
        The path of the verified file.

    Raises:
        ValueError: an unknown name.
        DownloadError: the transfer failed or was cut short (nothing is kept).
        ChecksumError: the downloaded bytes do not have the published SHA256 (nothing is kept).
    """
    checkpoint = get_preset(name).checkpoint
    file_name, sha256 = checkpoint.file_name, checkpoint.sha256
    path = os.path.join(cache_root(cache_dir), file_name)
    if os.path.exists(path) and not os.path.isfile(path):
        raise DownloadError(f"{path} exists and is not a regular file")
    if os.path.isfile(path):
        if file_sha256(path) == sha256:
            return path
        warnings.warn(f"{path} exists but its SHA256 is not the published one; downloading it again", stacklevel=2)
        os.remove(path)
    _fetch(checkpoint_url(name), path, sha256, verbose)
    return path
