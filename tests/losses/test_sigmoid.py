"""SigLIP's sigmoid loss: the paper's formula on one device, and exact under tf.distribute.

Under MirroredStrategy (2 replicas x 16 and 4 replicas x 8, logical CPUs in subprocesses), the gathered, the
chunked and the accumulated (2 replicas x 4 micro-batches x 4) forms give the single-device batch-32 losses
and the weights after 3 AdamW steps within 1e-5 (the key biases aside: see `max_weight_difference`); the
per-replica-only loss does not.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.losses import sigmoid_loss
from tests.helpers.distributed_training import LOCAL_JOB, SIGMOID4_JOB, local_results, max_weight_difference, results
from tests.helpers.tiny_models import TINY_SIGLIP

TOLERANCE = 1e-5


def paper_loss(images, texts, scale, bias):
    """-1/n sum_ij log sigmoid(z_ij (t x_i . y_j + b)) in float64 numpy."""
    x = images / np.linalg.norm(images, axis=1, keepdims=True)
    y = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    logits = np.exp(scale) * x @ y.T + bias
    signs = 2 * np.eye(len(x)) - 1
    return -np.sum(-np.logaddexp(0, -signs * logits)) / len(x)


@pytest.mark.parametrize("chunked", [False, True])
def test_loss_is_the_papers_and_both_forms_share_gradients(chunked):
    rng = np.random.default_rng(0)
    images, texts = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    scale, bias = tf.Variable(np.log(10.0)), tf.Variable(-10.0)
    image_tensor, text_tensor = tf.constant(images, tf.float32), tf.constant(texts, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([image_tensor, text_tensor])
        loss, _, _ = sigmoid_loss(image_tensor, text_tensor, scale, bias, chunked=chunked)
    np.testing.assert_allclose(float(loss), paper_loss(images, texts, np.log(10.0), -10.0), rtol=1e-5)
    gradients = tape.gradient(loss, [image_tensor, text_tensor, scale, bias])
    with tf.GradientTape() as tape:
        tape.watch([image_tensor, text_tensor])
        other, _, _ = sigmoid_loss(image_tensor, text_tensor, scale, bias, chunked=not chunked)
    for ours, theirs in zip(gradients, tape.gradient(other, [image_tensor, text_tensor, scale, bias])):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-6)


def test_compile_chooses_the_loss_by_name():
    siglip = keras_clip.CLIP(**TINY_SIGLIP)
    siglip.compile("adam")
    assert siglip.loss_name == "sigmoid"
    with pytest.raises(ValueError, match="Unknown loss 'softmax'"):
        siglip.compile("adam", loss="softmax")
    clip = keras_clip.CLIP(**dict(TINY_SIGLIP, init_logit_bias=None))
    with pytest.raises(ValueError, match="needs a logit_bias"):
        clip.compile("adam", loss="sigmoid")


@pytest.mark.background(LOCAL_JOB)
@pytest.mark.parametrize("form", ["sigmoid", "chunked_sigmoid", "sigmoid_accumulated"])
def test_two_replicas_match_one_device(form):
    runs = local_results(LOCAL_JOB)
    single_losses, _, single_weights = runs["sigmoid_single"]
    losses, replicas, weights = runs[f"{form}_mirrored"]
    assert replicas == 2 and len(losses) == 3
    np.testing.assert_allclose(losses, single_losses, atol=TOLERANCE, rtol=0)
    assert max_weight_difference(weights, single_weights, "sigmoid") <= TOLERANCE


# 4 replicas x 4 is a full_size check (its subprocess adds a minute of CPU to the default run).
@pytest.mark.full_size
@pytest.mark.background(LOCAL_JOB, SIGMOID4_JOB)
@pytest.mark.parametrize("form", ["sigmoid", "chunked_sigmoid"])
def test_four_replicas_match_one_device(form):
    single_losses, _, single_weights = local_results(LOCAL_JOB)["sigmoid_single"]
    process = SIGMOID4_JOB.result()
    assert process.returncode == 0, process.stderr[-3000:]
    losses, replicas, weights = results(os.path.join(SIGMOID4_JOB.folder, f"sigmoid4_{form}.npz"))
    assert replicas == 4 and len(losses) == 3
    np.testing.assert_allclose(losses, single_losses, atol=TOLERANCE, rtol=0)
    assert max_weight_difference(weights, single_weights, "sigmoid") <= TOLERANCE


@pytest.mark.background(LOCAL_JOB)
def test_per_replica_loss_differs():
    runs = local_results(LOCAL_JOB)
    single_losses, _, single_weights = runs["sigmoid_single"]
    naive_losses, _, naive_weights = runs["sigmoid_mirrored_naive"]
    assert max_weight_difference(naive_weights, single_weights, "sigmoid") > 100 * TOLERANCE
    assert np.abs(naive_losses - single_losses).max() > 100 * TOLERANCE
