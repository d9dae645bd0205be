"""Where caption data lives: CSV/TSV and JSON-lines files, folders with side-car captions, tar shards.

`read_caption_index` turns a caption file or a folder into a `CaptionIndex` (image paths and their
captions) in Python, once, before training; `expand_shards` turns a shard pattern into file paths.
Every mistake a user can make here (missing column, empty folder, unreadable line, shard not found)
raises a `ValueError` or `FileNotFoundError` that names the file and what to do. What can only be
found while reading images (a missing or corrupt image) is left to the pipeline, which skips it.
"""

import csv
import dataclasses
import io
import itertools
import json
import logging
import os
import posixpath
import re

import tensorflow as tf

from keras_clip.image.files import IMAGE_SUFFIXES, is_image_file, walk_files

FORMATS = ("csv", "tsv", "jsonl", "folder", "tar")
# Column (or JSON key) names tried, in order, when none is given. "filepath" and "title" are OpenCLIP's.
IMAGE_COLUMNS = ("filepath", "image", "image_path", "file_name", "filename", "file", "path")
CAPTION_COLUMNS = ("caption", "captions", "title", "text")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_BRACES = re.compile(r"\{([^{}]*)\}")
_NUMERIC_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")
_logger = logging.getLogger("keras_clip.data")


@dataclasses.dataclass(frozen=True)
class CaptionIndex:
    """Images and where their captions are: a list each, one entry per image.

    Attributes:
        image_paths: image file paths; relative ones in a caption file are joined to its folder (or `image_root`),
            absolute ones and URLs like gs:// are kept as given.
        captions: for caption files, each image's captions (a list of one or more strings); else None.
        caption_files: for folders, each image's side-car `.txt` path (one caption per non-empty line);
            else None.
    """

    image_paths: list
    captions: list = None
    caption_files: list = None

    def __len__(self):
        return len(self.image_paths)


def infer_format(source):
    """The format name ("csv", "tsv", "jsonl", "folder" or "tar") a source's path or paths suggest."""
    if isinstance(source, (list, tuple)):
        if source and all(_is_tar_name(str(path)) for path in source):
            return "tar"
        raise ValueError(
            "A list of sources must be tar shards (.tar, .tar.gz or .tgz files); got "
            f"{list(source)[:3]}{' ...' if len(source) > 3 else ''}"
        )
    source = os.fspath(source)
    if tf.io.gfile.isdir(source):
        return "folder"
    if _is_tar_name(source):
        return "tar"
    suffix = os.path.splitext(source)[1].lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    if not tf.io.gfile.exists(source) and not _has_pattern(source):
        raise FileNotFoundError(f"Caption source {source!r} does not exist")
    raise ValueError(
        f"Cannot tell the format of caption source {source!r} from its name: pass format= one of {FORMATS} "
        "(.csv, .tsv, .jsonl and .tar/.tar.gz names and folders are recognised)"
    )


def _is_tar_name(path):
    return path.lower().endswith(_TAR_SUFFIXES)


def _has_pattern(path):
    return any(character in path for character in "*?[{")


def read_caption_index(source, format=None, image_column=None, caption_column=None, image_root=None):
    """Reads a caption file or a folder of captioned images into a `CaptionIndex`.

    Args:
        source: a CSV/TSV or JSON-lines file, or a folder.
        format: "csv", "tsv", "jsonl" or "folder"; None infers it from `source`.
        image_column, caption_column: column (CSV/TSV) or key (JSON lines) holding the image path and
            the caption; None takes the first present of `IMAGE_COLUMNS` / `CAPTION_COLUMNS`.
        image_root: folder relative image paths start from; None: the caption file's folder.

    Returns:
        A `CaptionIndex`. Rows naming the same image are merged into one image with several
        captions (in file order); rows with an empty caption are left out (with a warning).

    Raises:
        FileNotFoundError: the source does not exist.
        ValueError: a missing column or key, an unreadable line, or no usable image.

    Example:
    >>> index = read_caption_index("captions.csv")
    >>> index.image_paths[0], index.captions[0]
    ('photos/0001.jpg', ['a dog on a beach'])
    """
    format = format or infer_format(source)
    source = os.fspath(source)
    if format == "folder":
        return read_caption_folder(source)
    if format not in ("csv", "tsv", "jsonl"):
        raise ValueError(f"read_caption_index reads {('csv', 'tsv', 'jsonl', 'folder')}, got format={format!r}")
    if not tf.io.gfile.exists(source):
        raise FileNotFoundError(f"Caption file {source!r} does not exist")
    if tf.io.gfile.isdir(source):
        raise ValueError(f"Caption source {source!r} is a folder, not a {format} file: pass format='folder'")
    root = image_root if image_root is not None else os.path.dirname(source)
    with tf.io.gfile.GFile(source, "rb") as file:
        text = file.read().decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of a column name
    if format == "jsonl":
        rows = _jsonl_rows(text, source, image_column, caption_column)
    else:
        rows = _table_rows(text, source, "," if format == "csv" else "\t", image_column, caption_column)
    return _group_rows(rows, source, root)


def _pick_column(available, requested, candidates, what, source, option):
    if requested is not None:
        if requested not in available:
            raise ValueError(
                f"{source!r} has no {what} column {requested!r}; its columns are {sorted(available)}"
            )
        return requested
    for candidate in candidates:
        if candidate in available:
            return candidate
    raise ValueError(
        f"{source!r} has no {what} column: looked for {list(candidates)}, found {sorted(available)}; "
        f"pass {option}= to name it"
    )


def _table_rows(text, source, delimiter, image_column, caption_column):
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise ValueError(f"Caption file {source!r} is empty: it needs a header row and one row per image")
    columns = set(reader.fieldnames)
    image_column = _pick_column(columns, image_column, IMAGE_COLUMNS, "image path", source, "image_column")
    caption_column = _pick_column(columns, caption_column, CAPTION_COLUMNS, "caption", source, "caption_column")
    for row in reader:
        path, caption = row[image_column], row[caption_column]
        if path is None or caption is None:
            raise ValueError(
                f"{source!r}, line {reader.line_num}: the row has fewer fields than the header "
                f"(is the delimiter {delimiter!r} right?)"
            )
        yield reader.line_num, path, [caption]


def _jsonl_rows(text, source, image_column, caption_column):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source!r}, line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{source!r}, line {number}: expected a JSON object, got {type(record).__name__}")
        if image_column is None or caption_column is None:
            # The first record decides the keys; every later record must have them too.
            keys = set(record)
            image_column = _pick_column(keys, image_column, IMAGE_COLUMNS, "image path", source, "image_column")
            caption_column = _pick_column(keys, caption_column, CAPTION_COLUMNS, "caption", source, "caption_column")
        for key in (image_column, caption_column):
            if key not in record:
                raise ValueError(f"{source!r}, line {number}: the record has no key {key!r}")
        captions = record[caption_column]
        captions = [captions] if isinstance(captions, str) else captions
        if not isinstance(record[image_column], str) or not (
            isinstance(captions, list) and all(isinstance(caption, str) for caption in captions)
        ):
            raise ValueError(
                f"{source!r}, line {number}: {image_column!r} must be a string and {caption_column!r} a string "
                "or a list of strings"
            )
        yield number, record[image_column], captions


def _group_rows(rows, source, root):
    captions_by_path = {}
    empty = 0
    for line, path, captions in rows:
        if not path.strip():
            raise ValueError(f"{source!r}, line {line}: the image path is empty")
        kept = [caption for caption in captions if caption.strip()]
        empty += len(captions) - len(kept)
        captions_by_path.setdefault(_resolve(root, path), []).extend(kept)
    without = [path for path, captions in captions_by_path.items() if not captions]
    if empty:
        _logger.warning("%s: %d empty caption(s) left out", source, empty)
    if without:
        _logger.warning("%s: %d image(s) have no caption and are left out, e.g. %s", source, len(without), without[0])
    index = {path: captions for path, captions in captions_by_path.items() if captions}
    if not index:
        raise ValueError(f"Caption file {source!r} has no image with a non-empty caption")
    return CaptionIndex(image_paths=list(index), captions=list(index.values()))


def _resolve(root, path):
    if "://" in path or os.path.isabs(path) or not root:
        return path
    join = posixpath.join if "://" in root else os.path.join
    return join(root, path)


def read_caption_folder(folder):
    """A folder (searched recursively) of images with side-car captions: `cat.jpg` + `cat.txt`.

    Each non-empty line of the `.txt` file is one caption. Images without a `.txt` file are left out
    with a warning. Files are listed in sorted order, so the index is the same on every machine;
    hidden files and folders are skipped (`keras_clip.image.files`).

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it holds no image, or no image has a caption file.
    """
    files = walk_files(folder)
    images = [path for path in files if is_image_file(path)]
    captions = {os.path.splitext(path)[0] for path in files if path.lower().endswith(".txt")}
    if not images:
        raise ValueError(
            f"Image folder {folder!r} holds no image (looked for {', '.join(IMAGE_SUFFIXES)} files, "
            "with a same-named .txt caption file beside each)"
        )
    captioned = [path for path in images if os.path.splitext(path)[0] in captions]
    if not captioned:
        raise ValueError(
            f"None of the {len(images)} images in {folder!r} has a caption file: put the captions of "
            f"{os.path.basename(images[0])!r} in {os.path.basename(os.path.splitext(images[0])[0])!r}.txt, "
            "one per line"
        )
    if len(captioned) < len(images):
        missing = next(path for path in images if os.path.splitext(path)[0] not in captions)
        _logger.warning(
            "%s: %d of %d images have no .txt caption file and are left out, e.g. %s",
            folder, len(images) - len(captioned), len(images), missing,
        )
    return CaptionIndex(
        image_paths=captioned, caption_files=[os.path.splitext(path)[0] + ".txt" for path in captioned]
    )


def expand_braces(pattern):
    """WebDataset's shard notation: `shard-{000..009}.tar` (zero-padded ranges) and `{a,b}` alternatives."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    body = match.group(1)
    numeric = _NUMERIC_RANGE.match(body)
    if numeric:
        first, last = numeric.groups()
        if int(last) < int(first):
            raise ValueError(f"Shard range {{{body}}} in {pattern!r} ends before it starts")
        width = len(first)
        choices = [str(number).zfill(width) for number in range(int(first), int(last) + 1)]
    else:
        choices = body.split(",")
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return list(itertools.chain.from_iterable(expand_braces(head + choice + tail) for choice in choices))


def expand_shards(source):
    """Tar shard paths from a pattern (`{000..009}` ranges, `{a,b}`, glob wildcards) or a list of them.

    Raises:
        FileNotFoundError: a named shard does not exist, or a wildcard matches nothing.
        ValueError: no shard given, or a path that is not a .tar / .tar.gz / .tgz file.
    """
    patterns = [os.fspath(path) for path in source] if isinstance(source, (list, tuple)) else [os.fspath(source)]
    shards = []
    for pattern in patterns:
        for path in expand_braces(pattern):
            if any(character in path for character in "*?["):
                matches = sorted(tf.io.gfile.glob(path))
                if not matches:
                    raise FileNotFoundError(f"No tar shard matches {path!r}")
                shards.extend(matches)
            else:
                shards.append(path)
    if not shards:
        raise ValueError("No tar shard given")
    not_tar = [path for path in shards if not _is_tar_name(path)]
    if not_tar:
        raise ValueError(f"Tar shards must be .tar, .tar.gz or .tgz files, got {not_tar[0]!r}")
    missing = [path for path in shards if not tf.io.gfile.exists(path)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(shards)} tar shards do not exist, e.g. {missing[0]!r}"
        )
    return shards
