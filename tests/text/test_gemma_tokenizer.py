"""SigLIP 2's (Gemma's) SentencePiece tokenizer in graph gives transformers' ids for every string.

The references read a Gemma-like model trained here (tests/helpers/sentencepiece_models.py) from a folder
laid out as a SigLIP 2 repository: transformers' `Siglip2Tokenizer` (lower-cases: `lowercase=True`, the
default) and `GemmaTokenizer` (what AutoTokenizer gives for the fixed-resolution repositories:
`lowercase=False`). The corpus is the tokenizer parity corpus (5,749 strings) plus texts around the
special and user-defined tokens. Ids must be equal, eagerly, in `tf.function`, in `tf.data` and in a
reloaded SavedModel and `.keras` file.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.text.gemma_tokenizer import GemmaTokenizer
from keras_clip.text.sentencepiece_models import without_user_defined_pieces
from tests.helpers.sentencepiece_models import gemma_like_model, siglip_like_model, write_gemma_like_folder
from tests.helpers.tokenizer_corpus import assert_same_ids, build_corpus, reloaded_tokenizers

CONTEXT_LENGTH = 64
USER_DEFINED = ["<mask>", "<start_of_turn>", "<end_of_turn>"]
SPECIAL_CASES = ["a <eos> b", "<pad><bos>", "<unk>x", " <unk> ", "<EOS>", "x <start_of_turn> y", "<mask>x",
                 "<MASK>", "<START_OF_TURN>", "<start_of_turn><start_of_turn>", "nul\x00byte", "a\x00<eos>\x00b",
                 "", "   ", "\n\ttab", "12345 678", "A PHOTO", "\u03a3\u039f\u03a6\u039f\u03a3 \u039f\u03a3.",
                 "\U00010d57 Garay", "a\u2581b", "word " * 80, "<eos>" * 70]  # fmt: skip


@functools.lru_cache(maxsize=None)
def reference_ids(root, tokenizer_class):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(write_gemma_like_folder(f"{root}/{tokenizer_class}", tokenizer_class))
    assert type(reference).__name__ == tokenizer_class
    corpus = build_corpus() + SPECIAL_CASES
    ids = reference(corpus, padding="max_length", max_length=CONTEXT_LENGTH, truncation=True)["input_ids"]
    return corpus, np.array(ids, np.int32)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("gemma"))


@pytest.mark.parametrize("tokenizer_class, lowercase", [("Siglip2Tokenizer", True), ("GemmaTokenizer", False)])
def test_eager_ids_equal_transformers(root, tokenizer_class, lowercase):
    corpus, expected = reference_ids(root, tokenizer_class)
    assert_same_ids(corpus, expected, GemmaTokenizer(gemma_like_model(), lowercase=lowercase)(corpus))


def test_tf_function_tf_data_and_reloaded_files_give_the_same_ids(root, tmp_path):
    corpus, expected = reference_ids(root, "Siglip2Tokenizer")
    tokenizer = GemmaTokenizer(gemma_like_model())
    assert_same_ids(corpus, expected, tf.function(lambda texts: tokenizer(texts))(tf.constant(corpus)))
    batches = tf.data.Dataset.from_tensor_slices(corpus).batch(1000).map(tokenizer)
    assert_same_ids(corpus, expected, np.concatenate([batch.numpy() for batch in batches]))
    for reloaded in reloaded_tokenizers(tokenizer, tmp_path):
        assert_same_ids(corpus, expected, reloaded(tf.constant(corpus)))


def test_user_defined_pieces_are_read_from_the_model_and_made_control_pieces():
    import sentencepiece

    names, text_model = without_user_defined_pieces(gemma_like_model())
    assert names == USER_DEFINED
    original = sentencepiece.SentencePieceProcessor(model_proto=gemma_like_model())
    changed = sentencepiece.SentencePieceProcessor(model_proto=text_model)
    mask = original.piece_to_id("<mask>")
    assert original.encode("<mask>") == [mask] and mask not in changed.encode("<mask>")  # its characters' pieces
    assert changed.is_control(changed.piece_to_id("<mask>")) and changed.get_piece_size() == original.get_piece_size()
    with pytest.raises(ValueError, match="Not a SentencePiece model"):
        without_user_defined_pieces(gemma_like_model()[:-3])


def test_context_length_scalars_and_bad_arguments():
    short = GemmaTokenizer(gemma_like_model(), context_length=4)
    ids = short("a photo of a cat sitting on a table").numpy()
    assert ids.shape == (4,) and ids[-1] == short.eos_id == 1  # cut to 3 ids, then "<eos>"
    assert (GemmaTokenizer(gemma_like_model())([""]).numpy() == [[1] + [0] * 63]).all()
    restored = GemmaTokenizer.from_config(short.get_config())
    np.testing.assert_array_equal(restored(["a photo", "<mask>"]).numpy(), short(["a photo", "<mask>"]).numpy())
    with pytest.raises(ValueError, match="needs the SentencePiece model"):
        GemmaTokenizer()
    with pytest.raises(ValueError, match="context_length must be a positive int"):
        GemmaTokenizer(gemma_like_model(), context_length=0)
    with pytest.raises(ValueError, match="Not a Gemma SentencePiece model"):
        GemmaTokenizer(siglip_like_model())


def test_token_names_split_as_literals_whatever_their_characters():
    import tensorflow_text as tf_text

    from keras_clip.text.gemma_tokenizer import _re2_literal

    pattern = _re2_literal("<a\tb|c>.\u2581")
    pieces = tf_text.regex_split(tf.constant(["x<a\tb|c>.\u2581y<a b|c>.\u2581"]), pattern, pattern)
    assert [piece.decode() for piece in pieces.to_list()[0]] == ["x", "<a\tb|c>.\u2581", "y<a b|c>.\u2581"]
