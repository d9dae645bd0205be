"""Generated hostile texts: each tokenizes to valid ids, or raises InvalidTextError naming it, in bounded memory.

Texts mix any code point (lone surrogates, control characters, unassigned ones), HTML-like references,
long repetitions, and bytes that are not UTF-8. CLIP's tokenizer must give OpenAI's ids for every str of
up to `REFERENCE_CHARACTERS` (OpenAI's tokenizer without ftfy's mojibake repair, the one fix documented
as left out). `FUZZ_EXAMPLES` texts per tokenizer, `TEXTS_PER_CALL` to a call.
"""

import resource
import warnings

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_clip.errors import InvalidTextError
from keras_clip.text.bpe import EOT_ID, SOT_ID, VOCAB_SIZE
from keras_clip.text.python_texts import fix_surrogates
from keras_clip.text.sentencepiece_tokenizer import SentencePieceTokenizer
from keras_clip.text.tokenizer import tokenize
from tests.helpers.fuzzing import FUZZ_EXAMPLES, fuzz_settings
from tests.helpers.sentencepiece_models import siglip_like_model, write_siglip_like_model
from tests.helpers.tokenizer_reference import reference_tokenize, reference_tokenizer

TEXTS_PER_CALL = 10
REFERENCE_CHARACTERS = 300  # longer texts (repetitions) are checked for validity only: the reference is slow
MEMORY_CAP_MB = 150  # growth of the peak RSS over all of one test's calls, beyond hypothesis' own:
HYPOTHESIS_MB_PER_EXAMPLE = 0.04  # its record of the examples tried (measured: 35 MB per 1,000 with a no-op test)
ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates, controls, unassigned code points too
MARKUP = st.sampled_from(["&", "&amp;", "&#", "&#x", ";", "<", ">", "'s", "\r\n", "\x1b[", "\u3000", "Σ", "ﬁ", " "])
TEXT = st.one_of(
    st.text(ANY_CHARACTER, max_size=40),
    st.lists(st.one_of(MARKUP, st.text(ANY_CHARACTER, max_size=3), st.text("aB 09", max_size=4)), max_size=12)
    .map("".join),
    st.builds(lambda text, count: text * count, st.text(ANY_CHARACTER, min_size=1, max_size=6),
              st.integers(20, 1500)),
    st.binary(max_size=30),
)
CALLS = st.lists(TEXT, min_size=TEXTS_PER_CALL, max_size=TEXTS_PER_CALL)


EXAMPLES = max(1, FUZZ_EXAMPLES // TEXTS_PER_CALL)


def per_call_settings():
    return settings(fuzz_settings(), max_examples=EXAMPLES)


def memory_cap_mb():
    return MEMORY_CAP_MB + HYPOTHESIS_MB_PER_EXAMPLE * EXAMPLES


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forget_reference_words():
    reference = reference_tokenizer(mojibake_repair=False)
    reference.cache = {token: token for token in ("<|startoftext|>", "<|endoftext|>")}


def check_clip_ids(ids, count):
    assert ids.shape == (count, 77) and ids.dtype == np.int32
    assert ((ids >= 0) & (ids < VOCAB_SIZE)).all() and (ids[:, 0] == SOT_ID).all()
    for row in ids:
        ends = np.flatnonzero(row == EOT_ID)
        assert len(ends) == 1 and not row[ends[0] + 1 :].any()


@pytest.mark.fuzz
def test_clip_tokenizer_on_generated_texts():
    tokenize(["warm up"])
    start = peak_rss_mb()

    @per_call_settings()
    @given(CALLS)
    def run(texts):
        ids = tokenize(texts, truncate=True)
        check_clip_ids(ids, len(texts))
        compared = [i for i, text in enumerate(texts) if isinstance(text, str) and len(text) <= REFERENCE_CHARACTERS]
        expected = reference_tokenize([texts[i] for i in compared], truncate=True, mojibake_repair=False)
        forget_reference_words()  # OpenAI's word cache grows without bound: measure ours only
        np.testing.assert_array_equal(ids[compared], expected)
        try:
            strict = tokenize(texts)
        except InvalidTextError as error:
            # The first text too long, named by its index and its first 80 characters at most.
            assert 0 <= error.index < len(texts) and len(str(error)) < 400
            assert ids[error.index, -1] == EOT_ID  # cut, it fills the context
            assert error.index == 0 or tokenize(texts[: error.index]).shape[0] == error.index
        else:
            np.testing.assert_array_equal(strict, ids)

    run()
    assert peak_rss_mb() - start < memory_cap_mb()


@pytest.mark.fuzz
def test_sentencepiece_tokenizer_on_generated_texts(tmp_path):
    from transformers import SiglipTokenizer

    tokenizer = SentencePieceTokenizer(siglip_like_model(), context_length=16)
    traced = tf.function(tokenizer.tokenize_graph)
    reference = SiglipTokenizer(write_siglip_like_model(tmp_path / "spiece.model"))
    tokenizer(["warm up"])
    start = peak_rss_mb()

    @per_call_settings()
    @given(CALLS)
    def run(texts):
        ids = np.asarray(tokenizer(texts))
        assert ids.shape == (len(texts), 16) and ids.dtype == np.int32
        assert ((ids >= 0) & (ids < tokenizer.vocabulary_size)).all()
        assert (ids == tokenizer.eos_id).any(axis=1).all()
        utf8 = [fix_surrogates(text).encode("utf-8") if isinstance(text, str) else text for text in texts]
        compared = [i for i, text in enumerate(texts) if isinstance(text, str)
                    and text == text.encode("utf-8", "replace").decode("utf-8")]  # fmt: skip
        np.testing.assert_array_equal(traced(tf.constant(utf8)), ids)  # eager equals graph
        if compared:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "This sequence already has </s>"
                expected = reference([texts[i] for i in compared], padding="max_length", max_length=16,
                                     truncation=True)["input_ids"]  # fmt: skip
            np.testing.assert_array_equal(ids[compared], expected)

    run()
    assert peak_rss_mb() - start < memory_cap_mb()
