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


def test_block_trains_with_the_inference_formulas_values_and_gradients():
    # In training the block's LayerNorms and activation keep less for the backward pass
    # (layer_normalization.py, activations.py): the same outputs, the same gradients to rounding.
    import tensorflow as tf

    from keras_clip.layers import ResidualAttentionBlock

    block = ResidualAttentionBlock(width=64, num_heads=4, causal=True)
    x = tf.constant(SEQUENCE)

    def output_and_gradients(training):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = block(x, training=training)
        return y, tape.gradient(y, [x] + block.trainable_variables, output_gradients=tf.sin(y))

    trained, trained_gradients = output_and_gradients(True)
    inferred, inferred_gradients = output_and_gradients(False)
    np.testing.assert_array_equal(np.asarray(trained), np.asarray(inferred))
    for ours, theirs in zip(trained_gradients, inferred_gradients):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-5 * np.abs(np.asarray(theirs)).max())
