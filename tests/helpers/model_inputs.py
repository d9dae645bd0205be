"""Random model inputs shared by the tests."""

import numpy as np

SOT, EOT = 49406, 49407


def random_images(batch, resolution, seed=0):
    """Normalised-looking float32 NHWC images."""
    return np.random.default_rng(seed).normal(size=(batch, resolution, resolution, 3)).astype("float32")


def random_tokens(batch, context_length=77, seed=0):
    """int32 token rows: SOT, random ids, EOT at varied positions (the last row fills the context), zeros."""
    rng = np.random.default_rng(seed)
    tokens = np.zeros((batch, context_length), "int32")
    tokens[:, 0] = SOT
    for row in range(batch):
        end = context_length - 1 if row == batch - 1 else int(rng.integers(2, context_length))
        tokens[row, 1:end] = rng.integers(1, SOT, end - 1)
        tokens[row, end] = EOT
    return tokens
