"""The background-job groups of tests/helpers/background.py, as pytest-xdist's loadgroup scheduler reads them."""

import pytest
from xdist.scheduler.loadgroup import LoadGroupScheduling

from tests.helpers.background import Job, groups_of


class Item:
    """What `groups_of` reads of a pytest item: its node id and its `background` markers."""

    def __init__(self, nodeid, *jobs):
        self.nodeid = nodeid
        self.jobs = jobs

    def iter_markers(self, name):
        return [pytest.mark.background(*self.jobs).mark] if self.jobs else []


def xdist_scope(nodeid, group):
    """The scope loadgroup schedules a test in, from the node id xdist gives a test of `group`."""
    return LoadGroupScheduling._split_scope(None, f"{nodeid}@{group}")


def test_tests_sharing_a_job_directly_or_through_another_are_one_loadgroup_scope():
    first, second, unrelated = Job(["true"]), Job(["true"]), Job(["true"])
    items = [
        Item("tests/a.py::test_one[sigmoid]", first),
        Item("tests/a.py::test_one[chunked]", first),
        Item("tests/b.py::test_two", first, second),
        Item("tests/c.py::test_three[x]", second),
        Item("tests/d.py::test_alone[y]", unrelated),
        Item("tests/e.py::test_without_job"),
    ]
    groups = groups_of(items)
    assert items[-1] not in groups
    scopes = {item.nodeid: xdist_scope(item.nodeid, groups[item]) for item in items[:-1]}
    shared = {scopes[item.nodeid] for item in items[:4]}
    assert len(shared) == 1, scopes
    assert shared != {scopes["tests/d.py::test_alone[y]"]}
    # A scope equal to the node id means xdist saw no group and may send the test to any worker.
    assert all(scope != nodeid for nodeid, scope in scopes.items()), scopes
