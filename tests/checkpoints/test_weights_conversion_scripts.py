"""weights_conversion/convert.py and verify.py, run as a user would."""

import os
import sys

import numpy as np
import pytest

from keras_clip.checkpoints.load import load_model
from tests.helpers import checkpoint_files
from tests.helpers.background import Job

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _job(script, *args):
    """The script as a tests/helpers/background.py Job."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return Job([sys.executable, os.path.join(ROOT, "weights_conversion", script), *args], env=env, cwd=ROOT)


def _run(script, *args):
    return _job(script, *args).result(600)


@pytest.mark.parametrize("script, words", [("convert.py", [".keras", ".weights.h5", "safetensors"]),
                                            ("verify.py", ["--keras-file", "--tolerance", "torch.jit.load"])])
def test_help(script, words):
    result = _run(script, "--help")
    assert result.returncode == 0, result.stderr
    for word in words:
        assert word in result.stdout


@pytest.fixture(scope="module")
def torchscript_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scripts")
    _, state_dict = checkpoint_files.reference_state_dict(checkpoint_files.SMALL_VIT, seed=30)
    return checkpoint_files.write_torchscript(str(folder / "small.pt"), checkpoint_files.SMALL_VIT, state_dict)


# full_size: two fresh processes; by default the scripts' help, refusals and a failing verification run here,
# and the .keras / .weights.h5 writing in test_load.py.
@pytest.mark.full_size
def test_convert_then_verify(torchscript_file, tmp_path):
    # (.keras outputs go through the same code path, tested in test_load.py)
    cache = str(tmp_path / "cache")
    output = str(tmp_path / "small.weights.h5")
    result = _run("convert.py", torchscript_file, output, "--cache-dir", cache)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "parameters:" in result.stdout and os.path.isfile(output)
    converted, direct = load_model(output), load_model(torchscript_file, cache_dir=cache)
    for want, got in zip(direct.weights, converted.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    result = _run("verify.py", torchscript_file, "--keras-file", output, "--cache-dir", cache)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.count(" ok") == 3 and "encode_image" in result.stdout


@pytest.fixture(scope="module", autouse=True)
def wrong_model_verification(torchscript_file, tmp_path_factory):
    """verify.py of another model's weights, started before the module's first test to run beside the others."""
    folder = tmp_path_factory.mktemp("wrong_model")
    _, other = checkpoint_files.reference_state_dict(checkpoint_files.SMALL_VIT, seed=31)
    wrong = checkpoint_files.write_safetensors(str(folder / "other.safetensors"), other)
    job = _job("verify.py", torchscript_file, "--keras-file", wrong, "--cache-dir", str(folder / "cache"))
    job.start()
    yield job
    job.stop()


def test_verify_reports_a_wrong_model(wrong_model_verification):
    result = wrong_model_verification.result(600)
    assert result.returncode == 1
    assert "EXCEEDS TOLERANCE" in result.stdout


def test_convert_refuses_other_outputs(torchscript_file, tmp_path):
    result = _run("convert.py", torchscript_file, str(tmp_path / "model.onnx"))
    assert result.returncode != 0 and "must end in .keras or .weights.h5" in result.stderr
