"""SigLIP's tokenizer in graph: the ids of transformers' `SiglipTokenizer`, from raw strings, servable.

`SentencePieceTokenizer` runs the checkpoint's SentencePiece model through TF Text's
`SentencepieceTokenizer` (whose ops stock TensorFlow Serving ships) and reproduces, with core
TensorFlow string ops, what `SiglipTokenizer` does around it, per text:
    "▁" + text (its own "▁" made spaces) -> split on the special tokens "</s>" and "<unk>" (the
    whitespace beside them dropped) -> each other piece: lower-cased as `str.lower`, ASCII punctuation
    removed, whitespace runs made one space, stripped, encoded after "<unk>" whose pieces are dropped
    -> ids cut to `context_length - 1`, "</s>" appended unless last, padded with the pad id.
"""

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_clip.text.cleaning import char_class
from keras_clip.text.tokenizer_layer import SentencePieceLayer

SPIECE_UNDERLINE = "\u2581"
# `str.isspace()` (what Python's `re` calls `\s` and `str.strip()` removes), Unicode 14.
PYTHON_WHITESPACE = [[9, 13], [28, 32], [133, 133], [160, 160], [5760, 5760], [8192, 8202], [8232, 8233],
                     [8239, 8239], [8287, 8287], [12288, 12288]]  # fmt: skip
ASCII_PUNCTUATION = "[!-/:-@\\[-`{-~]"  # string.punctuation
SPECIAL_TOKENS = ("</s>", "<unk>")
NUL_STAND_IN = "\U0010ffff"


@keras.saving.register_keras_serializable(package="keras_clip")
class SentencePieceTokenizer(SentencePieceLayer):
    """SigLIP's tokenizer as a Keras layer: strings in, the ids of transformers' `SiglipTokenizer` out.

    The SentencePiece model travels in the layer's config ("base64:..."), so `.keras` files,
    `from_config` and SavedModels need no other file.

    Args:
        model: the SentencePiece model (`spiece.model` of a SigLIP checkpoint): its path, its bytes, or
            "base64:" and its bytes in base64 (what `get_config` returns).
        context_length: length of every output row (64 for SigLIP; 16 for So400m/14 at 224).
        lowercase: lower-case the text first (SigLIP's tokenizer does: `do_lower_case=True`).

    Example:
    >>> tokenizer = SentencePieceTokenizer("siglip-base-patch16-224/spiece.model")
    >>> tokenizer(["a photo of a cat", "a dog"]).shape  # int32, padded with "</s>"
    TensorShape([2, 64])
    """

    def __init__(self, model=None, context_length=64, lowercase=True, **kwargs):
        super().__init__(model, context_length, lowercase, **kwargs)
        self._whitespace = char_class(PYTHON_WHITESPACE)
        self._sentencepiece = tf_text.SentencepieceTokenizer(model=self._proto, out_type=tf.int32)
        ids = self._sentencepiece.string_to_id(tf.constant(list(SPECIAL_TOKENS) + [SPIECE_UNDERLINE]))
        eos, unk, underline = (int(i) for i in ids.numpy())
        # SiglipTokenizer pads with "</s>"; a vocabulary without "▁" never starts with it.
        self.eos_id, self.unk_id, self.pad_id = eos, unk, eos
        self._underline_id = underline if underline != unk else -1
        # transformers encodes "<unk>" + text and drops the pieces "<unk>" alone has.
        self._prefix_length = int(tf.size(self._sentencepiece.tokenize(tf.constant("<unk>"))))
        self.built = True

    def _canonical(self, pieces):
        """SiglipTokenizer.canonicalize_text of each piece."""
        if self.lowercase:
            pieces = self._cleaner.lower(pieces)
        pieces = tf.strings.regex_replace(pieces, ASCII_PUNCTUATION, "")
        pieces = tf.strings.regex_replace(pieces, self._whitespace + "+", " ")
        return tf.strings.regex_replace(pieces, "^ | $", "")

    def tokenize_graph(self, texts):
        """1-D tf.string -> int32 ids [N, context_length]."""
        texts = SPIECE_UNDERLINE + tf.strings.regex_replace(texts, SPIECE_UNDERLINE, " ")
        # TF Text's regex_split ends a string at its first NUL: NUL, unknown to the vocabularies, becomes another
        # unknown character that encodes the same (U+10FFFF, a noncharacter).
        texts = tf.strings.regex_replace(texts, "\\x00", NUL_STAND_IN)
        delimiter = f"{self._whitespace}*(?:{'|'.join(SPECIAL_TOKENS)}){self._whitespace}*"
        # The pieces of each text in order; a special token, with the whitespace beside it, is a piece of its own.
        pieces = tf_text.regex_split(texts, delimiter, delimiter)
        flat = pieces.flat_values
        is_special = tf.strings.regex_full_match(flat, delimiter)
        bare = tf.strings.regex_replace(flat, self._whitespace, "")
        special_ids = tf.where(tf.equal(bare, "</s>"), self.eos_id, self.unk_id)
        encoded = self._sentencepiece.tokenize("<unk>" + self._canonical(flat))[:, self._prefix_length:]
        # Each piece's ids: its encoding, or the special token's id.
        text_lengths = tf.where(is_special, tf.zeros_like(encoded.row_lengths()), encoded.row_lengths())
        kept = tf.repeat(tf.logical_not(is_special), encoded.row_lengths())
        text_ids = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(encoded.flat_values, kept), text_lengths)
        special_lengths = tf.cast(is_special, tf.int64)
        special_rows = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(special_ids, is_special), special_lengths)
        piece_ids = tf.concat([text_ids, special_rows], axis=1)
        ids = tf.RaggedTensor.from_row_splits(piece_ids, pieces.row_splits).merge_dims(1, 2)
        from_special = tf.RaggedTensor.from_row_splits(
            tf.RaggedTensor.from_row_lengths(tf.repeat(is_special, piece_ids.row_lengths()), piece_ids.row_lengths()),
            pieces.row_splits,
        ).merge_dims(1, 2)
        # SiglipTokenizer.tokenize drops a first "▁" that a special token follows.
        # shape=[None, 1]: a batch whose rows are all empty still has a column to read.
        first_is_underline = tf.equal(ids[:, :1].to_tensor(-1, shape=[None, 1])[:, 0], self._underline_id)
        second_is_special = from_special[:, 1:2].to_tensor(False, shape=[None, 1])[:, 0]
        start = tf.cast(first_is_underline & second_is_special, tf.int64)
        ids = tf.ragged.boolean_mask(ids, tf.ragged.range(ids.row_lengths()) >= start[:, None])
        # Cut to context_length - 1, add "</s>" unless it is last already, pad.
        ids = ids[:, : self.context_length - 1]
        last = ids[:, -1:].to_tensor(-1, shape=[None, 1])[:, 0]
        add_eos = tf.not_equal(last, self.eos_id)
        eos = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(tf.cast(add_eos, tf.int32))], self.eos_id),
                                               tf.cast(add_eos, tf.int64))  # fmt: skip
        ids = tf.concat([ids, eos], axis=1)
        return ids.to_tensor(self.pad_id, shape=[None, self.context_length])
