"""Python texts -> a tf.string tensor for the tokenizers: each item checked, surrogates fixed as ftfy does.

A Python `str` can hold surrogate code points (e.g. "\\ud800" from `json.loads('"\\\\ud800"')` or
`os.fsdecode` of undecodable bytes), which UTF-8 cannot encode, so TensorFlow refuses the whole
batch. OpenAI's tokenizer cleans each text with `ftfy.fix_text`, whose `fix_surrogates` joins a
high + low surrogate pair into the character it encodes and replaces every other surrogate with
U+FFFD; doing the same before encoding gives OpenAI's ids.
"""

import re

import numpy as np
import tensorflow as tf

_SURROGATE = re.compile("[\ud800-\udfff]")


def fix_surrogates(text):
    """`text` with surrogate pairs joined and lone surrogates made U+FFFD (ftfy's `fix_surrogates`)."""
    if _SURROGATE.search(text) is None:
        return text
    # UTF-16 holds a pair as the character it encodes; its decoder replaces each lone surrogate.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _encode(item, index, caller):
    if isinstance(item, str):
        return fix_surrogates(item).encode("utf-8")
    if isinstance(item, (bytes, np.bytes_)):
        return bytes(item)
    position = "" if index is None else f" at index {index}"
    raise TypeError(f"{caller} takes texts (str or bytes); the item{position} is of type {type(item).__name__}")


def _plain_texts(texts):
    if isinstance(texts, np.ndarray):
        return texts.dtype.kind in "SU"
    return isinstance(texts, (list, tuple)) and all(isinstance(item, (str, bytes)) for item in texts)


def texts_to_tensor(texts, caller="the tokenizer"):
    """A str, bytes, or list / tuple (1-D) / numpy array of them -> `tf.string` of that shape (UTF-8).

    Raises:
        TypeError: an item is not a str or bytes (named by its index).

    Example:
    >>> texts_to_tensor(["ok", "\\ud800"]).numpy()
    array([b'ok', b'\\xef\\xbf\\xbd'], dtype=object)
    """
    if isinstance(texts, (str, bytes, np.bytes_)):
        return tf.constant(_encode(texts, None, caller), tf.string)
    if _plain_texts(texts):
        try:
            return tf.constant(texts, tf.string)  # the fast path: no item holds a surrogate
        except (ValueError, UnicodeError):
            pass
    if isinstance(texts, (list, tuple)):
        shape, items = [len(texts)], texts
    elif isinstance(texts, np.ndarray):
        shape, items = texts.shape, texts.reshape(-1)
    else:
        raise TypeError(f"{caller} takes a str or a list of str, got {type(texts).__name__}")
    flat = [_encode(item, index, caller) for index, item in enumerate(items)]
    return tf.reshape(tf.constant(flat, tf.string, shape=[len(flat)]), shape)
