"""Files written under a temporary name and renamed into place, so a reader never sees half a file.

There is no fsync: every file written here is checked when read (a download by its SHA256, a
cached conversion by its header and sizes), so one damaged by a power cut is made again.

A temporary name says which process writes it: `.<name>.<pid>-<host>.<random>.tmp<suffix>`, `<host>`
a short hash of the machine's name (a cache folder may be shared between machines). A process
killed while writing leaves that file behind; `remove_stale_temporaries` removes those whose writer
no longer runs, and every atomic write calls it on its folder first, so nothing written here outlives
a kill except under its final name or a temporary name the next write into the folder removes.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid

import numpy as np

HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
TEMPORARY_NAME = re.compile(r"^\..+\.(?P<pid>\d{1,10})(?:-(?P<host>[0-9a-f]{8}))?\.[0-9a-f]{8}\.tmp")
# Temporary names without a host, as earlier versions wrote them: removed only this long after their last write.
UNTAGGED_GRACE_SECONDS = 3600


def temporary_name(path, suffix=""):
    """A unique hidden name beside `path` (same folder, so the final rename is atomic), naming this process."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(folder, f".{name}.{os.getpid()}-{HOST}.{uuid.uuid4().hex[:8]}.tmp{suffix}")


def process_is_running(pid):
    """True if a process with this id exists on this machine (perhaps another user's)."""
    if not 0 < pid < 1 << 31:  # not a process id (0 would signal this process's group)
        return False
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def remove_stale_temporaries(folder):
    """Remove the temporary files and folders in `folder` left by writers that no longer run.

    Only names `temporary_name` makes are considered; a writer on another machine is never judged
    (its host differs), nor one of this machine that still runs. Missing folders are ignored.

    Returns:
        The paths removed.

    Example:
    >>> remove_stale_temporaries(os.path.expanduser("~/.cache/keras_clip/converted"))
    []
    """
    try:
        names = os.listdir(folder)
    except OSError:  # missing, not a folder, unreadable: nothing to clean here
        return []
    removed = []
    for name in names:
        match = TEMPORARY_NAME.match(name)
        if match is None or match["host"] not in (HOST, None) or process_is_running(int(match["pid"])):
            continue
        path = os.path.join(folder, name)
        try:
            if match["host"] is None and time.time() - os.lstat(path).st_mtime < UNTAGGED_GRACE_SECONDS:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except FileNotFoundError:  # another process removed it first
            continue
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path to write; renamed to `path` if the block succeeds, else removed.

    Args:
        path: the final path; its folder is created if needed.
        suffix: ending the temporary name must have (e.g. ".weights.h5" for Keras).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(folder)
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
def atomic_directory(path, replace=False):
    """Yields a new temporary folder beside `path`; renamed to `path` if the block succeeds, else removed.

    Args:
        path: the final folder. It must not exist or be an empty folder, unless `replace`.
        replace: an existing folder at `path` is replaced, once the new one is whole (moved aside under a
            temporary name, the new one renamed into place, then the old one removed).

    Raises:
        FileExistsError: `path` exists and is not an empty directory (and not `replace`).
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{path} already exists and is not a directory")
    if os.path.isdir(path) and os.listdir(path) and not replace:
        raise FileExistsError(f"{path} already exists and is not an empty directory; choose a new one")
    remove_stale_temporaries(os.path.dirname(path))
    temporary = temporary_name(path)
    os.makedirs(temporary)
    try:
        yield temporary
        old = temporary_name(path)
        if os.path.isdir(path):
            os.replace(path, old)
        os.replace(temporary, path)
        shutil.rmtree(old, ignore_errors=True)
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
