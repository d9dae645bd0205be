"""Limits that keep a checkpoint's pickle from building more than its size can justify.

The restricted unpickler runs no code from a file, but a small pickle can still ask for a lot:
one list memoised once and handed to `torch.Size` a thousand times, a memo index of four billion
(the C unpickler then allocates a memo table that large), tuples nested a million deep (hashing
one as a dictionary key overflows the C stack), or a thousand integer keys with equal hashes.
Two checks bound what any pickle can cost, in proportion to its size:

- `scan_pickle`, before anything is built: every opcode and its argument must be well formed
  and lie inside the data; memo indices must be sequential (as every pickler writes them), so
  the memo holds at most one entry per opcode that stores one; tuples may nest at most
  `MAX_TUPLE_NESTING` deep; at most `MAX_COLLIDING_KEYS` dictionary keys or set items may be
  tuples or integers of more than 61 bits (whose hashes an attacker can make collide).
- `PickleBudget`, while the pickle is built: what the unpickler's own functions build (tensor
  records, `torch.Size`s, lists, dictionaries, TorchScript objects) is counted against
  `PER_PICKLE_BYTE` (one object per 8 bytes of pickle, one element per byte, ...) plus a fixed
  `ALLOWANCE` for tiny files; a tensor has at most `MAX_TENSOR_DIMS` dimensions.

A real checkpoint's pickle stays far inside every limit (OpenAI's ViT-B/32 archive: 38 KB of
pickle, 1,133 objects and 810 elements of the 70,334 and 103,925 allowed). Each refusal is an
`UnsafeCheckpointError` naming the limit.

Example:
>>> scan_pickle(data, "model.pt: data.pkl")
>>> budget = PickleBudget(len(data), "model.pt: data.pkl")
>>> budget.spend("elements", len(values), "torch.Size")
"""

import pickletools

from keras_clip.checkpoints.stored_array import MAX_TENSOR_DIMS
from keras_clip.errors import CheckpointError, UnsafeCheckpointError

# A checkpoint's pickle describes tensors; the data is elsewhere. Real ones are well under 1 MB.
MAX_PICKLE_BYTES = 32 << 20
MAX_TUPLE_NESTING = 100
MAX_COLLIDING_KEYS = 10_000
# What the unpickler's functions may build per byte of pickle (a tensor record takes ~50 bytes of it).
PER_PICKLE_BYTE = {"objects": 0.125, "elements": 1, "name characters": 16}
ALLOWANCE = 65_536  # of each, for any pickle, however small

# Opcodes that leave the object they modify on the stack: it keeps its nesting depth.
_IN_PLACE = frozenset(("APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"))
_TUPLES = frozenset(("EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"))
_INTEGERS = frozenset(("INT", "BININT", "LONG", "LONG1", "LONG4"))
# Where the objects an opcode hashes (dictionary keys, set items) are among those it takes.
_HASHED = {"SETITEM": slice(1, None, 2), "SETITEMS": slice(1, None, 2), "DICT": slice(0, None, 2),
           "ADDITEMS": slice(1, None), "FROZENSET": slice(0, None)}  # fmt: skip
_BIG_INTEGER = -1  # depth code of an integer of more than 61 bits (its hash collides on demand)
_HASH_MODULUS = (1 << 61) - 1
# Opcode name -> (objects it takes below a mark or in all, whether it takes all objects above the last mark,
# objects it leaves), from pickletools' table.
_EFFECTS = {}
for _opcode in pickletools.opcodes:
    _before = [item.name for item in _opcode.stack_before]
    _marked = "mark" in _before
    _EFFECTS[_opcode.name] = (_before.index("mark") if _marked else len(_before), _marked, len(_opcode.stack_after))


def _refuse(where, what):
    return UnsafeCheckpointError(f"{where}: refused to load: {what}; no checkpoint needs that (a hostile file?)")


def check_pickle_size(size, where):
    """Refuse a pickle of more than `MAX_PICKLE_BYTES` (before reading it)."""
    if size > MAX_PICKLE_BYTES:
        raise _refuse(where, f"its pickle is {size:,} bytes, more than the limit of {MAX_PICKLE_BYTES:,}")


def scan_pickle(data, where):
    """Check a pickle's opcodes before it is unpickled (see the module's docstring).

    Follows the pickle's stack and memo, tracking for each object only how deep the tuples in it
    nest (a list, dict or any other object stops a hash's recursion).

    Args:
        data: the pickle's bytes.
        where: how messages name it, e.g. "model.pt: data.pkl".

    Raises:
        CheckpointError: a malformed pickle (unknown opcode, truncated argument, stack underflow).
        UnsafeCheckpointError: a limit is exceeded (named).
    """
    check_pickle_size(len(data), where)
    stack, marks, memo = [], [0], []  # marks[-1]: where the objects above the last MARK begin
    colliding_keys = 0
    position = 0

    def malformed(what):
        return CheckpointError(f"{where}: malformed pickle: {what} at byte {position}")

    try:
        for opcode, argument, position in pickletools.genops(data):
            name = opcode.name
            taken, marked, left = _EFFECTS[name]
            if name in ("BINGET", "LONG_BINGET", "GET"):
                if not 0 <= argument < len(memo):
                    raise malformed(f"memo entry {argument} read but never stored")
                stack.append(memo[argument])
            elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
                index = len(memo) if name == "MEMOIZE" else argument
                if len(stack) <= marks[-1] or index < 0:
                    raise malformed(f"memo store {index} of nothing" if index >= 0 else f"memo index {index}")
                if index > len(memo):
                    raise _refuse(where, f"its pickle stores memo entry {index:,} at byte {position} while it has "
                                         f"{len(memo):,} (memo indices must be sequential)")  # fmt: skip
                if index == len(memo):
                    memo.append(stack[-1])
                else:
                    memo[index] = stack[-1]
            elif name == "MARK":
                marks.append(len(stack))
            elif name == "DUP":
                if len(stack) <= marks[-1]:
                    raise malformed("DUP of nothing")
                stack.append(stack[-1])
            elif not taken and not marked:  # a new object from the opcode's argument, or nothing
                if left:
                    big = name in _INTEGERS and abs(argument) >= _HASH_MODULUS
                    stack.append(_BIG_INTEGER if big else 1 if name == "EMPTY_TUPLE" else 0)
            else:
                items = []
                if marked:
                    if len(marks) == 1:
                        raise malformed(f"{name} without a MARK")
                    items = stack[marks[-1] :]
                    del stack[marks.pop() :]
                if taken:
                    if len(stack) - taken < marks[-1]:
                        raise malformed(f"{name} with too few objects")
                    items = stack[-taken:] + items
                    del stack[-taken:]
                if name in _HASHED:
                    colliding_keys += sum(1 for item in items[_HASHED[name]] if item != 0)
                    if colliding_keys > MAX_COLLIDING_KEYS:
                        raise _refuse(where, f"its pickle uses more than {MAX_COLLIDING_KEYS:,} tuples or integers "
                                             "of more than 61 bits as dictionary keys or set items")  # fmt: skip
                if name in _TUPLES:
                    depth = 1 + max((item for item in items if item > 0), default=0)
                    if depth > MAX_TUPLE_NESTING:
                        raise _refuse(where, f"its pickle nests tuples more than {MAX_TUPLE_NESTING} deep "
                                             f"(byte {position})")  # fmt: skip
                    stack.append(depth)
                elif name in _IN_PLACE:
                    stack.append(items[0])
                elif left:
                    stack.append(0)
            if name == "STOP":
                break
    except CheckpointError:
        raise
    except ValueError as error:  # from pickletools: unknown opcode, argument past the end, malformed number
        raise CheckpointError(f"{where}: malformed pickle: {error}") from None


class PickleBudget:
    """What the unpickler's own functions may still build for one pickle (see the module's docstring).

    Counts three kinds of things, each limited in proportion to the pickle's size (`PER_PICKLE_BYTE`)
    plus `ALLOWANCE`: "objects" (tensor records, storages, TorchScript objects, dictionaries),
    "elements" (copied into the lists, tuples and dictionaries those functions build) and
    "name characters" (of the parameter names made from TorchScript module paths).

    Args:
        pickle_bytes: the pickle's size.
        where: how messages name it.
    """

    def __init__(self, pickle_bytes, where):
        self.where = where
        self.pickle_bytes = pickle_bytes
        self.limits = {kind: int(rate * pickle_bytes) + ALLOWANCE for kind, rate in PER_PICKLE_BYTE.items()}
        self.spent = dict.fromkeys(PER_PICKLE_BYTE, 0)

    def spend(self, kind, count, what):
        """Count `count` of `kind` built by `what` (e.g. "torch.Size"); refuses past the limit."""
        self.spent[kind] += count
        if self.spent[kind] > self.limits[kind]:
            raise _refuse(self.where, f"its pickle builds more than {self.limits[kind]:,} {kind} ("
                                      f"{PER_PICKLE_BYTE[kind]:g} per byte of its {self.pickle_bytes:,} + "
                                      f"{ALLOWANCE:,}; the last {count:,} by {what})")  # fmt: skip

    def check_dims(self, count, what):
        """Refuse a shape of more than `MAX_TENSOR_DIMS` dimensions."""
        if count > MAX_TENSOR_DIMS:
            raise _refuse(self.where, f"its {what} has {count:,} dimensions, more than the limit of {MAX_TENSOR_DIMS}")
