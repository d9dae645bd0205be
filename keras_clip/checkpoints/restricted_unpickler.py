"""The pickle of a PyTorch checkpoint, unpickled with only the names tensors need, within limits.

In a checkpoint's `data.pkl` a tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)` whose storage is a persistent id `('storage', torch.<Type>Storage, key, location,
numel)` naming the raw bytes in the archive's `data/<key>` record. `RestrictedUnpickler` resolves
only those names (plus `torch.Size`, `collections.OrderedDict`, TorchScript's list and type-tag
helpers, and TorchScript classes `__torch__.*`, kept as inert records); any other global, e.g.
`posix.system`, is refused before anything is called.

What it hands the pickle cannot be altered by it: its objects refuse the BUILD opcode's attribute
writes (TorchScript objects keep their state as data; dictionaries drop their pickled attributes).
What its functions build is counted by a `PickleBudget` (`pickle_limits.py`), so that no pickle
builds more than its size can justify.

Example:
>>> budget = pickle_limits.PickleBudget(len(data), "model.pt: data.pkl")
>>> state = RestrictedUnpickler(io.BytesIO(data), archive, budget).load()
"""

import _compat_pickle
import collections
import math
import pickle

import numpy as np

from keras_clip.checkpoints.stored_array import BFLOAT16, RegionChecksum, StoredArray, short_repr
from keras_clip.errors import CheckpointError

STORAGE_DTYPES = {
    "HalfStorage": np.float16,
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "BFloat16Storage": BFLOAT16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128,
    "UntypedStorage": np.uint8,  # torch 2.x's byte storage; the tensor record then carries the dtype
}

# `torch.<dtype>` globals, as `_rebuild_tensor_v3` records a tensor's dtype.
TORCH_DTYPES = {
    "float16": np.float16,
    "half": np.float16,
    "float32": np.float32,
    "float": np.float32,
    "float64": np.float64,
    "double": np.float64,
    "bfloat16": BFLOAT16,
    "int64": np.int64,
    "long": np.int64,
    "int32": np.int32,
    "int": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
}

MAX_INDEX = (1 << 63) - 1  # sizes, strides and offsets must fit numpy's int64


def _cut(text, length=100):
    return text if len(text) <= length else text[:length] + "..."


class Refused(Exception):
    """The pickle asked for something the unpickler refuses; the archive names its file."""


def _itemsize(dtype):
    return 2 if dtype == BFLOAT16 else np.dtype(dtype).itemsize


class _Inert:
    """Base of the objects the unpickler hands a pickle: BUILD cannot set their attributes."""

    __slots__ = ()

    def __setstate__(self, state):
        raise Refused(f"its pickle sets attributes on {short_repr(self)}")


class StorageType(_Inert):
    """`torch.<Type>Storage` as named in a pickle: only its element dtype matters."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype


class TorchDtype(_Inert):
    """`torch.<dtype>` as named in a pickle."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype


class Storage(_Inert):
    """A storage's bytes in the archive: byte offset in the file, dtype, element count, its record's CRC-32."""

    __slots__ = ("key", "offset", "dtype", "numel", "checksum")

    def __init__(self, key, offset, dtype, numel, checksum):
        self.key = key
        self.offset = offset
        self.dtype = dtype
        self.numel = numel
        self.checksum = checksum

    @property
    def nbytes(self):
        return self.numel * _itemsize(self.dtype)


class TensorRecord(_Inert):
    """A tensor as the pickle describes it; `array` is the `StoredArray` that reads it."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __repr__(self):
        return f"TensorRecord({self.array.shape})"


class _Size(tuple):
    """`torch.Size`: a tuple that cannot be hashed (a dictionary key) or given attributes."""

    __slots__ = ()
    __hash__ = None

    def __setstate__(self, state):
        raise Refused("its pickle sets attributes on a torch.Size")


class _Function(_Inert):
    """One of the unpickler's functions, as the pickle sees it (named, and not a class: no NEWOBJ)."""

    __slots__ = ("name", "function")

    def __init__(self, name, function):
        self.name = name
        self.function = function

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self):
        return self.name


class ScriptObject:
    """An object of a TorchScript class (`__torch__.*`), kept as data, never run.

    `qualified_name` is the class's TorchScript name; `state` what the pickle set on it (for a
    module: a dict of its attributes, submodules and tensors).
    """

    __slots__ = ("state",)
    qualified_name = None
    budget = None

    def __new__(cls, *args, **kwargs):
        cls.budget.spend("objects", 1, cls.qualified_name)
        instance = object.__new__(cls)
        instance.state = None
        return instance

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"ScriptObject({self.qualified_name})"


def _length(values, what):
    if not isinstance(values, (list, tuple, dict)):
        raise CheckpointError(f"{what} of a {type(values).__name__}, not a list or tuple")
    return len(values)


def _dict_class(budget):
    class CheckpointDict(collections.OrderedDict):
        """`collections.OrderedDict` as the pickle builds it; pickled attributes (torch's `_metadata`) are dropped."""

        def __init__(self, *args):
            budget.spend("objects", 1, "collections.OrderedDict")
            if args:
                budget.spend("elements", _length(args[0], "collections.OrderedDict"), "collections.OrderedDict")
            super().__init__(*args)

        def __setstate__(self, state):
            pass

    return CheckpointDict


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a checkpoint's `data.pkl`, resolving only the names tensors need, within a budget.

    Args:
        file: the pickle as a binary file object (its opcodes already checked by `scan_pickle`).
        archive: the `TorchArchive` whose `data/` records hold the storages.
        budget: the `PickleBudget` of this pickle.
    """

    def __init__(self, file, archive, budget):
        super().__init__(file)
        self.archive = archive
        self.budget = budget
        self._storages = {}
        self._script_classes = {}
        self._dict_class = _dict_class(budget)
        self._functions = {
            ("torch", "Size"): self.torch_size,
            ("torch._utils", "_rebuild_tensor"): self.rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self.rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v3"): self.rebuild_tensor_v3,
            ("torch._utils", "_rebuild_parameter"): _parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
            ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
        }

    def find_class(self, module, name):
        # Protocol 2 pickles spell some modules as Python 2 did (`__builtin__`, `commands`): use today's names.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module in ("torch", "torch.cuda", "torch.storage") and name in STORAGE_DTYPES:
            return StorageType(name, STORAGE_DTYPES[name])
        if module == "torch" and name in TORCH_DTYPES:
            return TorchDtype(name, TORCH_DTYPES[name])
        if (module, name) in self._functions:
            return _Function(f"{module}.{name}", self._functions[(module, name)])
        if (module, name) == ("collections", "OrderedDict"):
            return self._dict_class
        if module == "torch.jit._pickle" and name.startswith("build_") and name.endswith("list"):
            return _Function(f"{module}.{name}", self.as_list)
        if module == "__torch__" or module.startswith("__torch__."):
            return self._script_class(f"{module}.{name}")
        raise Refused(
            f"its pickle asks for the global {_cut(module)}.{_cut(name)}, which is not part of a tensor checkpoint "
            "(loading never runs code from a file)"
        )

    def _script_class(self, qualified_name):
        if qualified_name not in self._script_classes:
            short_name = qualified_name.rsplit(".", 1)[-1]
            namespace = {"qualified_name": qualified_name, "budget": self.budget, "__slots__": ()}
            self._script_classes[qualified_name] = type(short_name, (ScriptObject,), namespace)
        return self._script_classes[qualified_name]

    def torch_size(self, values):
        self.budget.check_dims(_length(values, "torch.Size"), "torch.Size")
        self.budget.spend("elements", len(values), "torch.Size")
        return _Size(values)

    def as_list(self, values):
        self.budget.spend("elements", _length(values, "a TorchScript list"), "a TorchScript list")
        return list(values)

    def persistent_load(self, pid):
        path = self.archive.path
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{path}: unsupported persistent id {short_repr(pid)} in the pickle")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, StorageType):
            raise CheckpointError(f"{path}: storage {short_repr(key)} has no storage type")
        if not isinstance(key, str) or not isinstance(location, str) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"{path}: malformed storage record {short_repr(pid)}")
        if key not in self._storages:
            self.budget.spend("objects", 1, "a storage")
            dtype = self.archive.stored_dtype(storage_type.dtype)
            record, offset, size, crc32 = self.archive.storage_location(key)
            checksum = RegionChecksum(f"storage record {record} of {path}", offset, size, crc32)
            storage = Storage(key, offset, dtype, numel, checksum)
            if storage.nbytes > size:
                raise CheckpointError(
                    f"{path}: storage data/{key} is truncated: {size} bytes, "
                    f"{numel} elements of {storage_type.name} need {storage.nbytes}"
                )
            self._storages[key] = storage
        return self._storages[key]

    def rebuild_tensor(self, storage, storage_offset, size, stride, *unused):
        if not isinstance(storage, Storage):
            raise CheckpointError(f"{self.archive.path}: tensor record without a storage")
        return self._tensor(storage, storage.dtype, storage_offset, size, stride)

    def rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad, hooks, dtype, *unused):
        if not isinstance(dtype, TorchDtype):
            raise CheckpointError(f"{self.archive.path}: tensor record with an unknown dtype {short_repr(dtype)}")
        if not isinstance(storage, Storage):
            raise CheckpointError(f"{self.archive.path}: tensor record without a storage")
        return self._tensor(storage, self.archive.stored_dtype(dtype.dtype), storage_offset, size, stride)

    def _tensor(self, storage, dtype, storage_offset, size, stride):
        path = self.archive.path
        self.budget.check_dims(_length(size, "a tensor's size"), "tensor")
        malformed = f"{path}: malformed tensor record size={short_repr(size)} stride={short_repr(stride)}"
        if _length(stride, "a tensor's stride") != len(size):
            raise CheckpointError(malformed)
        self.budget.spend("objects", 1, "a tensor")
        self.budget.spend("elements", 2 * len(size), "a tensor's size and stride")
        size, stride = tuple(size), tuple(stride)
        values = (storage_offset,) + size + stride
        if not all(isinstance(value, int) and 0 <= value <= MAX_INDEX for value in values):
            raise CheckpointError(malformed)
        itemsize = _itemsize(dtype)
        # Nothing may describe more bytes than the file holds: a view repeating its storage (stride 0)
        # would be expanded in memory when read.
        described = math.prod(max(extent, 1) for extent in size) * itemsize
        if described > self.archive.source.size:
            raise Refused(
                f"its tensor of size {size} describes {described:,} bytes, more than the file's "
                f"{self.archive.source.size:,} (a view repeating its storage?)"
            )
        if 0 not in size:
            last = storage_offset + sum((extent - 1) * step for extent, step in zip(size, stride))
            if (last + 1) * itemsize > storage.nbytes:
                raise CheckpointError(
                    f"{path}: a tensor of size {size}, stride {stride}, offset {storage_offset} reaches "
                    f"past the end of storage data/{storage.key} ({storage.numel} elements)"
                )
        offset = storage.offset + storage_offset * itemsize
        return TensorRecord(StoredArray(self.archive.source, offset, dtype, size, stride, storage.checksum))


def _parameter(data, *unused):
    """`torch._utils._rebuild_parameter(data, requires_grad, hooks[, state])`: the tensor itself."""
    if not isinstance(data, TensorRecord):
        raise CheckpointError(f"a parameter record of a {type(data).__name__}, not a tensor")
    return data


def _restore_type_tag(value, *unused):
    """`torch.jit._pickle.restore_type_tag(value, type)`: the value (a TorchScript list or dict)."""
    if isinstance(value, tuple):  # tuples are never type-tagged; one could hide a deep nesting from scan_pickle
        raise CheckpointError("a type tag on a tuple")
    return value
