"""Resident memory of a process (Linux /proc), and running a command under a resident-memory cap.

A cap on resident memory rather than `resource.setrlimit(RLIMIT_AS)`: TensorFlow reserves far more
address space than it touches, so an address-space limit fails runs that would fit.
"""

import os
import resource
import subprocess
import tempfile
import time

GB = 1e9
POLL_SECONDS = 0.05
# A run is stopped when the machine has less than this available, whatever its own cap:
# the machine is shared, and the kernel's OOM killer may pick another process.
MACHINE_RESERVE_BYTES = int(0.75 * GB)


def _status_kilobytes(field, pid="self"):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def rss_bytes(pid="self"):
    """Resident memory of a process now (None if unknown)."""
    kilobytes = _status_kilobytes("VmRSS", pid)
    return None if kilobytes is None else kilobytes * 1024


def peak_rss_bytes():
    """Peak resident memory of this process since it started or since `reset_peak_rss()`."""
    kilobytes = _status_kilobytes("VmHWM")
    if kilobytes is None:
        kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kilobytes * 1024


def reset_peak_rss():
    """Restart this process's peak resident memory from its current value; False where Linux cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def available_bytes():
    """Memory the machine can still give (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


class CappedRun:
    """The outcome of `run_capped`: return code, output, the largest resident memory seen, and why it stopped."""

    def __init__(self, returncode, stdout, stderr, max_rss, stopped_for):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.max_rss = max_rss
        self.stopped_for = stopped_for  # None, "memory cap", "machine memory" or "timeout"

    @property
    def ok(self):
        return self.returncode == 0 and self.stopped_for is None


def run_capped(command, cap_bytes, timeout_seconds=None, env=None):
    """Run `command`, killing it once its resident memory exceeds `cap_bytes` (or the machine runs short).

    Args:
        command: argument list for `subprocess.Popen`.
        cap_bytes: the largest resident memory allowed.
        timeout_seconds: kill the run after this long (None: no limit).
        env: the child's environment (None: this process's).

    Returns:
        A `CappedRun`.

    Example:
    >>> run = run_capped([sys.executable, "-c", "print(1)"], cap_bytes=2e9)
    >>> run.ok, run.stdout
    (True, '1\\n')
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        start = time.monotonic()
        max_rss, stopped_for = 0, None
        while process.poll() is None:
            max_rss = max(max_rss, rss_bytes(process.pid) or 0)
            available = available_bytes()
            if max_rss > cap_bytes:
                stopped_for = "memory cap"
            elif available is not None and available < MACHINE_RESERVE_BYTES:
                stopped_for = "machine memory"
            elif timeout_seconds is not None and time.monotonic() - start > timeout_seconds:
                stopped_for = "timeout"
            if stopped_for:
                process.kill()
                process.wait()
                break
            time.sleep(POLL_SECONDS)
        out.seek(0)
        err.seek(0)
        return CappedRun(process.returncode, out.read(), err.read(), max_rss, stopped_for)


def child_environment():
    """This process's environment with the repository first on PYTHONPATH (workers import this copy)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env
