"""Arrays that stay in their checkpoint file until they are used.

A checkpoint reader returns `StoredArray`s instead of loaded arrays: each knows its shape and
dtype, and reads its bytes from the file only when converted with `np.asarray`. A conversion
that uses one weight at a time therefore holds one weight in memory, not the whole file.
"""

import concurrent.futures
import contextlib
import os
import threading

import numpy as np

from keras_clip.errors import CheckpointError

# numpy has no bfloat16: such arrays are read as uint16 and widened to float32 (exactly).
BFLOAT16 = "bfloat16"


def aligned_empty(shape, dtype, alignment=64):
    """An uninitialised C-contiguous array whose data starts at a multiple of `alignment` bytes.

    TensorFlow can then use the memory as a tensor's buffer without copying it (its kernels
    assume 64-byte aligned data; numpy only guarantees 16).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def bfloat16_to_float32(bits):
    """float32 array with the values of bfloat16 numbers given as their uint16 bit patterns."""
    widened = np.asarray(bits, dtype=np.uint16).astype(np.uint32)
    widened <<= 16
    return widened.view(np.float32)


class FileSource:
    """An open file read by (offset, size) ranges; safe to share between arrays and threads."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = open(self.path, "rb", buffering=0)
        self._lock = threading.Lock()
        self.size = os.fstat(self._file.fileno()).st_size

    def read_into(self, offset, buffer):
        """Fill `buffer` (a writable numpy array) with the bytes at `offset`."""
        view = memoryview(buffer).cast("B")
        if offset < 0 or offset + len(view) > self.size:
            raise CheckpointError(
                f"{self.path} is truncated: bytes {offset}..{offset + len(view)} are past its end ({self.size} bytes)"
            )
        with self._lock:
            self._file.seek(offset)
            filled = 0
            while filled < len(view):
                count = self._file.readinto(view[filled:])
                if not count:
                    raise CheckpointError(f"{self.path} is truncated: unexpected end of file at byte {offset + filled}")
                filled += count

    def close(self):
        self._file.close()


class StoredArray:
    """An array (or strided view of one) at a byte offset of a file, read on demand.

    Args:
        source: the `FileSource` to read from.
        offset: byte offset of the element at index (0, ..., 0).
        dtype: numpy dtype of the stored elements (may be non-native byte order), or `BFLOAT16`.
        shape: the array's shape.
        strides: strides in elements (PyTorch's convention); None for C-contiguous.

    `np.asarray(stored)` returns a new C-contiguous array in native byte order (bfloat16 is
    widened to float32).
    """

    def __init__(self, source, offset, dtype, shape, strides=None):
        self.source = source
        self.offset = int(offset)
        self.stored_dtype = dtype
        self.shape = tuple(int(size) for size in shape)
        contiguous = _contiguous_strides(self.shape)
        self.strides = contiguous if strides is None else tuple(int(stride) for stride in strides)
        self.is_contiguous = all(
            size <= 1 or stride == expected for size, stride, expected in zip(self.shape, self.strides, contiguous)
        )

    @property
    def dtype(self):
        if self.stored_dtype == BFLOAT16:
            return np.dtype(np.float32)
        return np.dtype(self.stored_dtype).newbyteorder("=")

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def _read(self):
        raw_dtype = np.dtype(np.uint16) if self.stored_dtype == BFLOAT16 else np.dtype(self.stored_dtype)
        if self.size == 0:
            return np.empty(self.shape, raw_dtype)
        if self.is_contiguous:
            array = aligned_empty(self.shape, raw_dtype)
            self.source.read_into(self.offset, array)
            return array
        # Read the span the strided view covers, then copy the view out of it.
        span = 1 + sum((size - 1) * stride for size, stride in zip(self.shape, self.strides))
        buffer = np.empty(span, raw_dtype)
        self.source.read_into(self.offset, buffer)
        byte_strides = tuple(stride * raw_dtype.itemsize for stride in self.strides)
        return np.lib.stride_tricks.as_strided(buffer, self.shape, byte_strides, writeable=False).copy()

    def __array__(self, dtype=None, copy=None):
        array = self._read()
        if self.stored_dtype == BFLOAT16:
            array = bfloat16_to_float32(array)
        elif not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return array if dtype is None else array.astype(dtype, copy=False)

    def __repr__(self):
        return f"StoredArray(shape={self.shape}, dtype={self.dtype}, file={self.source.path!r})"


class DerivedArray:
    """An array computed on demand from stored ones (e.g. q, k, v concatenated, a transpose).

    Args:
        shape: the result's shape.
        dtype: the result's dtype.
        compute: a function of no arguments returning the array.
    """

    def __init__(self, shape, dtype, compute):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self._compute = compute

    @property
    def ndim(self):
        return len(self.shape)

    def __array__(self, dtype=None, copy=None):
        array = np.asarray(self._compute())
        if array.shape != self.shape:
            raise CheckpointError(f"Derived array has shape {array.shape}, expected {self.shape}")
        return array if dtype is None else array.astype(dtype, copy=False)

    def __repr__(self):
        return f"DerivedArray(shape={self.shape}, dtype={self.dtype})"


def _contiguous_strides(shape):
    strides = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def reads_into_new_memory(value):
    """True if `np.asarray(value)` returns an array in new memory that no one else holds.

    Such an array (read from a file by a `StoredArray`, perhaps through a `PrefetchedArray`)
    may become a tensor's buffer as it is; any other array must be copied first.
    """
    if isinstance(value, PrefetchedArray):
        return reads_into_new_memory(value._source)
    return isinstance(value, StoredArray)


class PrefetchedArray:
    """An array being read by a background thread; `np.asarray` waits for it.

    The prefetched copy is handed out once and then forgotten (so memory is released as a
    consumer goes through the arrays); a second `np.asarray` reads the source again.
    """

    def __init__(self, source, future):
        self.shape = tuple(source.shape)
        self.dtype = source.dtype
        self._source = source
        self._future = future

    @property
    def ndim(self):
        return len(self.shape)

    def __array__(self, dtype=None, copy=None):
        if self._future is not None:
            array, self._future = self._future.result(), None
        else:
            array = np.asarray(self._source)
        return array if dtype is None else array.astype(dtype, copy=False)


@contextlib.contextmanager
def prefetched(arrays, read=np.asarray):
    """`{name: PrefetchedArray}` read one after another, in sorted name order, by a background thread.

    Reading overlaps with whatever the caller does meanwhile (e.g. creating a model's layers).
    Leaving the block stops the reading.

    Args:
        arrays: name -> array-like (e.g. `StoredArray`).
        read: how the thread turns one into a numpy array (default `np.asarray`).

    Example:
    >>> with prefetched(state_dict) as state_dict:
    ...     model = build_model(state_dict)
    """
    reader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="keras_clip_reader")
    try:
        yield {
            name: PrefetchedArray(arrays[name], reader.submit(read, arrays[name])) for name in sorted(arrays)
        }
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
