"""SigLIP's SentencePiece tokenizer in graph gives transformers' `SiglipTokenizer` ids for every string.

The model is trained here (tests/helpers/sentencepiece_models.py); the corpus is the tokenizer parity
corpus (English captions, accents, CJK, emoji, punctuation, control characters, very long texts; 5,749
strings) plus texts around the special tokens. Ids must be equal, eagerly, in `tf.function`, in
`tf.data` and in a reloaded SavedModel.
"""

import functools
import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.text.sentencepiece_tokenizer import SentencePieceTokenizer
from tests.helpers.sentencepiece_models import siglip_like_model, write_siglip_like_model
from tests.helpers.tokenizer_corpus import assert_same_ids, build_corpus, reloaded_tokenizers

CONTEXT_LENGTH = 64
SPECIAL_CASES = ["hello </s> world", "a </s>", "</s>", "<unk>x", " <unk> ", "x</s>", "a\u2581b", "</s></s> x",
                 "\u03a3</s>", "ΟΔΟΣ ΟΔΟΣ.", "\x1c a \x1f", "nul\x00byte", "", "   ", "word " * 80,
                 "A </S> b"]  # fmt: skip


@functools.lru_cache(maxsize=None)
def corpus_and_reference_ids(tmp_folder):
    from transformers import SiglipTokenizer

    reference = SiglipTokenizer(write_siglip_like_model(f"{tmp_folder}/spiece.model"))
    corpus = build_corpus() + SPECIAL_CASES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "This sequence already has </s>"
        ids = reference(corpus, padding="max_length", max_length=CONTEXT_LENGTH, truncation=True)["input_ids"]
    return corpus, np.array(ids, np.int32)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return corpus_and_reference_ids(str(tmp_path_factory.mktemp("spiece")))


@pytest.fixture(scope="module")
def tokenizer():
    return SentencePieceTokenizer(siglip_like_model(), context_length=CONTEXT_LENGTH)


def test_eager_ids_equal_siglip_tokenizer(reference, tokenizer):
    corpus, expected = reference
    assert_same_ids(corpus, expected, tokenizer(corpus))


def test_tf_function_and_tf_data_ids_equal(reference, tokenizer):
    corpus, expected = reference
    traced = tf.function(lambda texts: tokenizer(texts))
    assert_same_ids(corpus, expected, traced(tf.constant(corpus)))
    batches = tf.data.Dataset.from_tensor_slices(corpus).batch(500).map(tokenizer)
    assert_same_ids(corpus, expected, np.concatenate([batch.numpy() for batch in batches]))


def test_reloaded_savedmodel_and_keras_file_give_the_same_ids(reference, tokenizer, tmp_path):
    corpus, expected = reference
    for reloaded in reloaded_tokenizers(tokenizer, tmp_path):
        assert_same_ids(corpus, expected, reloaded(tf.constant(corpus)))


def test_scalar_input_and_context_length(tokenizer):
    assert tokenizer("a photo of a cat").shape == (CONTEXT_LENGTH,)
    short = SentencePieceTokenizer(siglip_like_model(), context_length=4)
    ids = short(["a photo of a cat sitting on a table"]).numpy()[0]
    assert ids.shape == (4,) and ids[-1] == short.eos_id  # cut to 3 ids, then "</s>"


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="needs the SentencePiece model"):
        SentencePieceTokenizer()
    with pytest.raises(ValueError, match="context_length must be a positive int"):
        SentencePieceTokenizer(siglip_like_model(), context_length=0)
    with pytest.raises(ValueError, match="scalar or 1-D"):
        SentencePieceTokenizer(siglip_like_model())(tf.constant([["a"]]))


def test_batches_with_no_second_piece(tokenizer):
    # Batches whose texts all encode to at most one piece failed ("slice index 0 of dimension 1 out of bounds").
    assert (tokenizer(["", ""]).numpy() == tokenizer.eos_id).all()
    assert (tokenizer([""]).numpy() == tokenizer.pad_id).all()
    alone, beside = tokenizer(["", "0"]).numpy(), tokenizer(["0", "a photo of the cat"]).numpy()
    np.testing.assert_array_equal(alone[1], beside[0])
