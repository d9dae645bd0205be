"""SigLIP 2's tokenizer in graph: the ids of transformers' tokenizer for SigLIP 2 (Gemma's), from raw strings.

`GemmaTokenizer` runs the checkpoint's SentencePiece model (Gemma's `tokenizer.model`, 256,000 pieces, byte
fallback, no dummy prefix) through TF Text's `SentencepieceTokenizer` (whose ops stock TensorFlow Serving
ships) and reproduces, with core TensorFlow string ops, what transformers does around it, per text:
    split on the special tokens ("<pad>", "<eos>", "<bos>", "<unk>") and the model's user-defined pieces
    ("<start_of_turn>", "<mask>", ...): transformers' added tokens, found in the raw text, the whitespace
    beside them kept -> each other piece lower-cased (as `Siglip2Tokenizer` does, character by
    character; `lowercase=False`: as `GemmaTokenizer`) and encoded by the model with its user-defined
    pieces made control pieces (so "<START_OF_TURN>" lower-cased stays characters, as in transformers)
    -> ids cut to `context_length - 1`, "<eos>" appended, padded with "<pad>" on the right.
"""

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_clip.text.sentencepiece_models import without_user_defined_pieces
from keras_clip.text.sentencepiece_tokenizer import NUL_STAND_IN
from keras_clip.text.tokenizer_layer import SentencePieceLayer

SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>")


def _re2_literal(text):
    """An RE2 pattern matching exactly `text` (every character but ASCII letters and digits as \\x{...})."""
    return "".join(ch if ch.isascii() and ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in text)


@keras.saving.register_keras_serializable(package="keras_clip")
class GemmaTokenizer(SentencePieceLayer):
    """SigLIP 2's tokenizer as a Keras layer: strings in, the ids of transformers' SigLIP 2 tokenizer out.

    The SentencePiece model travels in the layer's config ("base64:..."), so `.keras` files,
    `from_config` and SavedModels need no other file.

    Args:
        model: Gemma's SentencePiece model (`tokenizer.model` of a SigLIP 2 checkpoint): its path, its
            bytes, or "base64:" and its bytes in base64 (what `get_config` returns).
        context_length: length of every output row (64 for SigLIP 2).
        lowercase: lower-case the text first. SigLIP 2 was trained on lower-cased text, and transformers'
            `Siglip2Tokenizer` lower-cases; the fixed-resolution repositories' own `tokenizer_config.json`
            names `GemmaTokenizer`, which does not (`lowercase=False` gives its ids).

    Example:
    >>> tokenizer = GemmaTokenizer("siglip2-base-patch16-224/tokenizer.model")
    >>> tokenizer(["a photo of a cat", "a dog"]).shape  # int32, "<eos>" then "<pad>" (0)
    TensorShape([2, 64])
    """

    def __init__(self, model=None, context_length=64, lowercase=True, **kwargs):
        super().__init__(model, context_length, lowercase, **kwargs)
        user_defined, text_model = without_user_defined_pieces(self._proto)
        self._sentencepiece = tf_text.SentencepieceTokenizer(model=text_model, out_type=tf.int32)
        names = list(SPECIAL_TOKENS) + sorted(set(user_defined) - set(SPECIAL_TOKENS), key=len, reverse=True)
        ids = [int(i) for i in self._sentencepiece.string_to_id(tf.constant(names)).numpy()]
        if len(set(ids[: len(SPECIAL_TOKENS)])) != len(SPECIAL_TOKENS):
            raise ValueError(f"Not a Gemma SentencePiece model: its ids of {SPECIAL_TOKENS} are {ids[:4]}")
        self.pad_id, self.eos_id = ids[0], ids[1]
        # Longest first: RE2 takes the first alternative that matches, transformers the longest token.
        self._split_pattern = "|".join(_re2_literal(name) for name in names)
        with tf.init_scope():
            self._piece_ids = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(names), tf.constant(ids, tf.int32)), default_value=-1
            )
        self.built = True

    def _pieces(self, texts):
        """(ragged pieces of each text, each piece's id if it is a special or user-defined token, else -1)."""
        # TF Text's regex_split ends a string at its first NUL: it is carried through the split as U+10FFFF.
        texts = tf.strings.regex_replace(texts, "\\x00", NUL_STAND_IN)
        pieces = tf_text.regex_split(texts, self._split_pattern, self._split_pattern)
        token_ids = self._piece_ids.lookup(pieces.flat_values)
        flat = tf.strings.regex_replace(pieces.flat_values, NUL_STAND_IN, "\x00")
        return pieces.with_flat_values(flat), token_ids

    def tokenize_graph(self, texts):
        """1-D tf.string -> int32 ids [N, context_length]."""
        pieces, token_ids = self._pieces(texts)
        is_token = token_ids >= 0
        text = tf.where(is_token, "", pieces.flat_values)
        if self.lowercase:
            text = self._cleaner.lower_each_character(text)
        encoded = tf.cast(self._sentencepiece.tokenize(text), tf.int32)
        token_rows = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(token_ids, is_token), tf.cast(is_token, tf.int64))
        piece_ids = tf.concat([encoded, token_rows], axis=1)
        ids = tf.RaggedTensor.from_row_splits(piece_ids, pieces.row_splits).merge_dims(1, 2)
        ids = ids[:, : self.context_length - 1]
        eos = tf.fill([ids.nrows(), 1], self.eos_id)
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return ids.to_tensor(self.pad_id, shape=[None, self.context_length])
