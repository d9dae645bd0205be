"""Behaviour of the tower blocks beyond the shared layer contract (tests/test_public_layers.py)."""

import numpy as np

from keras_clip.layers import FusedSelfAttention, TextTransformer
from tests.helpers.model_inputs import random_tokens

rng = np.random.default_rng(0)
SEQUENCE = rng.normal(size=(2, 7, 64)).astype("float32")


def test_causal_attention_ignores_the_future():
    layer = FusedSelfAttention(width=64, num_heads=4, causal=True)
    changed = SEQUENCE.copy()
    changed[:, 4:] += 1.0
    before, after = np.asarray(layer(SEQUENCE)), np.asarray(layer(changed))
    np.testing.assert_allclose(before[:, :4], after[:, :4], atol=1e-5)
    assert np.abs(before[:, 4:] - after[:, 4:]).max() > 1e-3


def test_text_tower_pools_at_the_end_of_text_token():
    tower = TextTransformer(context_length=77, vocab_size=49408, width=64, num_heads=1, num_layers=1, output_dim=8)
    tokens = random_tokens(2, seed=1)[:1]  # the first row's EOT is before the last position
    after_eot = tokens.copy()
    end = int(np.argmax(tokens[0]))
    assert end < 76
    after_eot[0, end + 1:] = 7  # positions after EOT cannot reach the pooled one (causal mask)
    np.testing.assert_allclose(np.asarray(tower(tokens)), np.asarray(tower(after_eot)), atol=1e-6)
