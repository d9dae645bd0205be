"""Keeping C++ libraries' own messages off the terminal while a subcommand runs.

TensorFlow's libraries write start-up notes ("Could not find cuda drivers on your machine", absl's
"All log messages before absl::InitializeLog() ...") and libjpeg writes one line per corrupt JPEG
("Input file read error") straight to file descriptor 2, whatever `TF_CPP_MIN_LOG_LEVEL` says. The
command's own output (results, progress bars, its one-line errors) goes through Python's
`sys.stderr`, which keeps the terminal; file descriptor 2 points at the null device meanwhile.
`--debug` leaves everything as it is.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_hidden():
    """Within: what C/C++ code writes to file descriptor 2 is dropped; Python's `sys.stderr` still shows.

    Example:
    >>> with native_stderr_hidden():
    ...     import tensorflow  # its start-up notes are not shown
    """
    try:
        python_writes_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # replaced, e.g. captured by a test: it is not fd 2
        python_writes_fd2 = False
    sys.stderr.flush()
    terminal = os.dup(2)
    original_stderr, ours = sys.stderr, None
    if python_writes_fd2:
        # Left open afterwards: logging handlers made meanwhile (TensorFlow's) may still hold it.
        ours = os.fdopen(os.dup(terminal), "w", buffering=1, encoding=original_stderr.encoding,
                         errors="backslashreplace")  # fmt: skip
        sys.stderr = ours
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        if ours is not None:
            ours.flush()
            if sys.stderr is ours:
                sys.stderr = original_stderr
        os.dup2(terminal, 2)
        os.close(terminal)
