"""A SentencePiece model's bytes: read from a path, bytes or base64 text, and its user-defined pieces.

The model is a protobuf `ModelProto`: field 1 holds its pieces, each a message with the piece (field 1),
its score (2) and its type (3: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte). Only those fields
are read here, from the wire format, so no protobuf schema or `sentencepiece` package is needed.
"""

import base64

import tensorflow as tf

INLINE_PREFIX = "base64:"
CONTROL, USER_DEFINED = 3, 4


def encode_model_bytes(proto):
    """A SentencePiece model's bytes as "base64:<text>" (what `read_model_bytes` reads back)."""
    return INLINE_PREFIX + base64.b64encode(proto).decode("ascii")


def read_model_bytes(model):
    """A SentencePiece model's bytes from bytes, "base64:<text>" or a path."""
    if isinstance(model, bytes):
        return model
    if model.startswith(INLINE_PREFIX):
        return base64.b64decode(model[len(INLINE_PREFIX):])
    if not tf.io.gfile.exists(model):
        raise FileNotFoundError(f"No SentencePiece model at {model}")
    with tf.io.gfile.GFile(model, "rb") as handle:
        return handle.read()


def _varint(data, position):
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("Not a SentencePiece model: a protobuf number runs past the end of the file")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if byte < 0x80:
            return value, position


def _fields(data, start, end):
    """(field number, wire type, value start, value end) of each field of the message in data[start:end]."""
    position = start
    while position < end:
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            after = _varint(data, position)[1]
        elif wire_type == 2:
            length, position = _varint(data, position)
            after = position + length
        elif wire_type in (1, 5):
            after = position + (8 if wire_type == 1 else 4)
        else:
            raise ValueError(f"Not a SentencePiece model: protobuf wire type {wire_type}")
        if after > end:
            raise ValueError("Not a SentencePiece model: a protobuf field runs past its message")
        yield number, wire_type, position, after
        position = after


def without_user_defined_pieces(proto):
    """(the user-defined pieces of a model, the model with them made control pieces).

    SentencePiece finds user-defined pieces (Gemma's "<start_of_turn>", "<mask>", ...) anywhere in a text;
    as control pieces they are only ids, never found in text, and the text around them encodes as if they
    were not in the vocabulary.
    """
    data, names = bytearray(proto), []
    for number, wire_type, start, end in _fields(data, 0, len(data)):
        if number != 1 or wire_type != 2:
            continue
        piece, type_position = None, None
        for field, field_type, value_start, value_end in _fields(data, start, end):
            if field == 1 and field_type == 2:
                piece = bytes(data[value_start:value_end]).decode("utf-8", "replace")
            elif field == 3 and field_type == 0:
                type_position = value_start
        if type_position is not None and data[type_position] == USER_DEFINED:
            names.append(piece)
            data[type_position] = CONTROL  # one byte either way: the message keeps its length
    return names, bytes(data)
