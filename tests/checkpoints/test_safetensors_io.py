"""The numpy-only safetensors reader and writer against the `safetensors` package."""

import json
import struct

import numpy as np
import pytest

from keras_clip.checkpoints.safetensors_io import read_safetensors, write_safetensors
from keras_clip.errors import CheckpointError

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
