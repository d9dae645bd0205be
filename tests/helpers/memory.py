"""Resident memory of this process (Linux /proc), and scripts run in a child process under a memory cap.

`peak_growth_mb()` measures how far a block of code raises this process's peak resident set above what
it held before (the peak is reset first, through /proc/self/clear_refs). `run_capped` runs a Python
script in a fresh process that is killed as soon as its resident memory passes a cap, so that a test of
code that would take gigabytes fails quickly instead of taking the machine down.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

import psutil

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Prepended to every capped script: memory_mb() and reset_peak() as in this module.
_PRELUDE = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def memory_mb():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def reset_peak():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
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
    """What `run_capped` saw: `returncode`, `stdout`, `stderr`, `killed` (the cap was passed), `peak_mb`
    (the child's largest resident set sampled), and `results`: the JSON objects the script printed, one a line."""

    def __init__(self, returncode, stdout, stderr, killed, peak_mb):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.killed, self.peak_mb = killed, peak_mb
        self.results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]

    def __repr__(self):
        return (f"CappedRun(returncode={self.returncode}, killed={self.killed}, peak_mb={self.peak_mb:.0f}, "
                f"results={self.results}, stderr={self.stderr[-2000:]!r})")  # fmt: skip


def run_capped(script, cap_mb, timeout=300):
    """Runs `script` (Python source; `memory_mb()`, `reset_peak()` and `json` predefined) in a fresh process
    importing this checkout, and kills it once its resident memory exceeds `cap_mb` (sampled every 5 ms).

    Returns:
        A `CappedRun`; the script reports by printing JSON objects, one a line.
    """
    env = dict(os.environ, PYTHONPATH=REPOSITORY + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # Output goes to files: a pipe nobody reads while the child runs could fill up and stall it.
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen([sys.executable, "-c", _PRELUDE + script], stdout=stdout, stderr=stderr,
                                   env=env, cwd=REPOSITORY)  # fmt: skip
        peak, killed = _watch(process, cap_mb, timeout)
        stdout.seek(0)
        stderr.seek(0)
        return CappedRun(process.returncode, stdout.read(), stderr.read(), killed, peak)


def _watch(process, cap_mb, timeout):
    """Samples the child's resident set until it exits; kills it past `cap_mb` or `timeout`. (peak MB, killed)"""
    watched = psutil.Process(process.pid)
    peak, killed, deadline = 0.0, False, time.monotonic() + timeout
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
        if peak > cap_mb or time.monotonic() > deadline:
            killed = peak > cap_mb
            process.kill()
            break
        time.sleep(0.005)
    process.wait()
    return peak, killed
