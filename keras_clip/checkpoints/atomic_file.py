"""Files written under a temporary name and renamed into place, so a reader never sees half a file.

There is no fsync: every file written here is checked when read (a download by its SHA256, a
cached conversion by its header and sizes), so one damaged by a power cut is made again.
"""

import contextlib
import os
import uuid


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
def atomic_write(path):
    """Yields a binary file whose content replaces `path` only once the block succeeds."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            yield file
