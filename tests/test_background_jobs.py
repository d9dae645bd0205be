"""The background jobs of tests/helpers/background.py leave no folder behind once the session ends."""

import os
import sys

from tests.helpers import background


def test_stop_every_job_removes_the_folders_of_jobs_that_ran(monkeypatch):
    monkeypatch.setattr(background, "_STARTED", [])  # leaves the jobs running for other tests alone
    writes = background.Job([sys.executable, "-c", "open('{folder}/out.txt', 'w').write('done')"])
    assert writes.result().returncode == 0
    assert os.path.exists(os.path.join(writes.folder, "out.txt"))

    background.stop_every_job()  # what tests/conftest.py's pytest_sessionfinish calls, in every xdist worker too

    assert not os.path.exists(writes.folder)
