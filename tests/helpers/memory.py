"""Resident memory of this process (Linux /proc), and scripts run in a child process under a memory cap.

`peak_growth_mb()` measures how far a block of code raises this process's peak resident set above what
it held before (the peak is reset first, through /proc/self/clear_refs). `capped_job` / `run_capped` run
a Python script in a fresh process that ends itself as soon as its resident memory passes a cap, so that
a test of code that would take gigabytes fails quickly instead of taking the machine down.
`PeakMemory` traces Python's own allocations (numpy's arrays included) instead, for checks that must not
see other threads' memory (e.g. a background job's).
"""

import contextlib
import inspect
import json
import os
import sys
import tracemalloc

from tests.helpers.background import Job

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Prepended to every capped script (after `memory_mb` and `reset_peak`, whose source it copies).
_IMPORTS = """
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
"""

# Then a thread that ends the process once its resident set passes CAP_MB (a test of code that would take
# gigabytes fails quickly instead of taking the machine down).
_WATCHDOG = r"""
import threading, time


def _watch_memory(cap_mb):
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
    while True:
        with open("/proc/self/statm") as handle:
            resident_mb = int(handle.read().split()[1]) * page_mb
        if resident_mb > cap_mb:
            print(json.dumps({"killed_at_mb": resident_mb}), flush=True)
            os._exit(137)
        time.sleep(0.005)


threading.Thread(target=_watch_memory, args=(CAP_MB,), daemon=True).start()
"""


def memory_mb():
    """(resident set now, its peak since the last reset), in MB."""
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def reset_peak():
    """Resets this process's peak resident set (VmHWM) to its current resident set (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


class PeakGrowth:
    mb = None


@contextlib.contextmanager
def peak_growth_mb():
    """`with peak_growth_mb() as growth:` ...; then `growth.mb` is the peak resident set reached inside
    the block minus the resident set before it, in MB."""
    growth = PeakGrowth()
    before, _ = memory_mb()
    reset_peak()
    yield growth
    growth.mb = memory_mb()[1] - before


class CappedRun:
    """What a capped script did: `returncode`, `stdout`, `stderr`, `killed` (it passed its memory cap, at
    `killed_at_mb`), and `results`: the JSON objects it printed, one a line."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        self.killed_at_mb = next((r["killed_at_mb"] for r in self.results if "killed_at_mb" in r), None)
        self.killed = self.killed_at_mb is not None
        self.results = [result for result in self.results if "killed_at_mb" not in result]

    def __repr__(self):
        return (f"CappedRun(returncode={self.returncode}, killed_at_mb={self.killed_at_mb}, "
                f"results={self.results}, stderr={self.stderr[-2000:]!r})")  # fmt: skip


def capped_job(script, cap_mb):
    """A tests/helpers/background.py `Job` running `script` (Python source; `memory_mb()`, `reset_peak()`,
    `json`, `os` and `sys` predefined) in a fresh process importing this checkout, which ends itself
    (status 137) once its resident memory exceeds `cap_mb`: a thread samples it every 5 ms. "{folder}" in
    `script` is the job's own temporary folder. Read it with `capped_result(job)`."""
    watchdog = _WATCHDOG.replace("CAP_MB", repr(float(cap_mb)))
    env = dict(os.environ, PYTHONPATH=REPOSITORY + os.pathsep + os.environ.get("PYTHONPATH", ""))
    prelude = _IMPORTS + inspect.getsource(memory_mb) + "\n\n" + inspect.getsource(reset_peak) + "\n\n"
    return Job([sys.executable, "-c", prelude + watchdog + script], env=env, cwd=REPOSITORY)


def capped_result(job, timeout=600):
    """The `CappedRun` of a `capped_job` (run now if no one started it)."""
    result = job.result(timeout)
    return CappedRun(result.returncode, result.stdout, result.stderr)


def run_capped(script, cap_mb, timeout=600):
    """Runs `script` as `capped_job` does, now; its `CappedRun`."""
    return capped_result(capped_job(script, cap_mb), timeout)


class PeakMemory:
    """Traces allocations made inside the block (`tracemalloc`); `peak` is their largest total, in bytes."""

    def __enter__(self):
        self.peak = None
        tracemalloc.start()
        return self

    def __exit__(self, *exc_info):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return False


def mapped_files(address):
    """The set of files mapped at `address` in this process (/proc/self/maps)."""
    files = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(bound, 16) for bound in fields[0].split("-"))
            if start <= address < end and len(fields) == 6:
                files.add(fields[5].strip())
    return files


def tensor_address(tensor):
    """Where a CPU tensor's memory starts (`Tensor.numpy()` would copy memory TensorFlow does not own)."""
    import numpy as np
    import tensorflow as tf

    class DLPackView:
        def __dlpack__(self, **kwargs):
            return tf.experimental.dlpack.to_dlpack(tensor)

        def __dlpack_device__(self):
            return (1, 0)  # kDLCPU, device 0

    return np.from_dlpack(DLPackView()).ctypes.data
