"""Image files on disk (or any filesystem TensorFlow reads, e.g. gs://): which names are images, and folder walks.

One rule everywhere: a file is an image by its suffix (`IMAGE_SUFFIXES`, any case), and hidden files
and folders (names starting with ".") are skipped. Walks are sorted, so every machine sees the same order.
"""

import os

import tensorflow as tf

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")


def is_image_file(name):
    """True if the file name ends with an image suffix (case-insensitive)."""
    return os.fspath(name).lower().endswith(IMAGE_SUFFIXES)


def is_hidden(name):
    return os.path.basename(os.fspath(name)).startswith(".")


def walk_files(folder):
    """Every non-hidden file under `folder`, recursively, in sorted order (hidden folders skipped).

    Raises:
        FileNotFoundError: `folder` does not exist or is not a folder.
    """
    folder = os.fspath(folder)
    if not tf.io.gfile.isdir(folder):
        raise FileNotFoundError(f"{folder} does not exist or is not a folder")
    paths = []
    for directory, subfolders, files in tf.io.gfile.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not is_hidden(name))
        paths.extend(os.path.join(directory, name) for name in files if not is_hidden(name))
    return sorted(paths)


def list_image_files(folder):
    """The image files under `folder` (recursively, sorted; see `walk_files`).

    Raises:
        FileNotFoundError: `folder` does not exist or is not a folder.
        ValueError: it holds no image file.

    Example:
    >>> list_image_files("photos/")
    ['photos/a.jpg', 'photos/trips/b.png']
    """
    paths = [path for path in walk_files(folder) if is_image_file(path)]
    if not paths:
        raise ValueError(f"No image files ({', '.join(IMAGE_SUFFIXES)}) under {os.fspath(folder)}")
    return paths
