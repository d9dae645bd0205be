"""Parity of keras_clip's in-graph tokenizer with OpenAI's `clip.tokenize`, and its Keras contract."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.errors import InvalidTextError
from keras_clip.text.bpe import (
    EOT_ID,
    MAX_CACHED_WORD_BYTES,
    SOT_ID,
    VOCAB_SIZE,
    BytePairEncoder,
    load_vocabulary,
)
from keras_clip.text.tokenizer import Tokenizer, tokenize
from tests.helpers.tokenizer_corpus import build_corpus
from tests.helpers.tokenizer_reference import mojibake_repair_changes, reference_tokenize, reference_tokenizer

BATCH = 256


@pytest.fixture(scope="module")
def corpus():
    return build_corpus()


@pytest.fixture(scope="module")
def reference(corpus):
    """OpenAI's ids, OpenAI's ids with ftfy's mojibake repair off, and which texts that repair changes."""
    return {
        "ids": reference_tokenize(corpus),
        "ids_without_mojibake_repair": reference_tokenize(corpus, mojibake_repair=False),
        "mojibake": np.array([mojibake_repair_changes(text) for text in corpus]),
    }


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer()


def _check_parity(corpus, reference, ours, where):
    """Every id equals OpenAI's, except texts whose ftfy mojibake repair changes (reported)."""
    assert ours.shape == reference["ids"].shape and ours.dtype == np.int32, (ours.shape, ours.dtype)
    differs = np.any(ours != reference["ids"], axis=1)
    unexplained = np.flatnonzero(differs & ~reference["mojibake"])
    assert not unexplained.size, (
        f"{where}: {unexplained.size} of {len(corpus)} texts differ from OpenAI, e.g. "
        + "; ".join(f"{corpus[i]!r}: ours {ours[i][:12].tolist()} vs {reference['ids'][i][:12].tolist()}"
                    for i in unexplained[:5])
    )
    # Where mojibake repair is involved we are exactly OpenAI's tokenizer without that repair.
    np.testing.assert_array_equal(ours, reference["ids_without_mojibake_repair"], err_msg=where)
    return np.flatnonzero(differs)


def test_corpus_is_large_and_distinct(corpus):
    assert len(corpus) >= 5000 and len(set(corpus)) == len(corpus)


def test_ids_equal_openai_eagerly(corpus, reference, tokenizer):
    exceptions = _check_parity(corpus, reference, np.asarray(tokenizer(corpus)), "eager")
    mojibake = np.flatnonzero(reference["mojibake"])
    warnings.warn(
        f"tokenizer parity: {len(corpus)} texts, 0 unexplained differences; ftfy's mojibake repair changes "
        f"{mojibake.size} of them and {exceptions.size} get different ids, e.g. "
        + ", ".join(repr(corpus[i]) for i in exceptions[:8]),
        UserWarning,
    )


def test_ids_equal_openai_in_tf_function(corpus, reference, tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize_batch(texts):
        return tokenizer(texts)

    # A batch without "&" (or a full-width one) takes the short cleaning path, any other the full
    # one: group the texts so that every text goes through the path its content selects.
    with_references = np.array(["&" in text or "\uff06" in text for text in corpus])
    order = np.concatenate([np.flatnonzero(~with_references), np.flatnonzero(with_references)])
    texts = [corpus[i] for i in order]
    boundary = int((~with_references).sum())
    starts = list(range(0, boundary, BATCH)) + list(range(boundary, len(texts), BATCH))
    ends = starts[1:] + [len(texts)]
    ends = [min(end, boundary) if start < boundary else end for start, end in zip(starts, ends)]
    ours = np.concatenate([tokenize_batch(tf.constant(texts[a:b])).numpy() for a, b in zip(starts, ends)])
    restored = np.empty_like(ours)
    restored[order] = ours
    _check_parity(corpus, reference, restored, "tf.function")
    assert boundary > 2500 and len(texts) - boundary > 1000, boundary


def test_ids_equal_openai_in_tf_data(corpus, reference):
    tokenizer = Tokenizer()
    dataset = tf.data.Dataset.from_tensor_slices(corpus).batch(BATCH).map(tokenizer, num_parallel_calls=2)
    ours = np.concatenate([batch.numpy() for batch in dataset])
    _check_parity(corpus, reference, ours, "tf.data")
    # Scalar strings map to [context_length] rows.
    scalars = tf.data.Dataset.from_tensor_slices(corpus[:300]).map(tokenizer).batch(100)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in scalars]), reference["ids"][:300])


def test_shorter_context_and_truncation_keep_eot_last(corpus):
    texts = [t for t in corpus if not mojibake_repair_changes(t)][::7]
    for context_length in (5, 16):
        expected = reference_tokenize(texts, context_length=context_length, truncate=True)
        np.testing.assert_array_equal(tokenize(texts, context_length, truncate=True), expected)
        cut = expected[:, -1] != 0
        assert cut.any() and np.all(expected[cut, -1] == EOT_ID)


def test_tokenize_matches_clip_tokenize_contract():
    single = tokenize("a diagram")
    assert single.shape == (1, 77) and single.dtype == np.int32
    np.testing.assert_array_equal(single, reference_tokenize(["a diagram"]))
    np.testing.assert_array_equal(tokenize(["a dog", "a cat"]), reference_tokenize(["a dog", "a cat"]))
    assert tokenize([]).shape == (0, 77)
    as_tensor = tokenize(tf.constant(["a dog"]))
    assert isinstance(as_tensor, tf.Tensor) and as_tensor.dtype == tf.int32
    with pytest.raises(TypeError, match="str"):
        tokenize([1, 2])


def test_too_long_text_is_an_error_naming_its_index_its_start_and_its_length():
    long_text = "a photo of a cat " * 30
    with pytest.raises(RuntimeError):
        reference_tokenize([long_text], truncate=False)
    length = 2 + len(reference_tokenizer().encode(long_text))
    expected = (rf"Could not tokenize the text at index 1 \('a photo of a cat a photo[a-z ]*…, 510 characters\): "
                rf"it has {length} tokens with SOT and EOT, more than the context length 77")  # fmt: skip
    with pytest.raises(InvalidTextError, match=expected) as error:
        tokenize(["fine", long_text])
    assert error.value.index == 1 and isinstance(error.value, ValueError)
    with pytest.raises(InvalidTextError, match="the text at index 0 .*: it has"):
        Tokenizer(truncate=False)([long_text])
    # The message quotes 80 characters of a 100,000-character text (it was 100,328 characters long).
    with pytest.raises(InvalidTextError, match="100,000 characters") as error:
        tokenize(["word " * 20000])
    assert len(str(error.value)) < 300

    strict_tokenizer = Tokenizer(truncate=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def strict(texts):
        return strict_tokenizer(texts)

    quoted = "a photo of a cat a photo of a cat a photo of a cat a photo of a cat a photo of a"  # 80 characters
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"too long for context length 77.*EOT:\] \[1\] \[{quoted}\] \[{length}\]"):  # fmt: skip
        strict(tf.constant(["fine", long_text]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0\] \[(word ){16}\] \[20002\]"):
        strict(tf.constant(["word " * 20000]))
    assert strict(tf.constant(["fine"])).shape == (1, 77)


def test_scalar_and_bad_shapes(tokenizer):
    row = tokenizer(tf.constant("a photo of a cat"))
    assert row.shape == (77,)
    np.testing.assert_array_equal(row.numpy(), reference_tokenize(["a photo of a cat"])[0])
    with pytest.raises(ValueError, match="scalar or 1-D"):
        tokenizer(tf.constant([["a", "b"]]))
    with pytest.raises(ValueError, match="at least 2"):
        Tokenizer(context_length=1)


def test_short_context_truncates_like_openai():
    texts = tf.constant(["a photo of a cat", "\u039f\u0394\u039f\u03a3 &amp; \U0001f600", "", "word " * 30])
    output = Tokenizer(context_length=16, truncate=True)(texts).numpy()
    np.testing.assert_array_equal(output, reference_tokenize([t.decode() for t in texts.numpy()], 16))


def test_detokenize_gives_openai_decode(corpus, reference, tokenizer):
    decoder = reference_tokenizer()
    rows = reference["ids_without_mojibake_repair"][::5]
    texts = tokenizer.detokenize(rows).numpy()
    for row, text in zip(rows, texts):
        tokens = row[1 : int(np.argmax(row == EOT_ID))] if EOT_ID in row[1:] else row[1:]
        tokens = [t for t in tokens.tolist() if t != SOT_ID]
        assert text.decode("utf-8") == decoder.decode(tokens).strip(), tokens
    assert tokenizer.detokenize(rows[0]).numpy() == texts[0]
    with pytest.raises(tf.errors.InvalidArgumentError, match="token ids must lie"):
        tokenizer.detokenize([[SOT_ID, VOCAB_SIZE]])


def test_vocabulary_is_openais():
    tokens, merges = load_vocabulary()
    openai = reference_tokenizer()
    assert len(tokens) == VOCAB_SIZE == len(openai.encoder)
    assert all(openai.encoder[token] == i for i, token in enumerate(tokens))
    assert tokens[SOT_ID] == "<|startoftext|>" and tokens[EOT_ID] == "<|endoftext|>"
    assert merges == list(openai.bpe_ranks)


def test_words_in_vocabulary_never_run_the_merge_loop():
    openai = reference_tokenizer()
    # Why the fast path is exact: every whole-word token merges back to itself.
    whole_words = [token[: -len("</w>")] for token in openai.encoder if token.endswith("</w>")]
    assert len(whole_words) == 34483
    assert all(openai.bpe(word) == word + "</w>" for word in whole_words)
    # Only words that ran the merge loop enter the cache.
    encoder = BytePairEncoder()
    in_vocabulary = tf.constant([w.encode("utf-8") for w in ("photo", "cat", "hello", "!", "...")])
    encoder.encode(in_vocabulary)
    assert int(encoder._cache.size()) == 0
    rare = tf.constant(["xylophonistically", "zzqqxx", "photobombers", "aaaaaaaa"])
    first = encoder.encode(rare).to_list()
    assert int(encoder._cache.size()) == 4
    assert encoder.encode(rare).to_list() == first and int(encoder._cache.size()) == 4
    # Words longer than MAX_CACHED_WORD_BYTES are merged anew each time: unique long words cannot fill memory.
    longest, too_long = "qz" * (MAX_CACHED_WORD_BYTES // 2), "qz" * (MAX_CACHED_WORD_BYTES // 2) + "q"
    ids = encoder.encode(tf.constant([longest, too_long])).to_list()
    assert int(encoder._cache.size()) == 5
    assert ids == [[openai.encoder[token] for token in openai.bpe(word).split()] for word in (longest, too_long)]


def test_merge_loop_equals_openai_bpe_on_random_words():
    openai = reference_tokenizer()
    rng = np.random.default_rng(0)
    alphabet = list("abcdefghijklmnopqrstuvwxyzéøßあ中😀'-") + ["aa", "ll", "ss", "ing", "tion"]
    words = ["".join(rng.choice(alphabet, size=rng.integers(1, 14))) for _ in range(400)]
    words += ["aaaaaaaaa", "lllllll", "ssssssss", "mississippi", "!!!!!!!!!", "........."]
    merged = BytePairEncoder().merge(tf.constant([w.encode("utf-8") for w in words])).to_list()
    for word, ids in zip(words, merged):
        byte_word = "".join(openai.byte_encoder[b] for b in word.encode("utf-8"))
        assert ids == [openai.encoder[t] for t in openai.bpe(byte_word).split(" ")], word
