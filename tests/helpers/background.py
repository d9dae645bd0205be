"""Subprocess checks run in the background, beside the tests of this process, so that both cores are used.

A test module declares a `Job` at import and marks the tests that read it with `@pytest.mark.background(job)`;
they call `job.result()`. When collection ends, tests/conftest.py starts the jobs of the collected tests one
after another in a thread, in the order their tests run. A fixture may instead `start()` a job whose inputs
it has just written, and its tests read it later. `result()` waits for its job, or runs it if nothing started it.
"""

import shutil
import subprocess
import tempfile
import threading

import pytest

_STARTED = []  # every Job of this process that has run, for stop_every_job()


class Job:
    """One command (`args` and keyword arguments as for subprocess.Popen), run at most once.

    "{folder}" in `args` stands for a temporary folder of the job's own (`folder`, removed by `stop()`).
    """

    def __init__(self, args, **popen_options):
        self.args = list(args)
        self.popen_options = popen_options
        self.folder = None
        self._claimed = threading.Lock()
        self._done = threading.Event()
        self._process = None
        self._result = None
        self._error = None

    def start(self):
        """Runs the job in a thread of its own (nothing if it has started already)."""
        if self._claimed.acquire(blocking=False):
            threading.Thread(target=self._run, daemon=True).start()

    def result(self, timeout=900):
        """The command's `subprocess.CompletedProcess` (text output)."""
        if self._claimed.acquire(blocking=False):
            self._run()
        if not self._done.wait(timeout):
            self.stop()
            raise TimeoutError(f"{self.args[:3]} still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result

    def stop(self):
        """Kills the command if it still runs; removes the job's folder."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._done.wait(60)
        if self._done.is_set() and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self):
        try:
            self.folder = tempfile.mkdtemp(prefix="keras_clip_test_job_")
            _STARTED.append(self)
            args = [argument.replace("{folder}", self.folder) for argument in self.args]
            # Output goes to files: a pipe read only at the end could fill up and stall the command.
            with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
                self._process = subprocess.Popen(args, stdout=stdout, stderr=stderr, text=True, **self.popen_options)
                returncode = self._process.wait()
                stdout.seek(0)
                stderr.seek(0)
                self._result = subprocess.CompletedProcess(args, returncode, stdout.read(), stderr.read())
        except BaseException as error:  # raised by result()
            self._error = error
        finally:
            self._done.set()


def stop_every_job():
    """Stops every job this process started, wherever it was declared, and removes their folders."""
    while _STARTED:
        _STARTED.pop().stop()


def jobs_of(items):
    """The jobs named by the `background` markers of `items`, in the order the items run."""
    jobs = []
    for item in items:
        for marker in item.iter_markers("background"):
            jobs.extend(job for job in marker.args if job not in jobs)
    return jobs


def groups_of(items):
    """{item: group name} for the items reading jobs, where items sharing a job (directly or through another
    item) share a group, named after the group's first item's node id without brackets (pytest-xdist's
    loadgroup ignores a group name that ends in "]", as a parametrized test's id does)."""
    group_of_job = {}
    groups = {}
    for item in items:
        jobs = jobs_of([item])
        if not jobs:
            continue
        names = {group_of_job[job] for job in jobs if job in group_of_job}
        name = min(names, key=list(groups.values()).index) if names else _group_name(item.nodeid)
        for other, other_name in groups.items():
            if other_name in names:
                groups[other] = name
        for job, job_name in group_of_job.items():
            if job_name in names:
                group_of_job[job] = name
        groups[item] = name
        group_of_job.update(dict.fromkeys(jobs, name))
    return groups


def check_xdist_took_the_groups(items):
    """Raises if pytest-xdist did not put the `xdist_group` of an item into its node id, as its loadgroup
    scheduling needs (pytest 9.2 moved node ids where pytest-xdist 3.8 no longer writes them): the tests of
    one job would run on both workers and the job twice."""
    for item in items:
        if any(item.iter_markers("xdist_group")) and "@" not in item.nodeid:
            raise pytest.UsageError(f"pytest-xdist did not group {item.nodeid}: background jobs would run on "
                                    "every worker; use the pytest version setup.py's test extra pins")


def _group_name(nodeid):
    return nodeid.replace("[", "(").replace("]", ")")


def run_one_after_another(jobs):
    """Starts a daemon thread running `jobs` in turn (each one not started by then); returns the thread."""

    def run():
        for job in jobs:
            if job._claimed.acquire(blocking=False):
                job._run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
