"""CLIP's byte-level BPE on words, in graph: vocabulary fast path, bounded cache, vectorised merge loop.

The vocabulary is built exactly as OpenAI's `SimpleTokenizer` builds it from
`bpe_simple_vocab_16e6.txt.gz`: 256 byte symbols, the same with `</w>`, 48,894 merges, then
`<|startoftext|>` and `<|endoftext|>` (49,408 ids). Words are handled as raw UTF-8 bytes (the
byte-to-unicode mapping is a bijection, so it is folded into the tables), and BPE symbols as
vocabulary ids, so a merge is one int64 lookup.
"""

import functools
import gzip
import os

import numpy as np
import tensorflow as tf

from keras_clip.text.cleaning import MARK, suffix

BPE_PATH = os.path.join(os.path.dirname(__file__), "assets", "bpe_simple_vocab_16e6.txt.gz")
SOT_TOKEN = "<|startoftext|>"
EOT_TOKEN = "<|endoftext|>"
VOCAB_SIZE = 49408
SOT_ID = 49406
EOT_ID = 49407
PAD_ID = 0
WORD_END = "</w>"

_NUM_MERGES = 49152 - 256 - 2
_NO_MERGE = np.iinfo(np.int64).max
_PAIR_BASE = 1 << 16  # ids < 2**16, so left * 2**16 + right names a pair
_CACHE_CAPACITY = 1 << 17  # distinct out-of-vocabulary words remembered
# Longer words are merged anew each time: with them, hostile input could fill the cache with ~100 GB.
# 128 bytes hold any English word and 42 CJK characters; the cache stays under ~70 MB.
MAX_CACHED_WORD_BYTES = 128


def bytes_to_unicode():
    """GPT-2/CLIP's reversible byte -> printable character mapping."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shift)
            shift += 1
    return mapping


@functools.lru_cache(maxsize=None)
def load_vocabulary(path=BPE_PATH):
    """(token strings in id order, merges as (first, second) pairs in rank order), as OpenAI builds them."""
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + WORD_END for s in symbols] + ["".join(m) for m in merges] + [SOT_TOKEN, EOT_TOKEN]
    if len(tokens) != VOCAB_SIZE or len(set(tokens)) != VOCAB_SIZE:
        raise ValueError(f"{path} does not hold CLIP's 49,408 distinct tokens")
    return tokens, merges


def _token_bytes(token, byte_decoder):
    """A vocabulary token as the raw bytes it stands for ("</w>" kept as a suffix flag)."""
    if token in (SOT_TOKEN, EOT_TOKEN):
        return token.encode("utf-8"), False
    is_word_end = token.endswith(WORD_END)
    body = token[: -len(WORD_END)] if is_word_end else token
    return bytes(byte_decoder[ch] for ch in body), is_word_end


def _cache_keys(words):
    return tf.strings.to_hash_bucket_fast(words, 1 << 62)


class BytePairEncoder(tf.Module):
    """Words (raw UTF-8, already split by CLIP's pattern) -> ragged ids, exactly as OpenAI's `bpe()`.

    Every whole-word token `w</w>` of OpenAI's vocabulary merges back to itself (the tests check
    all 34,483), so a word found in the vocabulary is one lookup and never enters the merge loop.
    Other words run a `tf.while_loop` that applies, in every word at once, the lowest-ranked merge
    present (all its non-overlapping occurrences, left to right), and their results are cached.

    Example:
    >>> ids = BytePairEncoder().encode(tf.constant(["hello", "tokenizers"]))  # [[id], [id, id, ...]]
    """

    def __init__(self, name="clip_bpe"):
        super().__init__(name=name)
        tokens, merges = load_vocabulary()
        ids = {token: i for i, token in enumerate(tokens)}
        byte_decoder = {ch: b for b, ch in bytes_to_unicode().items()}
        words, word_ids, pieces = [], [], []
        for i, token in enumerate(tokens):
            raw, is_word_end = _token_bytes(token, byte_decoder)
            pieces.append(raw + b" " if is_word_end else raw)
            if is_word_end or i in (SOT_ID, EOT_ID):
                words.append(raw)
                word_ids.append(i)
        encoder = bytes_to_unicode()
        pair_keys = [ids[first] * _PAIR_BASE + ids[second] for first, second in merges]
        pair_values = [rank * _PAIR_BASE + ids[first + second] for rank, (first, second) in enumerate(merges)]
        with tf.init_scope():
            self._words = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(words), tf.constant(word_ids, tf.int64)), -1
            )
            self._merges = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(pair_keys, tf.int64), tf.constant(pair_values, tf.int64)
                ),
                _NO_MERGE,
            )
            # Keyed by a 62-bit hash of the word (string -> string tables do not exist); the value
            # repeats the word, so a hash collision is detected and treated as a miss.
            self._cache = tf.lookup.experimental.MutableHashTable(tf.int64, tf.string, default_value=b"")
        self._byte_ids = tf.constant([ids[encoder[b]] for b in range(256)], tf.int64)
        self._byte_end_ids = tf.constant([ids[encoder[b] + WORD_END] for b in range(256)], tf.int64)
        self.token_bytes = tf.constant(pieces)  # id -> raw bytes, "</w>" written as a space

    @tf.Module.with_name_scope
    def encode(self, words):
        """1-D tf.string of words -> int32 RaggedTensor [num_words, None] of ids."""
        unique, index = tf.unique(words, out_idx=tf.int64)
        found = self._words.lookup(unique)
        single = tf.range(tf.size(unique, out_type=tf.int64) + 1)
        as_text = _ids_to_text(tf.cast(tf.maximum(found, 0), tf.int32), single)
        missing = tf.where(found < 0)
        as_text = tf.tensor_scatter_nd_update(as_text, missing, self._encode_missing(tf.gather_nd(unique, missing)))
        # Ids travel as the codepoints of a UTF-8 string (all ids are below the surrogates).
        splits, ids = tf.raw_ops.UnicodeDecode(
            input=tf.gather(as_text, index), input_encoding="UTF-8", errors="strict", replacement_char=0xFFFD,
            replace_control_characters=False, Tsplits=tf.int64,
        )
        return tf.RaggedTensor.from_row_splits(ids, splits, validate=False)

    def _encode_missing(self, words):
        """Out-of-vocabulary words -> their ids as UTF-8 text, from the cache or the merge loop."""
        cached = tf.reshape(self._cache.lookup(_cache_keys(words)), [-1])
        prefix = tf.strings.join([words, MARK])
        prefix_length = tf.strings.length(prefix)
        hit = tf.equal(tf.strings.substr(cached, tf.zeros_like(prefix_length), prefix_length), prefix)
        cached = suffix(cached, tf.minimum(prefix_length, tf.strings.length(cached)))
        uncached = tf.where(tf.logical_not(hit))
        new_words = tf.gather_nd(words, uncached)
        symbols, splits = self._merge(new_words)
        encoded = _ids_to_text(tf.cast(symbols, tf.int32), splits)
        short = tf.where(tf.strings.length(new_words) <= MAX_CACHED_WORD_BYTES)[:, 0]
        cached_words, cached_ids = tf.gather(new_words, short), tf.gather(encoded, short)
        room = tf.maximum(_CACHE_CAPACITY - self._cache.size(), 0)
        keep = tf.minimum(room, tf.size(cached_words, out_type=tf.int64))
        insert = self._cache.insert(
            _cache_keys(cached_words[:keep]), tf.strings.join([cached_words[:keep], MARK, cached_ids[:keep]])
        )
        with tf.control_dependencies([insert]):
            return tf.tensor_scatter_nd_update(cached, uncached, encoded)

    def merge(self, words):
        """The BPE merge loop on raw words (no vocabulary, no cache) -> int64 RaggedTensor of ids."""
        symbols, splits = self._merge(words)
        return tf.RaggedTensor.from_row_splits(symbols, splits, validate=False)

    def _merge(self, words):
        """-> (int64 ids of all words concatenated, int64 row splits)."""
        splits, byte_values = tf.raw_ops.UnicodeDecode(
            input=words, input_encoding="ISO-8859-1", errors="strict", replacement_char=0xFFFD,
            replace_control_characters=False, Tsplits=tf.int64,
        )  # Latin-1 decoding gives each byte's value
        byte_values = tf.cast(byte_values, tf.int64)
        position = tf.range(tf.size(byte_values, out_type=tf.int64))
        word_of = tf.searchsorted(splits[1:], position, side="right", out_type=tf.int64)
        is_last = tf.equal(position + 1, tf.gather(splits[1:], word_of))
        symbols = tf.where(is_last, tf.gather(self._byte_end_ids, byte_values), tf.gather(self._byte_ids, byte_values))
        num_words = tf.size(words, out_type=tf.int64)

        def body(symbols, word_of, _):
            size = tf.size(symbols, out_type=tf.int64)
            following = tf.concat([symbols[1:], [0]], axis=0)
            has_pair = tf.equal(tf.concat([word_of[1:], [-1]], axis=0), word_of)
            # Table values are rank * 2**16 + merged id, so the minimum is the lowest-ranked merge.
            found = tf.where(has_pair, self._merges.lookup(symbols * _PAIR_BASE + following), _NO_MERGE)
            best = tf.math.unsorted_segment_min(found, word_of, num_words)
            match = tf.equal(found, tf.gather(best, word_of)) & (found < _NO_MERGE)
            # A run of matches only happens for a pair (a, a): merge its 1st, 3rd, ... like Python's scan.
            others = tf.logical_not(match)
            others_before = tf.cumsum(tf.cast(others, tf.int64))
            other_positions = tf.where(others)[:, 0]
            last_other = tf.where(
                others_before > 0, tf.gather(other_positions, tf.maximum(others_before - 1, 0)), -1
            )
            chosen = match & tf.equal((tf.range(size) - last_other - 1) % 2, 0)
            symbols = tf.where(chosen, found % _PAIR_BASE, symbols)
            keep = tf.logical_not(tf.concat([[False], chosen[:-1]], axis=0))
            return tf.boolean_mask(symbols, keep), tf.boolean_mask(word_of, keep), tf.reduce_any(match)

        symbols, word_of, _ = tf.while_loop(
            lambda symbols, word_of, merged: merged,
            body,
            (symbols, word_of, tf.size(symbols) > 0),
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])),
        )
        return symbols, tf.searchsorted(word_of, tf.range(num_words + 1), side="left", out_type=tf.int64)


def _ids_to_text(ids, splits):
    return tf.raw_ops.UnicodeEncode(
        input_values=ids, input_splits=splits, output_encoding="UTF-8", errors="strict", replacement_char=0xFFFD
    )
