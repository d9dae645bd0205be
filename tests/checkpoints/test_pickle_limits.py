"""A checkpoint's pickle cannot make the reader build more than its size justifies, nor crash it.

The hostile archives (tests/helpers/hostile_checkpoints.py) are read in one subprocess whose
address space is capped 2 GB above its size after the imports, each timed and its peak of
Python-traced memory (numpy included) measured: without the limits they ask for 8 to 40 GB, or
crash the interpreter.
"""

import json
import re
import sys
import textwrap

import pytest

from keras_clip.checkpoints import pickle_limits, torch_zip
from keras_clip.checkpoints.pickle_limits import (
    MAX_COLLIDING_KEYS,
    MAX_TUPLE_NESTING,
    PickleBudget,
    scan_pickle,
)
from keras_clip.errors import CheckpointError, UnsafeCheckpointError
from tests.helpers import hostile_checkpoints as hostile
from tests.helpers.background import Job

PEAK_MEMORY_LIMIT = 200 << 20  # far above what a refusal costs, far below what any of these asks for
SECONDS_LIMIT = 20  # the 2 MB pickles take ~1 s on an idle core

READ_HOSTILE_FILES = textwrap.dedent(
    """
    import json, resource, sys, time, tracemalloc
    import numpy as np
    from keras_clip.checkpoints.torch_zip import read_torch_state_dict
    from keras_clip.errors import CheckpointError

    size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + (2 << 30), resource.getrlimit(resource.RLIMIT_AS)[1]))
    tracemalloc.start()
    for label, path in json.loads(sys.argv[1]).items():
        tracemalloc.reset_peak()
        start = time.perf_counter()
        try:
            arrays = [np.asarray(value) for value in read_torch_state_dict(path).values()]
            outcome = f"loaded {len(arrays)} tensors"
        except CheckpointError as error:
            outcome = f"{type(error).__name__}: {error}"
        except MemoryError:
            outcome = "MemoryError"
        seconds = time.perf_counter() - start
        print("RESULT " + json.dumps([label, outcome, seconds, tracemalloc.get_traced_memory()[1]]), flush=True)
    """
)

# label -> (pickle or archive writer, the message expected)
HOSTILE = {
    "torch.Size of a million-element list, 1000 times": (
        hostile.repeated_call_pickle(), r"UnsafeCheckpointError: .*torch.Size has 1,000,000 dimensions, more than the "
                                        r"limit of 64"),  # fmt: skip
    "a TorchScript list copied 1000 times": (
        hostile.repeated_call_pickle(function=("torch.jit._pickle", "build_intlist")),
        r"UnsafeCheckpointError: .*builds more than 2,08\d,\d+ elements \(1 per byte of its 2,0\d\d,\d+ \+ 65,536; the "
        r"last 1,000,000 by a TorchScript list\)"),  # fmt: skip
    "one dict state given to 1000 OrderedDicts": (
        hostile.dict_state_pickle(), r"CheckpointError: .*no tensors found"),
    "memo index of 2 billion": (hostile.memo_index_pickle(), r"UnsafeCheckpointError: .*memo entry 2,147,483,632"),
    "20,000 integer keys of hash 0": (
        hostile.colliding_keys_pickle(), r"UnsafeCheckpointError: .*more than 10,000 tuples or integers of more than "
                                         r"61 bits as dictionary keys"),  # fmt: skip
    "a code record of 256 MB deflated": (
        hostile.write_code_bomb_archive, r"UnsafeCheckpointError: .*code/__torch__/model.py unpacks to 268,435,456 "
                                         r"bytes.*a zip bomb"),  # fmt: skip
    # Last: without the limits it kills the process.
    "a dict key of tuples nested a million deep": (
        hostile.nested_tuple_key_pickle(), r"UnsafeCheckpointError: .*nests tuples more than 100 deep"),
}


@pytest.fixture(scope="module")
def hostile_outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    files = {}
    for index, (label, (content, _)) in enumerate(HOSTILE.items()):
        path = str(folder / f"hostile_{index}.pt")
        content(path) if callable(content) else hostile.write_archive(path, content)
        files[label] = path
    job = Job([sys.executable, "-c", READ_HOSTILE_FILES, json.dumps(files)])
    result = job.result()
    outcomes = {}
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            label, outcome, seconds, peak = json.loads(line[len("RESULT "):])
            outcomes[label] = (outcome, seconds, peak)
    return outcomes, result.stderr[-2000:]


@pytest.mark.parametrize("label", list(HOSTILE))
def test_hostile_pickle_is_refused_quickly_in_bounded_memory(hostile_outcomes, label):
    outcomes, stderr = hostile_outcomes
    assert label in outcomes, f"the reader process died before finishing {label!r}:\n{stderr}"
    outcome, seconds, peak = outcomes[label]
    assert re.match(HOSTILE[label][1], outcome), outcome
    assert peak < PEAK_MEMORY_LIMIT, f"{label}: peak {peak / 2**20:.0f} MB"
    assert seconds < SECONDS_LIMIT, f"{label}: {seconds:.1f} s"


def test_tuples_may_nest_up_to_the_limit():
    def nested(depth):
        return hostile.PROTO_2 + hostile.EMPTY_DICT + hostile.EMPTY_TUPLE + hostile.TUPLE1 * (depth - 1) + \
            hostile.NEWFALSE + hostile.SETITEM + hostile.STOP  # fmt: skip

    scan_pickle(nested(MAX_TUPLE_NESTING), "ok.pt")
    with pytest.raises(UnsafeCheckpointError, match=f"nests tuples more than {MAX_TUPLE_NESTING} deep"):
        scan_pickle(nested(MAX_TUPLE_NESTING + 1), "deep.pt")


def test_a_deep_tuple_is_tracked_through_the_memo_and_lists():
    # Memoised, fetched back, then nested once more through TUPLE: the depth carries over.
    deep = hostile.EMPTY_TUPLE + hostile.TUPLE1 * (MAX_TUPLE_NESTING - 1) + hostile.memo_put(0)
    again = hostile.memo_get(0) + hostile.TUPLE1
    with pytest.raises(UnsafeCheckpointError, match="nests tuples"):
        scan_pickle(hostile.PROTO_2 + deep + again + hostile.STOP, "memo.pt")
    # A list stops a hash's recursion: a tuple holding a list holding a deep tuple is shallow.
    scan_pickle(hostile.PROTO_2 + hostile.MARK + deep + hostile.LIST + hostile.TUPLE1 + hostile.STOP, "list.pt")


def test_memo_indices_must_be_sequential():
    scan_pickle(hostile.PROTO_2 + hostile.EMPTY_DICT + hostile.memo_put(0) + hostile.memo_put(0) + hostile.STOP, "ok")
    with pytest.raises(UnsafeCheckpointError, match="stores memo entry 1 at byte 3 while it has 0"):
        scan_pickle(hostile.PROTO_2 + hostile.EMPTY_DICT + hostile.memo_put(1) + hostile.STOP, "gap.pt")
    with pytest.raises(CheckpointError, match="memo entry 3 read but never stored"):
        scan_pickle(hostile.PROTO_2 + hostile.memo_get(3) + hostile.STOP, "get.pt")


def test_colliding_keys_are_counted():
    scan_pickle(hostile.colliding_keys_pickle(MAX_COLLIDING_KEYS), "ok.pt")
    with pytest.raises(UnsafeCheckpointError, match="more than 10,000 tuples or integers"):
        scan_pickle(hostile.colliding_keys_pickle(MAX_COLLIDING_KEYS + 1), "collide.pt")


@pytest.mark.parametrize(
    "data, message",
    [
        (hostile.PROTO_2 + hostile.EMPTY_DICT, "no STOP|pickle exhausted"),
        (hostile.PROTO_2 + b"\xff" + hostile.STOP, "malformed pickle: at position 2, opcode b'.xff' unknown"),
        (hostile.PROTO_2 + b"X\xff\xff\xff\x7fabc" + hostile.STOP, "expected 2147483647 bytes .* only 4 remain"),
        (hostile.PROTO_2 + hostile.SETITEM + hostile.STOP, "SETITEM with too few objects"),
        (hostile.PROTO_2 + hostile.EMPTY_LIST + b"e" + hostile.STOP, "APPENDS without a MARK"),
        (hostile.PROTO_2 + hostile.EMPTY_DICT + b"p-1\n" + hostile.STOP, "memo index -1"),
    ],
)
def test_malformed_pickles_are_named(data, message):
    with pytest.raises(CheckpointError, match=message):
        scan_pickle(data, "bad.pt")


def test_budget_is_proportional_to_the_pickle():
    budget = PickleBudget(1_000, "small.pt")
    budget.spend("elements", 66_536, "a list")
    with pytest.raises(UnsafeCheckpointError, match=r"small.pt: refused to load: its pickle builds more than 66,536 "
                                                    r"elements .*the last 1 by torch.Size"):  # fmt: skip
        budget.spend("elements", 1, "torch.Size")
    assert PickleBudget(8_000_000, "large.pt").limits == {
        "objects": 1_065_536, "elements": 8_065_536, "name characters": 128_065_536}  # fmt: skip


def test_a_pickle_larger_than_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(pickle_limits, "MAX_PICKLE_BYTES", 1000)
    path = hostile.write_archive(str(tmp_path / "large.pt"), hostile.colliding_keys_pickle(100))
    monkeypatch.setattr(torch_zip.TorchArchive, "read_record", None)  # never called
    with pytest.raises(UnsafeCheckpointError, match=r"large.pt: data.pkl: refused to load: its pickle is 1,202 "
                                                    r"bytes, more than the limit of 1,000"):  # fmt: skip
        torch_zip.read_torch_state_dict(path)
