"""CLIP's loss under tf.distribute equals the single-device global-batch loss, and the naive one does not."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOLERANCE = 1e-5


def run_training(mode, output, env=None):
    command = [sys.executable, "-m", "tests.helpers.distributed_training", mode, str(output)]
    return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, **(env or {})))


def results(path):
    with np.load(path) as data:
        weights = [data[f"arr_{i}"] for i in range(len(data.files) - 2)]
        return data["losses"], int(data["replicas"]), weights


def max_weight_difference(first, second):
    return max(float(np.abs(a - b).max()) for a, b in zip(first, second))


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    path = tmp_path_factory.mktemp("single") / "single.npz"
    assert run_training("single", path).wait() == 0
    return results(path)


def test_two_replicas_match_one_device_on_the_global_batch(single_device, tmp_path):
    assert run_training("mirrored", tmp_path / "mirrored.npz").wait() == 0
    losses, replicas, weights = results(tmp_path / "mirrored.npz")
    single_losses, single_replicas, single_weights = single_device
    assert (replicas, single_replicas) == (2, 1)
    assert len(losses) == 3
    np.testing.assert_allclose(losses, single_losses, atol=TOLERANCE, rtol=0)
    assert max_weight_difference(weights, single_weights) <= TOLERANCE


def test_naive_per_replica_loss_gives_different_weights(single_device, tmp_path):
    assert run_training("mirrored_naive", tmp_path / "naive.npz").wait() == 0
    losses, _, weights = results(tmp_path / "naive.npz")
    assert max_weight_difference(weights, single_device[2]) > 100 * TOLERANCE
    assert np.abs(losses - single_device[0]).max() > 100 * TOLERANCE


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_multi_worker_mirrored_matches_one_device(single_device, tmp_path):
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(run_training("multiworker", tmp_path / f"worker{index}.npz", {"TF_CONFIG": json.dumps(config)}))
    try:
        codes = [process.wait(timeout=600) for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert codes == [0, 0]
    (losses0, replicas, weights0), (losses1, _, weights1) = (results(tmp_path / f"worker{i}.npz") for i in range(2))
    assert replicas == 2
    assert max_weight_difference(weights0, weights1) == 0.0
    np.testing.assert_allclose(losses0, single_device[0], atol=TOLERANCE, rtol=0)
    assert max_weight_difference(weights0, single_device[2]) <= TOLERANCE
