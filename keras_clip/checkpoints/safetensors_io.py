"""The `.safetensors` format with numpy only: read lazily, write through a temporary file.

A file is an 8-byte little-endian header length N, N bytes of JSON
(`{name: {"dtype": "F16", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}`,
offsets relative to the end of the header), then the tensors' raw little-endian bytes.

Example:
>>> tensors, metadata = read_safetensors("open_clip_model.safetensors")
>>> np.asarray(tensors["visual.proj"]).shape
(768, 512)
"""

import json
import os
import struct

import numpy as np

from keras_clip.checkpoints.stored_array import BFLOAT16, FileSource, StoredArray
from keras_clip.errors import CheckpointError
from keras_clip.utils.atomic_files import atomic_write

DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": BFLOAT16,
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
CODES = {dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype: code for code, dtype in DTYPES.items() if code != "BF16"}
MAX_HEADER_BYTES = 100_000_000


def read_safetensors(path):
    """`({name: StoredArray}, metadata dict)` of a `.safetensors` file; no tensor bytes are read.

    Raises:
        CheckpointError: the file is truncated or its header is malformed (named).
    """
    source = FileSource(path)
    if source.size < 8:
        raise CheckpointError(f"{source.path} is not a safetensors file: only {source.size} bytes")
    header_length = np.empty(8, np.uint8)
    source.read_into(0, header_length)
    (header_length,) = struct.unpack("<Q", header_length.tobytes())
    if header_length > min(MAX_HEADER_BYTES, source.size - 8):
        raise CheckpointError(
            f"{source.path} is not a safetensors file or is truncated: header length {header_length}, "
            f"file size {source.size}"
        )
    header_bytes = np.empty(header_length, np.uint8)
    source.read_into(8, header_bytes)
    try:
        header = json.loads(header_bytes.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{source.path}: malformed safetensors header ({error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{source.path}: malformed safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        tensors[name] = _stored_array(source, data_start, name, entry)
    return tensors, metadata


def _stored_array(source, data_start, name, entry):
    try:
        code, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise CheckpointError(f"{source.path}: malformed safetensors entry for {name!r}: {entry!r}") from None
    if code not in DTYPES:
        raise CheckpointError(f"{source.path}: tensor {name!r} has unsupported dtype {code!r}")
    dtype = DTYPES[code]
    if not all(isinstance(size, int) and size >= 0 for size in shape):
        raise CheckpointError(f"{source.path}: tensor {name!r} has invalid shape {shape!r}")
    itemsize = 2 if dtype == BFLOAT16 else dtype.itemsize
    expected = int(np.prod(shape, dtype=np.int64)) * itemsize
    if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end and end - begin == expected):
        raise CheckpointError(
            f"{source.path}: tensor {name!r} of shape {shape} and dtype {code} has data offsets "
            f"[{begin}, {end}], which do not hold {expected} bytes"
        )
    if data_start + end > source.size:
        raise CheckpointError(f"{source.path} is truncated: tensor {name!r} ends past the end of the file")
    return StoredArray(source, data_start + begin, dtype, shape)


def write_safetensors(path, tensors, metadata=None):
    """Write `{name: array-like}` as `.safetensors`, one tensor in memory at a time.

    Args:
        path: destination; written to a temporary file in the same folder, then renamed.
        tensors: name -> anything with `.shape`, `.dtype` and `np.asarray` support (numpy
            arrays, Keras variables, `StoredArray`s).
        metadata: optional `{str: str}` stored in the header.
    """
    header = {}
    offset = 0
    entries = []
    for name, value in tensors.items():
        dtype = np.dtype(getattr(value, "dtype", None) or np.asarray(value).dtype)
        code = CODES.get(dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype)
        if code is None:
            raise ValueError(f"Cannot write {name!r}: dtype {dtype} has no safetensors code")
        shape = [int(size) for size in value.shape]
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        entries.append((name, value, dtype, nbytes))
        offset += nbytes
    if metadata:
        header["__metadata__"] = {str(key): str(value) for key, value in metadata.items()}
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with atomic_write(path) as file:
        file.write(struct.pack("<Q", len(header_bytes)))
        file.write(header_bytes)
        for name, value, dtype, nbytes in entries:
            array = np.ascontiguousarray(np.asarray(value), dtype=dtype.newbyteorder("<"))
            if array.nbytes != nbytes:
                raise ValueError(f"Cannot write {name!r}: its array has {array.nbytes} bytes, expected {nbytes}")
            if nbytes:
                file.write(memoryview(array.reshape(-1)).cast("B"))
    return os.fspath(path)
