"""CLIP's tokenizer in graph: the same ids as OpenAI's `clip.tokenize`, from raw strings, servable.

`Tokenizer` is a Keras layer (tf.string -> int32 ids) usable eagerly, in `tf.function`, in
`tf.data` and inside an exported SavedModel; `tokenize` is the drop-in for `clip.tokenize`.
The cleaning lives in `text_cleaning.py`, the byte-pair encoding in `bpe.py`.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_clip.errors import InvalidTextError
from keras_clip.text.bpe import EOT_ID, SOT_ID, VOCAB_SIZE, BytePairEncoder
from keras_clip.text.cleaning import TextCleaner, char_class, load_tables, split_on
from keras_clip.text.python_texts import texts_to_tensor
from keras_clip.text.tokenizer_layer import TokenizerLayer

QUOTED_CHARACTERS = 80  # of a text named in an error


def _split_patterns():
    """OpenAI's split pattern (compiled with IGNORECASE by the `regex` module) as explicit RE2 classes.

    `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`
    Returns (that pattern, the characters it skips that are not whitespace: U+0345, which
    IGNORECASE puts in no class). A skipped character separates words exactly as a space does.
    """
    t = load_tables()
    equivalents = t["split_literal_equivalents"]

    def literal(text):
        return "".join(_codepoint_alternatives(equivalents[ch]) for ch in text)

    letters, numbers, unmatched = t["split_letters"], t["split_numbers"], t["split_unmatched"]
    alternatives = [literal("<|startoftext|>"), literal("<|endoftext|>")]
    alternatives += [literal(suffix) for suffix in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")]
    others = char_class(letters + numbers + unmatched, negate=True)
    alternatives += [char_class(letters) + "+", char_class(numbers), others + "+"]
    whitespace = {c for lo, hi in t["regex_whitespace"] for c in range(lo, hi + 1)}
    skipped = [c for lo, hi in unmatched for c in range(lo, hi + 1) if c not in whitespace]
    return "|".join(alternatives), _codepoint_alternatives(skipped)


def _codepoint_alternatives(codepoints):
    return char_class([[c, c] for c in codepoints])


@functools.lru_cache(maxsize=None)
def _shared_parts():
    """One cleaner and one BPE (with its cache) per process, shared by every Tokenizer."""
    return TextCleaner(), BytePairEncoder(), _split_patterns()


@keras.saving.register_keras_serializable(package="keras_clip")
class Tokenizer(TokenizerLayer):
    """CLIP's tokenizer as a Keras layer: strings in, OpenAI's token ids out.

    Each text is cleaned like OpenAI's `simple_tokenizer.py` (ftfy's fixes, HTML unescaping,
    whitespace, lower case), split by CLIP's pattern and byte-pair encoded, then written as
    `[SOT, ids..., EOT, 0, ...]`. Everything runs in graph, with core TensorFlow ops plus TF Text's
    `NormalizeUTF8`, so the layer works in `tf.data`, in `tf.function` and in a SavedModel that
    TensorFlow Serving can run.

    Python strings may hold lone surrogates ("\\ud800"): they become U+FFFD and pairs their character,
    as OpenAI's tokenizer (ftfy) does, so the ids are OpenAI's. Bytes that are not UTF-8 are read with
    U+FFFD for each bad sequence.

    Args:
        context_length: length of every output row (77 for all CLIP models).
        truncate: if True, a text longer than `context_length` tokens is cut and keeps EOT as its
            last token, as `clip.tokenize(..., truncate=True)`; if False, it is an error naming the
            text's index and its first 80 characters (`InvalidTextError` eagerly,
            `tf.errors.InvalidArgumentError` in a graph).

    Example:
    >>> tokenizer = Tokenizer()
    >>> ids = tokenizer(["a photo of a cat", "a diagram"])   # int32 [2, 77]
    >>> tokenizer.detokenize(ids).numpy()
    array([b'a photo of a cat', b'a diagram'], dtype=object)
    """

    def __init__(self, context_length=77, truncate=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(context_length, bool) or not isinstance(context_length, (int, np.integer)) or context_length < 2:
            raise ValueError(f"context_length must be an int of at least 2 (SOT and EOT), got {context_length!r}")
        self.context_length = int(context_length)
        self.truncate = bool(truncate)
        self._cleaner, self._bpe, (self._word_pattern, self._skipped_pattern) = _shared_parts()
        self.built = True
        self._eager_detokenize = None

    def get_config(self):
        config = super().get_config()
        config.update({"context_length": self.context_length, "truncate": self.truncate})
        return config

    def tokenize_flat(self, texts):
        if tf.executing_eagerly():
            ids, lengths = self.traced_tokenize()(texts)
            if not self.truncate:
                self._raise_if_too_long(texts, lengths)
            return ids
        ids, lengths = self.tokenize_graph(texts)
        return ids if self.truncate else self._assert_fits(texts, lengths, ids)

    def tokenize_graph(self, texts):
        """1-D tf.string -> (int32 ids [N, context_length] with EOT kept last, int32 untruncated lengths [N])."""
        texts = tf.strings.regex_replace(self._cleaner(texts), self._skipped_pattern, " ")
        # Only spaces are left between the pattern's matches: space them out and split.
        text_of_word, _, words = split_on(tf.strings.regex_replace(texts, self._word_pattern, " \\0 "), b"")
        word_ids = self._bpe.encode(words)
        ids = word_ids.flat_values
        positions = tf.range(tf.size(ids, out_type=tf.int64))
        word_of = tf.searchsorted(word_ids.row_splits[1:], positions, side="right", out_type=tf.int64)
        text_of = tf.cast(tf.gather(text_of_word, word_of), tf.int32)
        # [SOT, ids..., EOT, 0...] written by one scatter: cut at context_length - 2 ids, EOT last.
        count = tf.size(texts)
        tokens = tf.math.unsorted_segment_sum(tf.ones_like(ids), text_of, count)
        column = tf.range(tf.size(ids)) - tf.gather(tf.cumsum(tokens, exclusive=True), text_of) + 1
        kept = tf.where(column <= self.context_length - 2)[:, 0]
        rows = tf.range(count)
        indices = tf.concat(
            [
                tf.stack([tf.gather(text_of, kept), tf.gather(column, kept)], axis=1),
                tf.stack([rows, tf.zeros_like(rows)], axis=1),
                tf.stack([rows, tf.minimum(tokens + 1, self.context_length - 1)], axis=1),
            ],
            axis=0,
        )
        updates = tf.concat([tf.gather(ids, kept), tf.fill([count], SOT_ID), tf.fill([count], EOT_ID)], axis=0)
        return tf.scatter_nd(indices, updates, tf.stack([count, self.context_length])), tokens + 2

    def _raise_if_too_long(self, texts, lengths):
        too_long = np.flatnonzero(lengths.numpy() > self.context_length)
        if too_long.size:
            i = int(too_long[0])
            others = f"; {too_long.size - 1} more text(s) too long" if too_long.size > 1 else ""
            raise InvalidTextError(
                f"it has {lengths[i].numpy():,} tokens with SOT and EOT, more than the context length "
                f"{self.context_length}{others}. Pass truncate=True to cut such texts, keeping EOT as the last token",
                index=i,
                text=texts[i].numpy(),
            )

    def _assert_fits(self, texts, lengths, ids):
        fits = lengths <= self.context_length
        first = tf.argmin(tf.cast(fits, tf.int32))
        text = tf.strings.unicode_transcode(tf.gather(texts, first), "UTF-8", "UTF-8", errors="replace")
        check = tf.debugging.Assert(
            tf.reduce_all(fits),
            [
                f"Text too long for context length {self.context_length} (truncate=False). The first such text: "
                f"its index, its first {QUOTED_CHARACTERS} characters and its token count with SOT and EOT:",
                first,
                tf.strings.substr(text, 0, QUOTED_CHARACTERS, unit="UTF8_CHAR"),
                tf.gather(lengths, first),
            ],
            summarize=4,
        )
        with tf.control_dependencies([check]):
            return tf.identity(ids)

    def detokenize(self, ids):
        """Token ids [N, L] or [L] -> texts [N] or scalar: the tokens between SOT and the first EOT, decoded.

        Equals OpenAI's `SimpleTokenizer.decode` of those tokens, without its trailing space.
        """
        ids = tf.convert_to_tensor(ids)
        if ids.shape.rank not in (1, 2):
            raise ValueError(f"detokenize takes ids of shape [L] or [N, L], got {ids.shape}")
        rows = tf.reshape(ids, [-1, tf.shape(ids)[-1]])
        if tf.executing_eagerly():
            if self._eager_detokenize is None:
                self._eager_detokenize = tf.function(self.detokenize_graph, autograph=False)
            texts = self._eager_detokenize(rows)
        else:
            texts = self.detokenize_graph(rows)
        return texts[0] if ids.shape.rank == 1 else texts

    def detokenize_graph(self, ids):
        """`detokenize` of int ids [N, L] as graph ops (for tf.function, tf.data and exports)."""
        ids = tf.cast(ids, tf.int64)
        in_range = tf.reduce_all((ids >= 0) & (ids < VOCAB_SIZE))
        valid = tf.debugging.Assert(in_range, [f"detokenize: token ids must lie in [0, {VOCAB_SIZE})"])
        with tf.control_dependencies([valid]):
            before_eot = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, EOT_ID), tf.int32), axis=1), 0)
        tokens = tf.ragged.boolean_mask(ids, before_eot & tf.not_equal(ids, SOT_ID))
        text = tf.strings.reduce_join(tf.gather(self._bpe.token_bytes, tokens), axis=-1)
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
        return tf.strings.strip(text)


@functools.lru_cache(maxsize=None)
def _tokenizer(context_length, truncate):
    return Tokenizer(context_length=context_length, truncate=truncate)


def tokenize(texts, context_length=77, truncate=False):
    """OpenAI's `clip.tokenize`: a string or list of strings -> int32 ids [N, context_length].

    SOT first, EOT after the text, zero padding. A text longer than `context_length` tokens is an
    `InvalidTextError` naming its index, its first 80 characters and its length, unless
    `truncate=True`, which cuts it and keeps EOT last. Lone surrogates in a str give OpenAI's ids
    (those of U+FFFD, as ftfy makes them). Python input gives a numpy array, a tf.Tensor input gives
    a tf.Tensor.

    Example:
    >>> tokenize(["a photo of a cat"]).shape
    (1, 77)
    """
    tokenizer = _tokenizer(int(context_length), bool(truncate))
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    if isinstance(texts, (tf.Tensor, tf.Variable)):
        return tokenizer(tf.reshape(texts, [-1]))
    texts = list(texts)
    if not texts:
        return np.zeros((0, context_length), np.int32)
    return np.asarray(tokenizer(texts_to_tensor(texts, "tokenize")))


def text_tokenizer(model, tokenizer, what, call, truncate=True):
    """`tokenizer`, or CLIP's for the model when None (cutting long texts with `truncate`, else refusing them).
    A SigLIP model has no default: ValueError saying its `what` (e.g. "texts") need one, and how to pass it
    (`call`: the start of the call, up to `tokenizer=`)."""
    if tokenizer is not None:
        return tokenizer
    if getattr(model, "logit_bias", None) is not None:
        raise ValueError(f"A SigLIP model's {what} need its tokenizer: {call}tokenizer=keras_clip.get_tokenizer(name))")
    return Tokenizer(context_length=model.context_length, truncate=truncate)
