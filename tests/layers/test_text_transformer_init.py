"""The text transformer's initial weights have OpenAI's standard deviations (clip/model.py)."""

import numpy as np
import pytest

from keras_clip.layers.text_transformer import TextTransformer

WIDTH, LAYERS = 64, 3


@pytest.fixture(scope="module")
def tower():
    layer = TextTransformer(
        context_length=77, vocab_size=1000, width=WIDTH, num_heads=2, num_layers=LAYERS, output_dim=32
    )
    layer.build((None, 77))
    return layer


def test_block_kernels_have_openais_standard_deviations(tower):
    # OpenAI: attn in_proj width^-0.5; attn out_proj and mlp c_proj width^-0.5 * (2 * layers)^-0.5;
    # mlp c_fc (2 * width)^-0.5. Keras' default (glorot uniform) differs by more than 10% for each.
    proj_std = WIDTH**-0.5 * (2 * LAYERS) ** -0.5
    for block in tower.transformer.resblocks:
        for dense, expected in (
            (block.attn.in_proj, WIDTH**-0.5),
            (block.attn.out_proj, proj_std),
            (block.c_fc, (2 * WIDTH) ** -0.5),
            (block.c_proj, proj_std),
        ):
            kernel = dense.kernel.numpy()
            assert abs(kernel.mean()) < 0.05 * expected, dense.path
            np.testing.assert_allclose(kernel.std(), expected, rtol=0.05, err_msg=dense.path)


def test_blocks_are_drawn_independently(tower):
    first, second = (block.c_fc.kernel.numpy() for block in tower.transformer.resblocks[:2])
    assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < 0.05
