"""Errors raised while finding, downloading or reading a checkpoint."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, or of an unsupported format."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle inside a checkpoint asks for something other than tensors (e.g. `posix.system`).

    Nothing from the file is ever executed: the pickle is refused at the first such request.
    """


class DownloadError(RuntimeError):
    """A checkpoint could not be downloaded completely."""


class ChecksumError(DownloadError):
    """A downloaded checkpoint's SHA256 differs from the published one; the file was not kept."""
