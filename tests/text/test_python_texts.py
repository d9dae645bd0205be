"""Python texts given to the tokenizers: lone surrogates give OpenAI's ids, a non-text item is named."""

import ftfy
import numpy as np
import pytest
import tensorflow as tf

from keras_clip.text.python_texts import fix_surrogates, texts_to_tensor
from keras_clip.text.sentencepiece_tokenizer import SentencePieceTokenizer
from keras_clip.text.tokenizer import Tokenizer, tokenize
from tests.helpers.sentencepiece_models import siglip_like_model
from tests.helpers.tokenizer_reference import reference_tokenize

SURROGATES = ["\ud800", "ok \udfff", "a\ud83d\ude00b", "\ude00\ud83d", "x\udfff\ud800y", "\ud83d\ud83d\ude00"]


def test_surrogates_are_fixed_as_ftfy_fixes_them():
    for text in SURROGATES + ["plain", "", "😀"]:
        assert fix_surrogates(text) == ftfy.fixes.fix_surrogates(text)


def test_lone_surrogates_give_openais_ids():
    # TensorFlow refused the batch: "Error converting unicode string while converting Python sequence to Tensor".
    texts = ["ok"] + SURROGATES
    expected = reference_tokenize(texts)
    np.testing.assert_array_equal(tokenize(texts), expected)
    layer = Tokenizer()
    np.testing.assert_array_equal(layer(texts).numpy(), expected)
    np.testing.assert_array_equal(layer(np.array(texts)).numpy(), expected)
    np.testing.assert_array_equal(tokenize("\ud800"), expected[1:2])
    tokenizer = SentencePieceTokenizer(siglip_like_model(), context_length=8)
    np.testing.assert_array_equal(tokenizer(texts).numpy(), tokenizer([fix_surrogates(t) for t in texts]).numpy())


def test_items_that_are_not_texts_are_named():
    with pytest.raises(TypeError, match="tokenize takes texts .str or bytes.; the item at index 2 is of type int"):
        tokenize(["a", b"b", 3])
    with pytest.raises(TypeError, match="item at index 0 is of type list"):
        tokenize([["nested"]])
    with pytest.raises(TypeError, match="SentencePieceTokenizer takes texts .*index 1 is of type NoneType"):
        SentencePieceTokenizer(siglip_like_model())(["a", None])
    assert texts_to_tensor(np.array([["a", "b"]])).shape == (1, 2)
    assert texts_to_tensor(b"\xff").dtype == tf.string
