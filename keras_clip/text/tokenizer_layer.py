"""What the in-graph tokenizers share: strings in (a scalar or 1-D), int32 ids [..., context_length] out."""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_clip.text.cleaning import TextCleaner
from keras_clip.text.python_texts import texts_to_tensor
from keras_clip.text.sentencepiece_models import encode_model_bytes, read_model_bytes


class TokenizerLayer(keras.layers.Layer):
    """Base of `Tokenizer` (CLIP's BPE) and, through `SentencePieceLayer`, SigLIP's and SigLIP 2's tokenizers.

    A subclass sets `context_length` and defines `tokenize_graph(texts)`: 1-D tf.string -> int32 ids
    [N, context_length] as graph ops (or overrides `tokenize_flat` where it returns more). Eager calls run it
    as one traced graph, reused by every call.
    Python strings, lists and numpy arrays are accepted directly (Keras passes only tensors positionally).

    Args:
        **kwargs: `keras.layers.Layer` arguments (dtype int32 and not trainable unless given).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self._traced_tokenize = None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.context_length,)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype="int32")

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (str, bytes, list, tuple, np.ndarray)):
            # Each item checked, surrogates fixed as ftfy does for OpenAI (transformers' SiglipTokenizer raises).
            inputs = texts_to_tensor(inputs, type(self).__name__)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs):
        texts = tf.convert_to_tensor(inputs, tf.string)
        if texts.shape.rank is not None and texts.shape.rank > 1:
            raise ValueError(f"{type(self).__name__} takes a scalar or 1-D tf.string, got shape {texts.shape}")
        ids = self.tokenize_flat(tf.reshape(texts, [-1]))
        return ids[0] if texts.shape.rank == 0 else ids

    def tokenize_flat(self, texts):
        """1-D tf.string -> int32 ids [N, context_length], eagerly or in a graph."""
        return self.traced_tokenize()(texts) if tf.executing_eagerly() else self.tokenize_graph(texts)

    def traced_tokenize(self):
        """`tokenize_graph` as a `tf.function` traced once, for eager calls."""
        if self._traced_tokenize is None:
            spec = tf.TensorSpec([None], tf.string)
            self._traced_tokenize = tf.function(self.tokenize_graph, input_signature=[spec], autograph=False)
        return self._traced_tokenize


@functools.lru_cache(maxsize=None)
def shared_cleaner():
    """One `TextCleaner` (for its lower-casing) per process, shared by every tokenizer: its tables are large."""
    return TextCleaner()


class SentencePieceLayer(TokenizerLayer):
    """Base of `SentencePieceTokenizer` (SigLIP's) and `GemmaTokenizer` (SigLIP 2's): the SentencePiece model's
    bytes (`_proto`, in the config as "base64:..."), `context_length`, `lowercase` (and `_cleaner` for it). A
    subclass sets `_sentencepiece`, the TF Text tokenizer whose vocabulary size it reports.

    Args:
        model: the SentencePiece model: its path, its bytes, or "base64:" and its bytes in base64.
        context_length: length of every output row.
        lowercase: lower-case the text first.
        **kwargs: `TokenizerLayer` arguments.
    """

    def __init__(self, model=None, context_length=64, lowercase=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(context_length, bool) or not isinstance(context_length, (int, np.integer)) or context_length < 1:
            raise ValueError(f"context_length must be a positive int, got {context_length!r}")
        if model is None:
            raise ValueError(f"{type(self).__name__} needs the SentencePiece model: model= (a path or bytes)")
        self.context_length, self.lowercase = int(context_length), bool(lowercase)
        self._proto = read_model_bytes(model)
        self._cleaner = shared_cleaner() if self.lowercase else None

    @property
    def vocabulary_size(self):
        return int(self._sentencepiece.vocab_size())

    def get_config(self):
        config = super().get_config()
        config.update(context_length=self.context_length, lowercase=self.lowercase,
                      model=encode_model_bytes(self._proto))  # fmt: skip
        return config
