"""What C code writes to file descriptor 2 is dropped while a subcommand runs; Python's stderr is kept."""

import os
import sys

from keras_clip.cli.native_stderr import native_stderr_hidden


def test_native_writes_are_dropped_and_python_ones_kept(capfd):
    capfd.readouterr()
    with native_stderr_hidden():
        os.write(2, b"written by C code\n")
        print("written by Python", file=sys.stderr)
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "written by Python\nafter\n"
