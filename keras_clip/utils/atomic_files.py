"""Files written under a temporary name and renamed into place, so a reader never sees half a file.

There is no fsync: every file written here is checked when read (a download by its SHA256, a
cached conversion by its header and sizes), so one damaged by a power cut is made again.
"""

import contextlib
import json
import os
import shutil
import uuid

import numpy as np


def temporary_name(path, suffix=""):
    """A unique hidden name beside `path` (same folder, so the final rename is atomic)."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}")


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path to write; renamed to `path` if the block succeeds, else removed.

    Args:
        path: the final path; its folder is created if needed.
        suffix: ending the temporary name must have (e.g. ".weights.h5" for Keras).
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = temporary_name(path, suffix)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Yields a file whose content replaces `path` only once the block succeeds."""
    with atomic_path(path) as temporary:
        with open(temporary, mode, encoding=encoding) as file:
            yield file


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a new temporary folder beside `path`; renamed to `path` if the block succeeds, else removed.

    `path` must not exist or be an empty folder (it is replaced).

    Raises:
        FileExistsError: `path` exists and is not an empty folder.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError(f"{path} already exists and is not an empty directory; choose a new one")
    temporary = temporary_name(path)
    os.makedirs(temporary)
    try:
        yield temporary
        if os.path.isdir(path):
            os.rmdir(path)  # empty (checked above)
        os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def save_npy(path, array):
    """`numpy.save` through a temporary file."""
    with atomic_write(path) as file:
        np.save(file, array)


def save_json(path, value):
    """`json.dump` (indented, UTF-8) through a temporary file."""
    with atomic_write(path, "w", encoding="utf-8") as file:
        json.dump(value, file, indent=1)
