"""Atomic writes: a reader never sees half a file, and a writer killed mid-write leaves nothing for good."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from keras_clip.utils.atomic_files import (
    HOST,
    atomic_write,
    remove_stale_temporaries,
    save_json,
    temporary_name,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WRITE_AND_WAIT = textwrap.dedent(
    """
    import sys, time
    from keras_clip.utils.atomic_files import atomic_write

    with atomic_write(sys.argv[1]) as file:
        file.write(b"x" * 1_000_000)
        file.flush()
        print("writing", flush=True)
        time.sleep(600)
    """
)


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _hidden(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def test_a_writer_killed_mid_write_leaves_a_file_the_next_write_removes(tmp_path):
    target = str(tmp_path / "weights.bin")
    writer = subprocess.Popen([sys.executable, "-c", WRITE_AND_WAIT, target], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=ROOT))  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    (debris,) = _hidden(tmp_path)
    assert f".weights.bin.{writer.pid}-{HOST}." in debris and os.path.getsize(tmp_path / debris) == 1_000_000
    assert not os.path.exists(target)
    save_json(str(tmp_path / "index.json"), {"a": 1})  # any atomic write into the folder
    assert _hidden(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["index.json"]


def test_only_files_of_writers_that_no_longer_run_on_this_machine_are_removed(tmp_path):
    dead = _dead_pid()
    paths = {
        "dead": temporary_name(str(tmp_path / "a.safetensors")).replace(f".{os.getpid()}-", f".{dead}-"),
        "live": temporary_name(str(tmp_path / "b.safetensors")),  # this process: still writing
        "other host": temporary_name(str(tmp_path / "c.bin")).replace(f"-{HOST}.", "-0123abcd."),
        "dead folder": temporary_name(str(tmp_path / "export")).replace(f".{os.getpid()}-", f".{dead}-"),
        "not ours": str(tmp_path / f".notes.{dead}.txt"),
        "final": str(tmp_path / "a.safetensors"),
    }
    for label, path in paths.items():
        if label == "dead folder":
            os.makedirs(os.path.join(path, "assets"))
        else:
            with open(path, "w") as file:
                file.write(label)
    removed = remove_stale_temporaries(str(tmp_path))
    assert sorted(removed) == sorted([paths["dead"], paths["dead folder"]])
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(paths[label]) for label in
                                                  ("live", "other host", "not ours", "final"))  # fmt: skip
    assert remove_stale_temporaries(str(tmp_path / "missing")) == []


def test_untagged_names_of_earlier_versions_are_removed_once_old(tmp_path):
    dead = _dead_pid()
    recent, old = (tmp_path / f".x.safetensors.{dead}.0123abcd.tmp", tmp_path / f".y.bin.{dead}.89abcdef.tmp")
    recent.write_text("recent")
    old.write_text("old")
    os.utime(old, (0, 0))
    assert remove_stale_temporaries(str(tmp_path)) == [str(old)]
    assert recent.exists()


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(str(tmp_path / "out.json"), "w") as file:
            json.dump({"partial": True}, file)
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []
