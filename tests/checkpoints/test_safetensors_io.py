"""The numpy-only safetensors reader and writer against the `safetensors` package."""

import collections
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_clip.checkpoints.safetensors_io import read_safetensors, write_safetensors
from keras_clip.errors import CheckpointError
from tests.helpers.fuzzing import fuzz_settings, mutated_bytes
from tests.helpers.memory import PeakMemory, mapped_files

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "f32": rng.normal(size=(3, 4)).astype(np.float32),
        "f16": rng.normal(size=(5,)).astype(np.float16),
        "f64": rng.normal(size=(2, 2, 2)),
        "i64": np.arange(6, dtype=np.int64).reshape(2, 3),
        "i32": np.array([-1, 2], np.int32),
        "u8": np.array([0, 255], np.uint8),
        "bool": np.array([True, False]),
        "scalar": np.array(1.5, np.float32),
        "empty": np.zeros((0, 4), np.float32),
    }


def test_reads_files_written_by_the_safetensors_package(tmp_path):
    arrays = _arrays()
    path = str(tmp_path / "model.safetensors")
    safetensors_numpy.save_file(arrays, path, metadata={"format": "pt"})
    tensors, metadata = read_safetensors(path)
    assert metadata == {"format": "pt"}
    assert set(tensors) == set(arrays)
    for key, expected in arrays.items():
        array = np.asarray(tensors[key])
        assert array.dtype == expected.dtype and array.shape == expected.shape, key
        np.testing.assert_array_equal(array, expected, err_msg=key)


def test_bfloat16_is_widened_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    values = torch.randn(4, 3).to(torch.bfloat16)
    path = str(tmp_path / "bf16.safetensors")
    save_file({"weight": values}, path)
    tensors, _ = read_safetensors(path)
    np.testing.assert_array_equal(np.asarray(tensors["weight"]), values.float().numpy())


def test_written_files_are_read_by_the_safetensors_package(tmp_path):
    arrays = _arrays()
    path = str(tmp_path / "ours.safetensors")
    write_safetensors(path, arrays, metadata={"config": json.dumps({"a": 1})})
    loaded = safetensors_numpy.load_file(path)
    for key, expected in arrays.items():
        np.testing.assert_array_equal(loaded[key], expected, err_msg=key)
    _, metadata = read_safetensors(path)
    assert json.loads(metadata["config"]) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ours.safetensors"]  # no temporary file left


def test_aligned_files_start_every_tensor_at_the_alignment_and_stay_readable(tmp_path):
    arrays = _arrays()
    path = str(tmp_path / "aligned.safetensors")
    write_safetensors(path, arrays, alignment=64)
    with open(path, "rb") as file:
        (header_length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(header_length))
    assert (8 + header_length) % 64 == 0
    assert all(entry["data_offsets"][0] % 64 == 0 for name, entry in header.items() if name in arrays)
    loaded = safetensors_numpy.load_file(path)  # gaps are filled by tensors, as the format wants no holes
    for mapped in (False, True):
        ours, _ = read_safetensors(path, mapped=mapped)
        assert sorted(ours) == sorted(arrays)  # the filling tensors are not handed out
        for key, expected in arrays.items():
            np.testing.assert_array_equal(loaded[key], expected, err_msg=key)
            np.testing.assert_array_equal(np.asarray(ours[key]), expected, err_msg=key)


def test_mapped_arrays_are_private_maps_of_their_own(tmp_path):
    path = str(tmp_path / "large.safetensors")
    large = np.arange(1 << 19, dtype=np.float32).reshape(512, 1024)  # 2 MB: over MAPPED_ARRAY_BYTES
    write_safetensors(path, {"large": large}, alignment=64)
    stored = read_safetensors(path, mapped=True)[0]["large"]
    first, second = np.asarray(stored), np.asarray(stored)
    assert path in mapped_files(first.ctypes.data)
    first[0, 0] = -1.0
    assert second[0, 0] == 0.0  # each read maps again: no memory shared between reads
    np.testing.assert_array_equal(safetensors_numpy.load_file(path)["large"], large)  # nor written to the file


def test_failed_write_leaves_nothing(tmp_path):
    class Broken:
        shape = (2,)
        dtype = np.float32

        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_safetensors(str(tmp_path / "x.safetensors"), {"a": np.ones(2), "b": Broken()})
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_is_named(tmp_path):
    path = str(tmp_path / "model.safetensors")
    safetensors_numpy.save_file({"w": np.ones((64, 64), np.float32)}, path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated: tensor 'w' ends past the end of the file"):
        read_safetensors(path)


def test_malformed_headers_are_named(tmp_path):
    def write(header_bytes, data=b""):
        path = str(tmp_path / "bad.safetensors")
        with open(path, "wb") as file:
            file.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
        return path

    with pytest.raises(CheckpointError, match="malformed safetensors header"):
        read_safetensors(write(b"{not json"))
    with pytest.raises(CheckpointError, match="header length"):
        read_safetensors(_with_length(tmp_path, 10**9))
    bad_offsets = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    with pytest.raises(CheckpointError, match=r"data offsets \[0, 8\], which do not hold 16 bytes"):
        read_safetensors(write(bad_offsets, b"\0" * 16))
    bad_dtype = json.dumps({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}).encode()
    with pytest.raises(CheckpointError, match="unsupported dtype 'F8_E4M3'"):
        read_safetensors(write(bad_dtype, b"\0"))


def _with_length(tmp_path, length):
    path = str(tmp_path / "huge_header.safetensors")
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", length) + b"{}")
    return path


def _entry(dtype="F32", shape=(4,), offsets=(0, 16)):
    return {"w": {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}}


@pytest.mark.parametrize(
    "header, refusal",
    [
        # int64 products wrap around: 2**32 * 2**32 elements "fit" in 0 bytes without exact arithmetic.
        (_entry(shape=(2**32, 2**32), offsets=(0, 0)), "which do not hold 73786976294838206464 bytes"),
        (_entry(shape=(0, 2**62), offsets=(0, 0)), "empty tensor 'w' has a shape .* larger than the file"),
        (_entry(shape=(1,) * 65, offsets=(0, 4)), "invalid shape"),
        (_entry(shape=(True, 4)), "invalid shape"),
        (_entry(dtype=["F32"]), "unsupported dtype \\['F32'\\]"),
        (_entry(offsets=(0, 16, 32)), "malformed safetensors entry for 'w'"),
        ({"w": [1, 2]}, "malformed safetensors entry for 'w'"),
        (dict(_entry(), __metadata__=["format"]), "__metadata__ is not a string mapping"),
        ("[" * 100_000 + "]" * 100_000, "malformed safetensors header \\(RecursionError"),
    ],
)
def test_hostile_headers_are_named(tmp_path, header, refusal):
    path = str(tmp_path / "hostile.safetensors")
    header_bytes = (header if isinstance(header, str) else json.dumps(header)).encode()
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(header_bytes)) + header_bytes + b"\0" * 16)
    with pytest.raises(CheckpointError, match=refusal):
        tensors, _ = read_safetensors(path)
        [np.asarray(value) for value in tensors.values()]


FUZZ_PEAK_MEMORY = 64 << 20  # for files of a few hundred bytes


_DTYPE_CODES = st.sampled_from(["F32", "F16", "BF16", "I64", "BOOL", "U8", "F8_E4M3", ""])
_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                          st.text(max_size=8), _DTYPE_CODES)  # fmt: skip
_JSON_VALUES = st.recursive(_JSON_SCALARS, lambda children: st.lists(children, max_size=4) | st.dictionaries(
    st.sampled_from(["dtype", "shape", "data_offsets", "x"]), children, max_size=4), max_leaves=12)  # fmt: skip
_EXTENTS = st.integers(-1, 2**64) | st.sampled_from([0, 1, 2, 3])
_OFFSETS = st.integers(-1, 2**64) | st.integers(0, 64)


@st.composite
def _entries(draw):
    """A header entry: mostly well-formed fields with odd values, sometimes anything JSON."""
    if draw(st.integers(0, 4)) == 0:
        return draw(_JSON_VALUES)
    return {
        "dtype": draw(_DTYPE_CODES),
        "shape": draw(st.lists(_EXTENTS, max_size=4)),
        "data_offsets": draw(st.lists(_OFFSETS, max_size=3)),
    }


@st.composite
def _headers(draw):
    header = draw(st.dictionaries(st.text(max_size=6), _entries(), max_size=4))
    if draw(st.booleans()):
        header["__metadata__"] = draw(_JSON_VALUES)
    header_bytes = json.dumps(header).encode()
    length = len(header_bytes) if draw(st.integers(0, 5)) else draw(st.integers(0, 2**64 - 1))
    return struct.pack("<Q", length) + header_bytes + draw(st.binary(max_size=80))


@st.composite
def _fuzzed_files(draw, seed):
    if draw(st.booleans()):
        return draw(_headers())
    return draw(mutated_bytes(seed))


@pytest.mark.fuzz
def test_fuzzed_files_load_or_raise_our_error_in_bounded_memory(tmp_path):
    seed_path = str(tmp_path / "seed.safetensors")
    write_safetensors(seed_path, {"w": np.ones((2, 3), np.float16), "ids": np.arange(4), "e": np.zeros((0, 2))},
                      metadata={"format": "pt"})  # fmt: skip
    with open(seed_path, "rb") as file:
        seed = file.read()
    path = str(tmp_path / "fuzzed.safetensors")
    outcomes = collections.Counter()

    @fuzz_settings()
    @given(_fuzzed_files(seed))
    def read_fuzzed(data):
        if os.path.exists(path):
            os.remove(path)  # overwriting a file in place makes ext4 flush it on close: ~2 ms per example
        with open(path, "wb") as file:
            file.write(data)
        with PeakMemory() as memory:
            try:
                tensors, _ = read_safetensors(path)
                outcomes[f"loaded {len([np.asarray(value) for value in tensors.values()])}"] += 1
            except CheckpointError:
                outcomes["refused"] += 1
        assert memory.peak < FUZZ_PEAK_MEMORY, f"{memory.peak / 2**20:.0f} MB for {len(data)} bytes"

    read_fuzzed()
    assert outcomes["refused"] > 0 and len(outcomes) > 1, outcomes
