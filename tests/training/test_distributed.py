"""CLIP's loss under tf.distribute equals the single-device global-batch loss, and the naive one does not.

The global batch is 32; "accumulated" runs take it on 2 replicas in 4 micro-batches of 4 each
(`compile(accumulation_steps=4)`), the MultiWorkerMirroredStrategy cluster in 2 micro-batches per worker.
"""

import os

import numpy as np
import pytest

from tests.helpers.distributed_training import CLUSTER_JOB as CLUSTER
from tests.helpers.distributed_training import LOCAL_JOB as LOCAL
from tests.helpers.distributed_training import WORKERS, local_results, max_weight_difference, results

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def local_runs():
    """{run name: (losses, replicas, weights)} (tests/helpers/distributed_training.py), trained in one subprocess."""
    return local_results(LOCAL)


@pytest.fixture(scope="module")
def single_device(local_runs):
    return local_runs["single"]


@pytest.mark.background(LOCAL)
def test_two_replicas_match_one_device_on_the_global_batch(local_runs, single_device):
    losses, replicas, weights = local_runs["mirrored"]
    single_losses, single_replicas, single_weights = single_device
    assert (replicas, single_replicas) == (2, 1)
    assert len(losses) == 3
    np.testing.assert_allclose(losses, single_losses, atol=TOLERANCE, rtol=0)
    assert max_weight_difference(weights, single_weights) <= TOLERANCE


@pytest.mark.background(LOCAL)
def test_accumulated_micro_batches_on_two_replicas_match_one_device(local_runs, single_device):
    losses, replicas, weights = local_runs["accumulated_mirrored"]
    assert replicas == 2 and len(losses) == 3
    np.testing.assert_allclose(losses, single_device[0], atol=TOLERANCE, rtol=0)
    assert max_weight_difference(weights, single_device[2]) <= TOLERANCE


@pytest.mark.background(LOCAL)
def test_naive_per_replica_loss_gives_different_weights(local_runs, single_device):
    losses, _, weights = local_runs["mirrored_naive"]
    assert max_weight_difference(weights, single_device[2]) > 100 * TOLERANCE
    assert np.abs(losses - single_device[0]).max() > 100 * TOLERANCE


@pytest.mark.background(LOCAL, CLUSTER)
def test_multi_worker_mirrored_matches_one_device(single_device):
    process = CLUSTER.result()
    assert process.returncode == 0, process.stdout[-1000:] + process.stderr[-3000:]
    workers = [results(os.path.join(CLUSTER.folder, f"worker{index}.npz")) for index in range(WORKERS)]
    (losses0, replicas, weights0), (losses1, _, weights1) = workers
    assert replicas == 2
    assert max_weight_difference(weights0, weights1) == 0.0
    np.testing.assert_allclose(losses0, single_device[0], atol=TOLERANCE, rtol=0)
    assert max_weight_difference(weights0, single_device[2]) <= TOLERANCE
