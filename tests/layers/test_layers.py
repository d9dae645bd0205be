"""Every layer: config round trip, .keras saving and tf.data use (parity is in tests/test_model.py)."""

import numpy as np
import pytest

from keras_clip.layers import (
    AttentionPool2d,
    Bottleneck,
    FusedSelfAttention,
    ModifiedResNet,
    ResidualAttentionBlock,
    TextTransformer,
    Transformer,
    VisionTransformer,
)
from tests.helpers.layer_checks import run_layer_checks

rng = np.random.default_rng(0)
SEQUENCE = rng.normal(size=(2, 7, 64)).astype("float32")
FEATURE_MAP = rng.normal(size=(2, 4, 4, 32)).astype("float32")
IMAGES = rng.normal(size=(2, 64, 64, 3)).astype("float32")


def text_tokens(batch=2, context_length=77):
    tokens = np.zeros((batch, context_length), "int32")
    tokens[:, 0] = 49406
    for row in range(batch):
        length = 3 + 5 * row
        tokens[row, 1:length] = rng.integers(1, 49000, length - 1)
        tokens[row, length] = 49407
    return tokens


@pytest.mark.parametrize(
    "layer_class, kwargs, data, shape",
    [
        (FusedSelfAttention, dict(width=64, num_heads=4, causal=True), SEQUENCE, (2, 7, 64)),
        (ResidualAttentionBlock, dict(width=64, num_heads=2), SEQUENCE, (2, 7, 64)),
        (Transformer, dict(width=64, num_layers=2, num_heads=2, causal=True), SEQUENCE, (2, 7, 64)),
        (Bottleneck, dict(inplanes=32, planes=16, stride=2), FEATURE_MAP, (2, 2, 2, 64)),
        (Bottleneck, dict(inplanes=64, planes=16, stride=1), rng.normal(size=(2, 4, 4, 64)).astype("float32"),
         (2, 4, 4, 64)),
        (AttentionPool2d, dict(spatial_dim=4, embed_dim=32, num_heads=2, output_dim=16), FEATURE_MAP, (2, 16)),
        (VisionTransformer, dict(input_resolution=64, patch_size=16, width=64, num_layers=2, num_heads=1,
                                 output_dim=32), IMAGES, (2, 32)),
        (ModifiedResNet, dict(layers=(1, 2, 1, 1), output_dim=32, num_heads=2, input_resolution=64, width=8),
         IMAGES, (2, 32)),
        (TextTransformer, dict(context_length=77, vocab_size=49408, width=64, num_heads=1, num_layers=2,
                               output_dim=32), text_tokens(), (2, 32)),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_layer_contract(layer_class, kwargs, data, shape):
    run_layer_checks(layer_class, kwargs, data, shape)


def test_causal_attention_ignores_the_future():
    layer = FusedSelfAttention(width=64, num_heads=4, causal=True)
    changed = SEQUENCE.copy()
    changed[:, 4:] += 1.0
    before, after = np.asarray(layer(SEQUENCE)), np.asarray(layer(changed))
    np.testing.assert_allclose(before[:, :4], after[:, :4], atol=1e-5)
    assert np.abs(before[:, 4:] - after[:, 4:]).max() > 1e-3


def test_text_tower_pools_at_the_end_of_text_token():
    tower = TextTransformer(context_length=77, vocab_size=49408, width=64, num_heads=1, num_layers=1, output_dim=8)
    tokens = text_tokens(batch=1)
    after_eot = tokens.copy()
    end = int(np.argmax(tokens[0]))
    after_eot[0, end + 1:] = 7  # positions after EOT cannot reach the pooled one (causal mask)
    np.testing.assert_allclose(np.asarray(tower(tokens)), np.asarray(tower(after_eot)), atol=1e-6)
