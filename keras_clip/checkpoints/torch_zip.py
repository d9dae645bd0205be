"""PyTorch checkpoints read without PyTorch, and without running any code from the file.

Two formats share one layout, a zip archive with a folder `<prefix>/`:
- `torch.save` (PyTorch >= 1.6): `data.pkl` pickles the saved object (a state dict);
- TorchScript (`torch.jit.save`, OpenAI's released `.pt` files): `data.pkl` pickles the module
  tree as `__torch__.*` objects whose attributes are the parameters, `code/` holds the modules'
  TorchScript source (which also lists each module's parameters and buffers) and
  `constants.pkl` the traced constants (e.g. attention masks: not parameters, not read here).
In both, a tensor is pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`
whose storage is a persistent id `('storage', torch.<Type>Storage, key, location, numel)` naming
the raw little-endian bytes in `<prefix>/data/<key>`.

`RestrictedUnpickler` resolves only those names (plus `collections.OrderedDict` and TorchScript
records, kept as inert data); any other global, e.g. `posix.system`, is refused before anything
is called. Tensors come back as `StoredArray`s that read their bytes when used.

Example:
>>> state_dict = read_torch_state_dict("ViT-B-32.pt")
>>> np.asarray(state_dict["visual.conv1.weight"]).shape
(768, 3, 32, 32)
"""

import _compat_pickle
import collections
import os
import pickle
import re
import struct
import zipfile

import numpy as np

from keras_clip.checkpoints.stored_array import BFLOAT16, FileSource, StoredArray
from keras_clip.errors import CheckpointError, UnsafeCheckpointError

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

ZIP_MAGIC = b"PK\x03\x04"
# The first bytes of a pre-1.6 `torch.save` file: a pickled magic number.
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


class StorageType:
    """`torch.<Type>Storage` as named in a pickle: only its element dtype matters."""

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype


class TorchDtype:
    """`torch.<dtype>` as named in a pickle."""

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype


class Storage:
    """A storage's bytes in the archive: byte offset in the file, dtype, element count."""

    def __init__(self, key, offset, dtype, numel):
        self.key = key
        self.offset = offset
        self.dtype = dtype
        self.numel = numel

    @property
    def nbytes(self):
        return self.numel * _itemsize(self.dtype)


class ScriptObject:
    """An object of a TorchScript class (`__torch__.*`), kept as data, never run.

    `qualified_name` is the class's TorchScript name; `state` what the pickle set on it (for a
    module: a dict of its attributes, submodules and tensors).
    """

    qualified_name = None

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"ScriptObject({self.qualified_name})"


def _itemsize(dtype):
    return 2 if dtype == BFLOAT16 else np.dtype(dtype).itemsize


def _identity(value, *unused):
    return value


def _as_list(values):
    return list(values)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a checkpoint's `data.pkl`, resolving only the names tensors need.

    Args:
        file: the pickle as a binary file object.
        archive: the `TorchArchive` whose `data/` records hold the storages.
    """

    def __init__(self, file, archive):
        super().__init__(file)
        self.archive = archive
        self._storages = {}
        self._script_classes = {}

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
        if module == "torch._utils":
            rebuilders = {
                "_rebuild_tensor": self.rebuild_tensor,
                "_rebuild_tensor_v2": self.rebuild_tensor,
                "_rebuild_tensor_v3": self.rebuild_tensor_v3,
                "_rebuild_parameter": _identity,
                "_rebuild_parameter_with_state": _identity,
            }
            if name in rebuilders:
                return rebuilders[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch", "Size"):
            return tuple
        if module == "torch.jit._pickle":
            if name == "restore_type_tag":
                return _identity
            if name.startswith("build_") and name.endswith("list"):
                return _as_list
        if module == "__torch__" or module.startswith("__torch__."):
            return self._script_class(f"{module}.{name}")
        raise UnsafeCheckpointError(
            f"{self.archive.path}: refused to load: its pickle asks for the global {module}.{name}, which is "
            "not part of a tensor checkpoint (loading never runs code from a file)"
        )

    def _script_class(self, qualified_name):
        if qualified_name not in self._script_classes:
            short_name = qualified_name.rsplit(".", 1)[-1]
            self._script_classes[qualified_name] = type(short_name, (ScriptObject,), {"qualified_name": qualified_name})
        return self._script_classes[qualified_name]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self.archive.path}: unsupported persistent id {str(pid)[:100]!r} in the pickle")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, StorageType):
            raise CheckpointError(f"{self.archive.path}: storage {key!r} has no storage type")
        if not isinstance(key, str) or not isinstance(location, str) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"{self.archive.path}: malformed storage record {str(pid)[:100]!r}")
        if key not in self._storages:
            dtype = self.archive.stored_dtype(storage_type.dtype)
            offset, size = self.archive.storage_location(key)
            storage = Storage(key, offset, dtype, numel)
            if storage.nbytes > size:
                raise CheckpointError(
                    f"{self.archive.path}: storage data/{key} is truncated: {size} bytes, "
                    f"{numel} elements of {storage_type.name} need {storage.nbytes}"
                )
            self._storages[key] = storage
        return self._storages[key]

    def rebuild_tensor(self, storage, storage_offset, size, stride, *unused):
        return self._tensor(storage, storage.dtype, storage_offset, size, stride)

    def rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad, hooks, dtype, *unused):
        if not isinstance(dtype, TorchDtype):
            raise CheckpointError(f"{self.archive.path}: tensor record with an unknown dtype {dtype!r}")
        return self._tensor(storage, self.archive.stored_dtype(dtype.dtype), storage_offset, size, stride)

    def _tensor(self, storage, dtype, storage_offset, size, stride):
        if not isinstance(storage, Storage):
            raise CheckpointError(f"{self.archive.path}: tensor record without a storage")
        size, stride = tuple(size), tuple(stride)
        values = (storage_offset,) + size + stride
        if len(size) != len(stride) or not all(isinstance(value, int) and value >= 0 for value in values):
            raise CheckpointError(f"{self.archive.path}: malformed tensor record size={size} stride={stride}")
        itemsize = _itemsize(dtype)
        if 0 not in size:
            last = storage_offset + sum((extent - 1) * step for extent, step in zip(size, stride))
            if (last + 1) * itemsize > storage.nbytes:
                raise CheckpointError(
                    f"{self.archive.path}: a tensor of size {size}, stride {stride}, offset {storage_offset} reaches "
                    f"past the end of storage data/{storage.key} ({storage.numel} elements)"
                )
        return StoredArray(self.archive.source, storage.offset + storage_offset * itemsize, dtype, size, stride)


class TorchArchive:
    """A zip-format PyTorch file: `torch.save` output or a TorchScript archive.

    Args:
        path: the file.

    Raises:
        CheckpointError: not a zip archive (e.g. truncated), a pre-1.6 `torch.save` file, or no
            `data.pkl` record.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        with open(self.path, "rb") as file:
            head = file.read(len(LEGACY_TORCH_MAGIC))
        try:
            self.zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as error:
            if head.startswith(LEGACY_TORCH_MAGIC):
                raise CheckpointError(
                    f"{self.path} is in the legacy torch.save format of PyTorch < 1.6, which is not supported; "
                    "re-save it with a recent torch.save"
                ) from None
            what = "a truncated or corrupt zip archive" if head.startswith(ZIP_MAGIC) else "not a zip archive"
            raise CheckpointError(f"{self.path} is {what}, so not a PyTorch checkpoint ({error})") from None
        self.source = FileSource(self.path)
        self.infos = {info.filename: info for info in self.zip.infolist()}
        pickles = [name for name in self.infos if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{self.path} is a zip archive but not a PyTorch checkpoint (no <name>/data.pkl)")
        self.prefix = pickles[0][: -len("data.pkl")]
        byteorder = self.infos.get(self.prefix + "byteorder")
        self.byteorder = self.zip.read(byteorder).decode().strip() if byteorder else "little"
        self._code = {}

    @property
    def is_torchscript(self):
        return any(name.startswith(self.prefix + "code/") for name in self.infos)

    def stored_dtype(self, dtype):
        if self.byteorder == "little":
            return dtype
        if dtype == BFLOAT16:
            raise CheckpointError(f"{self.path}: big-endian bfloat16 storages are not supported")
        return np.dtype(dtype).newbyteorder(">")

    def storage_location(self, key):
        """(byte offset in the file, byte size) of `data/<key>`, which must be stored uncompressed."""
        info = self.infos.get(f"{self.prefix}data/{key}")
        if info is None:
            raise CheckpointError(f"{self.path}: storage data/{key} is missing from the archive")
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{self.path}: storage data/{key} is compressed; PyTorch writes storages uncompressed")
        header = self.source_bytes(info.header_offset, 30)
        if header[:4] != ZIP_MAGIC:
            raise CheckpointError(f"{self.path}: corrupt zip entry for data/{key}")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        return info.header_offset + 30 + name_length + extra_length, info.file_size

    def source_bytes(self, offset, count):
        buffer = np.empty(count, np.uint8)
        self.source.read_into(offset, buffer)
        return buffer.tobytes()

    def unpickle(self, record="data.pkl"):
        """The object pickled in `<prefix>/<record>`, with tensors as `StoredArray`s."""
        try:
            with self.zip.open(self.prefix + record) as file:
                return RestrictedUnpickler(file, self).load()
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError,
                IndexError, KeyError) as error:
            raise CheckpointError(f"{self.path}: cannot read {record}: {type(error).__name__}: {error}") from None

    def declared_tensors(self, qualified_name):
        """Parameter and buffer names a TorchScript class declares in `code/`, or None if not found."""
        module, _, class_name = qualified_name.rpartition(".")
        path = f"{self.prefix}code/{module.replace('.', '/')}.py"
        if path not in self._code:
            self._code[path] = self.zip.read(path).decode("utf-8", "replace") if path in self.infos else ""
        pattern = (
            rf"^class {re.escape(class_name)}\(Module\):\n"
            r"  __parameters__ = \[(?P<parameters>[^\]]*)\]\n  __buffers__ = \[(?P<buffers>[^\]]*)\]"
        )
        match = re.search(pattern, self._code[path], re.MULTILINE)
        if match is None:
            return None
        return set(re.findall(r'"([^"]*)"', match.group("parameters") + match.group("buffers")))


def _script_module_tensors(archive, module, prefix, tensors):
    if not isinstance(module.state, dict):
        return
    declared = archive.declared_tensors(module.qualified_name)
    for name, value in module.state.items():
        if isinstance(value, StoredArray) and (declared is None or name in declared):
            tensors[prefix + name] = value
        elif isinstance(value, ScriptObject):
            _script_module_tensors(archive, value, f"{prefix}{name}.", tensors)


def _tensor_mapping(obj):
    """The state dict inside a `torch.save`d object: the object itself or a common wrapper key."""
    if not isinstance(obj, dict):
        return None
    tensors = {key: value for key, value in obj.items() if isinstance(key, str) and isinstance(value, StoredArray)}
    if tensors:
        return tensors
    for key in ("state_dict", "model", "module", "model_state_dict"):
        inner = _tensor_mapping(obj.get(key))
        if inner:
            return inner
    return None


def read_torch_state_dict(path):
    """`{name: StoredArray}` of a `torch.save` state dict or of a TorchScript module's parameters.

    A state dict wrapped in a training checkpoint (`{"state_dict": ...}`) is found, and a
    `module.` prefix left by DataParallel is removed.

    Raises:
        CheckpointError: unreadable file, or no tensors in it.
        UnsafeCheckpointError: the pickle asks for anything but tensors.
    """
    archive = TorchArchive(path)
    obj = archive.unpickle()
    if isinstance(obj, ScriptObject):
        tensors = {}
        _script_module_tensors(archive, obj, "", tensors)
    else:
        tensors = _tensor_mapping(obj)
    if not tensors:
        raise CheckpointError(f"{archive.path}: no tensors found; the pickled object is a {type(obj).__name__}")
    if all(key.startswith("module.") for key in tensors):
        tensors = {key[len("module."):]: value for key, value in tensors.items()}
    return tensors
