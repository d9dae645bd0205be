"""OpenAI's released CLIP checkpoints: where they are, their SHA256, and a verified local cache.

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

from keras_clip.checkpoints.atomic_file import atomic_write
from keras_clip.checkpoints.errors import ChecksumError, DownloadError

OPENAI_BASE_URL = "https://openaipublic.azureedge.net/clip/models"

# name -> (file name, SHA256), as published in OpenAI's clip/clip.py (the hash is the URL's folder).
OPENAI_MODELS = {
    "RN50": ("RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"),
    "RN101": ("RN101.pt", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599"),
    "RN50x4": ("RN50x4.pt", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd"),
    "RN50x16": ("RN50x16.pt", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa"),
    "RN50x64": ("RN50x64.pt", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c"),
    "ViT-B/32": ("ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"),
    "ViT-B/16": ("ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"),
    "ViT-L/14": ("ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"),
    "ViT-L/14@336px": ("ViT-L-14-336px.pt", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"),
}

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60


def cache_root(cache_dir=None):
    """The cache folder: `cache_dir`, else `$KERAS_CLIP_CACHE`, else `~/.cache/keras_clip`."""
    folder = cache_dir or os.environ.get("KERAS_CLIP_CACHE") or os.path.join("~", ".cache", "keras_clip")
    return os.path.abspath(os.path.expanduser(os.fspath(folder)))


def checkpoint_url(name):
    """The download URL of a released model (`$KERAS_CLIP_BASE_URL` replaces OpenAI's server)."""
    file_name, sha256 = OPENAI_MODELS[name]
    base_url = os.environ.get("KERAS_CLIP_BASE_URL") or OPENAI_BASE_URL
    return f"{base_url.rstrip('/')}/{sha256}/{file_name}"


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


def _fetch(url, path, expected_sha256, progress):
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
                disable=not progress,
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


def download_checkpoint(name, cache_dir=None, progress=True):
    """The path of a released model's checkpoint in the cache, downloading it if needed.

    Args:
        name: one of OpenAI's model names, e.g. "ViT-B/32".
        cache_dir: cache folder (see `cache_root`).
        progress: show a progress bar while downloading.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: the transfer failed or was cut short (nothing is kept).
        ChecksumError: the downloaded bytes do not have the published SHA256 (nothing is kept).
    """
    if name not in OPENAI_MODELS:
        raise ValueError(f"Unknown CLIP model {name!r}; available models: {', '.join(OPENAI_MODELS)}")
    file_name, sha256 = OPENAI_MODELS[name]
    path = os.path.join(cache_root(cache_dir), file_name)
    if os.path.exists(path) and not os.path.isfile(path):
        raise DownloadError(f"{path} exists and is not a regular file")
    if os.path.isfile(path):
        if file_sha256(path) == sha256:
            return path
        warnings.warn(f"{path} exists but its SHA256 is not the published one; downloading it again", stacklevel=2)
        os.remove(path)
    _fetch(checkpoint_url(name), path, sha256, progress)
    return path
