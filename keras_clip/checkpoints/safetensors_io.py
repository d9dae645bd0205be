"""The `.safetensors` format with numpy only: read lazily, write through a temporary file.

A file is an 8-byte little-endian header length N, N bytes of JSON
(`{name: {"dtype": "F16", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}`,
offsets relative to the end of the header), then the tensors' raw little-endian bytes.

Reading is bounded by the file: the header is at most `MAX_HEADER_BYTES` (as the `safetensors`
package allows) and inside the file, every tensor has at most `MAX_TENSOR_DIMS` dimensions and
its shape and dtype must give exactly the bytes its offsets span, inside the file (an empty
tensor's other dimensions may not describe more than the file holds either).

Example:
>>> tensors, metadata = read_safetensors("open_clip_model.safetensors")
>>> np.asarray(tensors["visual.proj"]).shape
(768, 512)
"""

import json
import math
import os
import struct

import numpy as np

from keras_clip.checkpoints.stored_array import BFLOAT16, MAX_TENSOR_DIMS, FileSource, StoredArray, short_repr
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
CODES = {
    dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype: code for code, dtype in DTYPES.items() if code != "BF16"
}
MAX_HEADER_BYTES = 100_000_000
# Names of the tensors that `write_safetensors(alignment=...)` adds to fill the gaps between tensors.
PADDING_PREFIX = "__padding__."


def read_safetensors(path, mapped=False):
    """`({name: StoredArray}, metadata dict)` of a `.safetensors` file; no tensor bytes are read.

    Args:
        path: the file.
        mapped: large arrays are private maps of the file (`FileSource`), not reads.

    The tensors filling alignment gaps (`PADDING_PREFIX`, written by `write_safetensors`) are left out.

    Raises:
        CheckpointError: the file is truncated or its header is malformed (named).
    """
    source = FileSource(path, mapped=mapped)
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
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError, JSONDecodeError, too many digits, nesting
        raise CheckpointError(f"{source.path}: malformed safetensors header ({type(error).__name__}: "
                              f"{str(error)[:200]})") from None  # fmt: skip
    if not isinstance(header, dict):
        raise CheckpointError(f"{source.path}: malformed safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise CheckpointError(f"{source.path}: malformed safetensors header (__metadata__ is not a string mapping)")
    data_start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        tensors[name] = _stored_array(source, data_start, name, entry)
    return {name: array for name, array in tensors.items() if not name.startswith(PADDING_PREFIX)}, metadata


def _is_index(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _stored_array(source, data_start, name, entry):
    short_name = short_repr(name)
    if not (isinstance(entry, dict) and isinstance(entry.get("shape"), list)
            and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2):  # fmt: skip
        raise CheckpointError(f"{source.path}: malformed safetensors entry for {short_name}: {short_repr(entry)}")
    code, shape, (begin, end) = entry.get("dtype"), entry["shape"], entry["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise CheckpointError(f"{source.path}: tensor {short_name} has unsupported dtype {short_repr(code)}")
    if len(shape) > MAX_TENSOR_DIMS or not all(_is_index(size) for size in shape):
        raise CheckpointError(f"{source.path}: tensor {short_name} has invalid shape {short_repr(shape)}")
    dtype = DTYPES[code]
    itemsize = 2 if dtype == BFLOAT16 else dtype.itemsize
    expected = math.prod(shape) * itemsize
    if not (_is_index(begin) and _is_index(end) and begin <= end and end - begin == expected):
        raise CheckpointError(
            f"{source.path}: tensor {short_name} of shape {shape} and dtype {code} has data offsets "
            f"[{short_repr(begin)}, {short_repr(end)}], which do not hold {expected} bytes"
        )
    if data_start + end > source.size:
        raise CheckpointError(f"{source.path} is truncated: tensor {short_name} ends past the end of the file")
    if math.prod(max(size, 1) for size in shape) * itemsize > source.size:  # only an empty tensor can get here
        raise CheckpointError(f"{source.path}: empty tensor {short_name} has a shape {shape} larger than the file")
    return StoredArray(source, data_start + begin, dtype, shape)


def write_safetensors(path, tensors, metadata=None, alignment=8):
    """Write `{name: array-like}` as `.safetensors`, one tensor in memory at a time.

    Args:
        path: destination; written to a temporary file in the same folder, then renamed.
        tensors: name -> anything with `.shape`, `.dtype` and `np.asarray` support (numpy
            arrays, Keras variables, `StoredArray`s).
        metadata: optional `{str: str}` stored in the header.
        alignment: every tensor's bytes start at a multiple of this in the file (a multiple of 8). The
            format allows no gaps, so uint8 tensors named `PADDING_PREFIX` + a number fill them; 64 lets
            TensorFlow use a mapped tensor's memory as it is (`read_safetensors(mapped=True)`).
    """
    if alignment % 8:
        raise ValueError(f"alignment must be a multiple of 8, got {alignment}")
    header = {}
    offset = 0
    entries = []
    for name, value in tensors.items():
        gap = -offset % alignment
        if gap:
            padding_name = f"{PADDING_PREFIX}{len(entries)}"
            header[padding_name] = {"dtype": "U8", "shape": [gap], "data_offsets": [offset, offset + gap]}
            entries.append((padding_name, np.zeros(gap, np.uint8), np.dtype(np.uint8), gap))
            offset += gap
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
    header_bytes += b" " * (-(8 + len(header_bytes)) % alignment)  # the data starts aligned too
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
