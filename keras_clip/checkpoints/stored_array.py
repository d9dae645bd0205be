"""Arrays that stay in their checkpoint file until they are used.

A checkpoint reader returns `StoredArray`s instead of loaded arrays: each knows its shape and
dtype, and reads its bytes from the file only when converted with `np.asarray`. A conversion
that uses one weight at a time therefore holds one weight in memory, not the whole file.
An array may carry the CRC-32 of the file region (e.g. zip record) it lies in: the region's
bytes are checked as they are first read, chunk by chunk, never in a second pass.
"""

import concurrent.futures
import contextlib
import mmap
import os
import reprlib
import threading
import zlib

import numpy as np

from keras_clip.errors import CheckpointError

# numpy has no bfloat16: such arrays are read as uint16 and widened to float32 (exactly).
BFLOAT16 = "bfloat16"
# No checkpoint format reader accepts an array of more dimensions (PyTorch's own limit is lower).
MAX_TENSOR_DIMS = 64
# Bytes read per system call when checksumming: the CRC runs on each chunk while it is still in the CPU's cache.
CHECKSUM_CHUNK_BYTES = 1 << 20
HUGE_PAGE_BYTES = 1 << 21
# Arrays at least this large are mapped from a `FileSource(mapped=True)` rather than read.
MAPPED_ARRAY_BYTES = 1 << 20


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def short_repr(value):
    """A value read from a file as an error message quotes it: at most a few hundred characters, whatever it is."""
    return _SHORT.repr(value)


def aligned_empty(shape, dtype, alignment=64):
    """An uninitialised C-contiguous array whose data starts at a multiple of `alignment` bytes.

    TensorFlow can then use the memory as a tensor's buffer without copying it (its kernels
    assume 64-byte aligned data; numpy only guarantees 16). Arrays of 2 MB and more are mapped memory
    advised to use huge pages: first writes to fresh memory fault once per 2 MB instead of per 4 KB.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes >= HUGE_PAGE_BYTES and hasattr(mmap, "MADV_HUGEPAGE"):
        memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        memory.madvise(mmap.MADV_HUGEPAGE)
        return np.frombuffer(memory, dtype).reshape(shape)  # page-aligned; the array keeps the map alive
    raw = np.empty(nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def bfloat16_to_float32(bits):
    """float32 array with the values of bfloat16 numbers given as their uint16 bit patterns."""
    widened = np.asarray(bits, dtype=np.uint16).astype(np.uint32)
    widened <<= 16
    return widened.view(np.float32)


class FileSource:
    """An open file read by (offset, size) ranges; safe to share between arrays and threads.

    With `mapped`, large contiguous arrays are private copy-on-write maps of the file instead of reads
    (`mapped_array`): no memory is filled until a page is used, and pages already in the page cache
    are used in place. Only for files nobody truncates while they are mapped (e.g. the conversion
    cache, replaced by renames): touching a page past a truncated end kills the process (SIGBUS).
    """

    def __init__(self, path, mapped=False):
        self.path = os.fspath(path)
        self._file = open(self.path, "rb", buffering=0)
        self._lock = threading.Lock()
        self.size = os.fstat(self._file.fileno()).st_size
        self.mapped = bool(mapped) and hasattr(mmap, "MAP_PRIVATE")  # not on Windows: read there

    def mapped_array(self, offset, dtype, shape):
        """A writable array over the file's bytes at `offset`, in a private map of its own (writes stay in
        memory; each call maps again, so two calls never share memory)."""
        count = int(np.prod(shape, dtype=np.int64))
        self._check_range(offset, count * dtype.itemsize)
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        memory = mmap.mmap(self._file.fileno(), offset + count * dtype.itemsize - start, flags=mmap.MAP_PRIVATE,
                           prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=start)  # fmt: skip
        return np.frombuffer(memory, dtype, count, offset - start).reshape(shape)

    def _check_range(self, offset, nbytes):
        if offset < 0 or offset + nbytes > self.size:
            raise CheckpointError(
                f"{self.path} is truncated: bytes {offset}..{offset + nbytes} are past its end ({self.size} bytes)"
            )

    def read_into(self, offset, buffer, crc32=False):
        """Fill `buffer` (a writable numpy array) with the bytes at `offset`.

        With `crc32`, returns the CRC-32 of those bytes, computed chunk by chunk as they arrive.
        """
        view = memoryview(buffer).cast("B")
        self._check_range(offset, len(view))
        chunk = CHECKSUM_CHUNK_BYTES if crc32 else max(len(view), 1)
        checksum = 0
        with self._lock:
            self._file.seek(offset)
            filled = 0
            while filled < len(view):
                count = self._file.readinto(view[filled : filled + chunk])
                if not count:
                    raise CheckpointError(f"{self.path} is truncated: unexpected end of file at byte {offset + filled}")
                if crc32:
                    checksum = zlib.crc32(view[filled : filled + count], checksum)
                filled += count
        return checksum if crc32 else None

    def close(self):
        self._file.close()


class RegionChecksum:
    """The CRC-32 a region of a file must have (e.g. a zip record's), checked once, when first read.

    Args:
        description: how errors name the region, e.g. "storage record archive/data/3 of model.pt".
        offset: the region's first byte in the file.
        nbytes: its length.
        crc32: the CRC-32 its bytes must have.
    """

    def __init__(self, description, offset, nbytes, crc32):
        self.description = description
        self.offset = offset
        self.nbytes = nbytes
        self.crc32 = crc32
        self.verified = False

    def verify(self, crc32):
        """Record the CRC-32 computed over the whole region; raises `CheckpointError` if it is not the expected one."""
        if crc32 != self.crc32:
            raise CheckpointError(
                f"The {self.description} is corrupt: its bytes have CRC-32 {crc32:08x}, the archive says "
                f"{self.crc32:08x} (a damaged or altered file; download or copy it again)"
            )
        self.verified = True


class StoredArray:
    """An array (or strided view of one) at a byte offset of a file, read on demand.

    Args:
        source: the `FileSource` to read from.
        offset: byte offset of the element at index (0, ..., 0).
        dtype: numpy dtype of the stored elements (may be non-native byte order), or `BFLOAT16`.
        shape: the array's shape.
        strides: strides in elements (PyTorch's convention); None for C-contiguous.
        checksum: the `RegionChecksum` of the file region holding the array, or None.

    `np.asarray(stored)` returns a new C-contiguous array in native byte order (bfloat16 is
    widened to float32).
    """

    def __init__(self, source, offset, dtype, shape, strides=None, checksum=None):
        self.source = source
        self.checksum = checksum
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
        if self.checksum is not None and not self.checksum.verified:
            return self._read_checked(raw_dtype)
        if self.is_contiguous and self._mappable(raw_dtype):
            return self.source.mapped_array(self.offset, raw_dtype, self.shape)
        if self.is_contiguous:
            array = aligned_empty(self.shape, raw_dtype)
            self.source.read_into(self.offset, array)
            return array
        # Read the span the strided view covers, then copy the view out of it.
        buffer = np.empty(self._span(), raw_dtype)
        self.source.read_into(self.offset, buffer)
        return self._view(buffer, raw_dtype).copy()

    def _mappable(self, raw_dtype):
        return (self.source.mapped and self.stored_dtype != BFLOAT16 and raw_dtype.isnative
                and self.size * raw_dtype.itemsize >= MAPPED_ARRAY_BYTES)  # fmt: skip

    def _span(self):
        return 1 + sum((size - 1) * stride for size, stride in zip(self.shape, self.strides))

    def _view(self, buffer, raw_dtype):
        byte_strides = tuple(stride * raw_dtype.itemsize for stride in self.strides)
        return np.lib.stride_tricks.as_strided(buffer, self.shape, byte_strides, writeable=False)

    def _read_checked(self, raw_dtype):
        """The array, read with its region's CRC-32 check: directly if it is the whole region, else via the region."""
        checksum = self.checksum
        array = aligned_empty(self.shape, raw_dtype)
        if self.is_contiguous and self.offset == checksum.offset and array.nbytes == checksum.nbytes:
            checksum.verify(self.source.read_into(self.offset, array, crc32=True))
            return array
        region = np.empty(checksum.nbytes, np.uint8)
        checksum.verify(self.source.read_into(checksum.offset, region, crc32=True))
        start = self.offset - checksum.offset
        span = region[start : start + self._span() * raw_dtype.itemsize]
        array[...] = self._view(span.view(raw_dtype), raw_dtype)
        return array

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
