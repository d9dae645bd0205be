"""Every error keras_clip raises on purpose, in one place.

- `CheckpointError`: a checkpoint file that cannot be read (truncated, corrupt, unsupported);
  `UnsafeCheckpointError` when its pickle asks for anything but tensors, or for more than its size
  justifies; `CacheFolderError` when the cache folder is not a folder.
- `StateDictError`: readable weights that do not fit the architecture they describe.
- `DownloadError`: a download that failed; `ChecksumError` when its bytes are not the published ones.
- `CorruptImageError`: an image that cannot be read or decoded, with its index and path where known;
  `ImageTooLargeError` when its header claims more pixels than `max_pixels`.
- `InvalidTextError`: a text a tokenizer cannot take, with its index and its beginning.
"""

import tensorflow as tf


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, or of an unsupported format."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle inside a checkpoint asks for something other than tensors (e.g. `posix.system`).

    Nothing from the file is ever executed: the pickle is refused at the first such request.
    """


class CacheFolderError(CheckpointError):
    """The cache folder (`cache_dir=`, else `$KERAS_CLIP_CACHE`) is a file, or lies inside one."""


class StateDictError(ValueError):
    """Weights that do not fit the CLIP architecture they describe (missing, unexpected or misshapen)."""


class DownloadError(RuntimeError):
    """A checkpoint could not be downloaded completely."""


class ChecksumError(DownloadError):
    """A downloaded checkpoint's SHA256 differs from the published one; the file was not kept."""


class CorruptImageError(tf.errors.InvalidArgumentError, ValueError):
    """An image that could not be read or decoded.

    It is the `tf.errors.InvalidArgumentError` that a graph raises for bad image bytes, raised from
    Python where the failing item is known: `index` is its position in the batch, dataset or file
    list, `path` its file (None when it has none). Catching `tf.errors.InvalidArgumentError` (or
    `ValueError`) catches it too.

    Args:
        reason: what went wrong, e.g. the decoder's message.
        index: position of the image in what the caller passed, if known.
        path: file the image came from, if any.
    """

    # Keras' layer calls re-create errors to add the call's arguments (losing `index` and `path`) unless this
    # is set; the message already names the image.
    _keras_call_info_injected = True

    def __init__(self, reason, index=None, path=None):
        self.reason = reason
        self.index = index
        self.path = path
        super().__init__(None, None, f"Could not decode {describe_image(index, path)}: {reason}")

    def __reduce__(self):
        return type(self), (self.reason, self.index, self.path)


def describe_image(index=None, path=None):
    """How messages name an image: its path, else its index, else "the image"."""
    if path is not None:
        return str(path)
    if index is not None:
        return f"the image at index {index}"
    return "the image"


class ImageTooLargeError(CorruptImageError):
    """An encoded image whose header claims more pixels than allowed (`max_pixels`): refused before decoding.

    A few kilobytes of PNG or GIF can describe gigapixels of one colour (a decompression bomb); the
    limit (PIL's 178,956,970 pixels by default) bounds what one image can cost.
    """


class InvalidTextError(ValueError):
    """A text a tokenizer cannot turn into ids (e.g. too long for the context with `truncate=False`).

    `index` is its position in what the caller passed; the message quotes at most its first 80 characters.

    Args:
        reason: what went wrong.
        index: position of the text, if known.
        text: the text (str or bytes), quoted shortened in the message.
    """

    _keras_call_info_injected = True  # as CorruptImageError: the message already names the text

    def __init__(self, reason, index=None, text=None):
        self.reason = reason
        self.index = index
        self.text = text
        super().__init__(f"Could not tokenize {describe_text(index, text)}: {reason}")

    def __reduce__(self):
        return type(self), (self.reason, self.index, self.text)


def describe_text(index=None, text=None, limit=80):
    """How messages name a text: "the text at index 3 ('a b c …', 100,000 characters)", cut to `limit` characters."""
    name = "the text" if index is None else f"the text at index {index}"
    if text is None:
        return name
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    shown = repr(text[:limit])
    if len(text) > limit or len(shown) > limit + 2:  # escapes lengthen the quote: cut it too
        shown = shown[:limit] + "…"
    return f"{name} ({shown}, {len(text):,} characters)"
