"""`train_step`'s update of a repeated token's embedding row equals PyTorch's Adam on the summed gradient.

Keras 3's Adam, given an embedding lookup's `tf.IndexedSlices`, squares each occurrence's slice separately
(keras_clip/models/gradients.py); PyTorch's Adam squares the row's total gradient. Padding, start and end tokens
repeat in every batch. Tolerance 1e-5, a thousandth of the step (learning rate 1e-2; the old update was off by
up to 1e-2).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.tiny_models import tiny_clip

# Keras adds epsilon before the bias correction of the second moment, PyTorch after: a negligible epsilon keeps
# that known difference out of this comparison.
EPSILON = 1e-12


@pytest.mark.parametrize("remat", [False, True])  # a dense embedding gradient, and one slice per row
def test_repeated_tokens_take_pytorchs_adam_step(remat):
    model = tiny_clip(seed=0)
    model.remat = remat
    model.compile(keras.optimizers.Adam(1e-2, epsilon=EPSILON))
    batch = {"images": random_images(8, 32, seed=1), "tokens": random_tokens(8, seed=1)}
    embedding = model.text.token_embedding.embeddings
    before = embedding.numpy()
    with tf.GradientTape() as tape:
        loss = model._forward_loss(batch, training=True)[0]
    gradient = tf.convert_to_tensor(tape.gradient(loss, embedding)).numpy()
    assert np.unique(batch["tokens"]).size < batch["tokens"].size  # tokens repeat, as in every batch

    model.train_on_batch(batch["images"], batch["tokens"])

    reference = torch.nn.Parameter(torch.from_numpy(before.copy()))
    reference.grad = torch.from_numpy(gradient)
    torch.optim.Adam([reference], lr=1e-2, eps=EPSILON).step()
    np.testing.assert_allclose(embedding.numpy(), reference.detach().numpy(), atol=1e-5, rtol=0)
