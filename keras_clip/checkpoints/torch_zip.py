"""PyTorch checkpoints read without PyTorch, and without running any code from the file.

Two formats share one layout, a zip archive with a folder `<prefix>/`:
- `torch.save` (PyTorch >= 1.6): `data.pkl` pickles the saved object (a state dict);
- TorchScript (`torch.jit.save`, OpenAI's released `.pt` files): `data.pkl` pickles the module
  tree as `__torch__.*` objects whose attributes are the parameters, `code/` holds the modules'
  TorchScript source (which also lists each module's parameters and buffers) and
  `constants.pkl` the traced constants (e.g. attention masks: not parameters, not read here).
In both, a tensor is pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`
whose storage is a persistent id naming the raw little-endian bytes in `<prefix>/data/<key>`.

The pickle is checked, then unpickled by `RestrictedUnpickler` (`restricted_unpickler.py`) within
limits proportional to its size (`pickle_limits.py`): nothing from the file is run, and no file
makes the reader build more than its size justifies. Tensors come back as `StoredArray`s that read
their bytes when used, checking each storage record's CRC-32 as it is read. Every record read whole
(the pickle, `code/` files) must be stored within the file's size, and their total too.

Example:
>>> state_dict = read_torch_state_dict("ViT-B-32.pt")
>>> np.asarray(state_dict["visual.conv1.weight"]).shape
(768, 3, 32, 32)
"""

import io
import os
import pickle
import re
import struct
import zipfile
import zlib

import numpy as np

from keras_clip.checkpoints.pickle_limits import PickleBudget, check_pickle_size, scan_pickle
from keras_clip.checkpoints.restricted_unpickler import (
    Refused,
    RestrictedUnpickler,
    ScriptObject,
    TensorRecord,
)
from keras_clip.checkpoints.stored_array import BFLOAT16, FileSource, short_repr
from keras_clip.errors import CheckpointError, UnsafeCheckpointError

ZIP_MAGIC = b"PK\x03\x04"
# The first bytes of a pre-1.6 `torch.save` file: a pickled magic number.
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
# A state dict may be wrapped in a training checkpoint, e.g. {"state_dict": ...}: looked for this deep.
MAX_WRAPPING = 8
MAX_MODULE_DEPTH = 100
# Errors the zip and pickle machinery raise on a damaged file (each is reported as a CheckpointError);
# RuntimeError: an "encrypted" record, an unsupported compression method (NotImplementedError), deep nesting.
DAMAGE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError, AttributeError,
                 IndexError, KeyError, OverflowError, RuntimeError, struct.error, pickle.UnpicklingError)  # fmt: skip


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
        except DAMAGE_ERRORS as error:
            if isinstance(error, OSError) and not os.path.isfile(self.path):
                raise
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
        self._bytes_read = 0
        self._code = {}
        byteorder = self.prefix + "byteorder"
        self.byteorder = self.read_record(byteorder).decode("ascii", "replace").strip() if byteorder in self.infos \
            else "little"  # fmt: skip
        if self.byteorder not in ("little", "big"):
            raise CheckpointError(f"{self.path}: unknown byte order {short_repr(self.byteorder)} in {byteorder}")

    @property
    def is_torchscript(self):
        return any(name.startswith(self.prefix + "code/") for name in self.infos)

    def stored_dtype(self, dtype):
        if self.byteorder == "little":
            return dtype
        if dtype == BFLOAT16:
            raise CheckpointError(f"{self.path}: big-endian bfloat16 storages are not supported")
        return np.dtype(dtype).newbyteorder(">")

    def read_record(self, name):
        """The bytes of the record `name`, CRC-checked by `zipfile`.

        A record read whole must not be larger than the file, nor all of them together (zip
        entries can overlap, or be compressed bombs).
        """
        info = self.infos[name]
        self._bytes_read += info.file_size
        if self._bytes_read > self.source.size:
            raise UnsafeCheckpointError(
                f"{self.path}: refused to load: its record {name} unpacks to {info.file_size:,} bytes, which with the "
                f"records read before is more than the file's {self.source.size:,} (a zip bomb?)"
            )
        try:
            return self.zip.read(info)
        except DAMAGE_ERRORS as error:
            raise CheckpointError(f"{self.path}: cannot read its record {name}: {type(error).__name__}: {error}") \
                from None  # fmt: skip

    def storage_location(self, key):
        """(record name, byte offset in the file, byte size, CRC-32) of `data/<key>`, which must be stored
        uncompressed."""
        record = f"{self.prefix}data/{key}"
        info = self.infos.get(record)
        if info is None:
            raise CheckpointError(f"{self.path}: storage data/{short_repr(key)[1:-1]} is missing from the archive")
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{self.path}: storage {record} is compressed; PyTorch writes storages uncompressed")
        header = self.source_bytes(info.header_offset, 30)
        if header[:4] != ZIP_MAGIC:
            raise CheckpointError(f"{self.path}: corrupt zip entry for {record}")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        return record, info.header_offset + 30 + name_length + extra_length, info.file_size, info.CRC

    def source_bytes(self, offset, count):
        buffer = np.empty(count, np.uint8)
        self.source.read_into(offset, buffer)
        return buffer.tobytes()

    def unpickle(self, record="data.pkl"):
        """The object pickled in `<prefix>/<record>`, tensors as `TensorRecord`s, and the pickle's `PickleBudget`."""
        where = f"{self.path}: {record}"
        check_pickle_size(self.infos[self.prefix + record].file_size, where)
        data = self.read_record(self.prefix + record)
        budget = PickleBudget(len(data), where)
        try:
            scan_pickle(data, where)
            return RestrictedUnpickler(io.BytesIO(data), self, budget).load(), budget
        except Refused as refusal:
            raise UnsafeCheckpointError(f"{self.path}: refused to load: {refusal}") from None
        except CheckpointError as error:
            if str(error).startswith(self.path):
                raise
            raise type(error)(f"{where}: {error}") from None
        except DAMAGE_ERRORS as error:
            raise CheckpointError(f"{where}: cannot read it: {type(error).__name__}: {error}") from None

    def declared_tensors(self, qualified_name):
        """Parameter and buffer names a TorchScript class declares in `code/`, or None if not found."""
        module, _, class_name = qualified_name.rpartition(".")
        path = f"{self.prefix}code/{module.replace('.', '/')}.py"
        if path not in self._code:
            self._code[path] = self.read_record(path).decode("utf-8", "replace") if path in self.infos else ""
        pattern = (
            rf"^class {re.escape(class_name)}\(Module\):\n"
            r"  __parameters__ = \[(?P<parameters>[^\]]*)\]\n  __buffers__ = \[(?P<buffers>[^\]]*)\]"
        )
        match = re.search(pattern, self._code[path], re.MULTILINE)
        if match is None:
            return None
        return set(re.findall(r'"([^"]*)"', match.group("parameters") + match.group("buffers")))


def _script_module_tensors(archive, root, budget):
    """`{dotted path: StoredArray}` of the tensors a TorchScript module tree holds (declared ones, if declared),
    in the order of the modules' attributes, depth first."""
    tensors = {}
    pending = []  # (prefix, the module's remaining attributes), innermost last

    def enter(prefix, module):
        budget.spend("objects", 1, "a visit of a TorchScript module")  # a shared module is visited once per path
        if len(pending) >= MAX_MODULE_DEPTH:
            raise UnsafeCheckpointError(f"{archive.path}: refused to load: its TorchScript modules nest more than "
                                        f"{MAX_MODULE_DEPTH} deep")  # fmt: skip
        if isinstance(module.state, dict):
            declared = archive.declared_tensors(module.qualified_name)
            pending.append((prefix, declared, iter(list(module.state.items()))))

    enter("", root)
    while pending:
        prefix, declared, attributes = pending[-1]
        for name, value in attributes:
            if not isinstance(name, str):
                continue
            if isinstance(value, TensorRecord) and (declared is None or name in declared):
                budget.spend("name characters", len(prefix) + len(name), "a TorchScript parameter name")
                tensors[prefix + name] = value.array
            elif isinstance(value, ScriptObject):
                budget.spend("name characters", len(prefix) + len(name) + 1, "a TorchScript module path")
                enter(f"{prefix}{name}.", value)
                break
        else:
            pending.pop()
    return tensors


def _tensor_mapping(obj):
    """The state dict inside a `torch.save`d object: the object itself or a common wrapper key."""
    for _ in range(MAX_WRAPPING):
        if not isinstance(obj, dict):
            return None
        tensors = {key: value.array for key, value in obj.items()
                   if isinstance(key, str) and isinstance(value, TensorRecord)}  # fmt: skip
        if tensors:
            return tensors
        obj = next((obj[key] for key in ("state_dict", "model", "module", "model_state_dict") if key in obj), None)
    return None


def read_torch_state_dict(path):
    """`{name: StoredArray}` of a `torch.save` state dict or of a TorchScript module's parameters.

    A state dict wrapped in a training checkpoint (`{"state_dict": ...}`) is found, and a
    `module.` prefix left by DataParallel is removed.

    Raises:
        CheckpointError: unreadable file, or no tensors in it.
        UnsafeCheckpointError: the pickle asks for anything but tensors, or more than its size justifies.
    """
    archive = TorchArchive(path)
    obj, budget = archive.unpickle()
    if isinstance(obj, ScriptObject):
        tensors = _script_module_tensors(archive, obj, budget)
    else:
        tensors = _tensor_mapping(obj)
    if not tensors:
        raise CheckpointError(f"{archive.path}: no tensors found; the pickled object is a {type(obj).__name__}")
    if all(key.startswith("module.") for key in tensors):
        tensors = {key[len("module."):]: value for key, value in tensors.items()}
    return tensors
