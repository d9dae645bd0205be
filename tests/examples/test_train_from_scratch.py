"""examples/train_from_scratch.py: a small CLIP trained on scikit-learn's digits classifies unseen digits zero-shot."""

import os
import re
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers.background import Job
from tests.helpers.example_scripts import EXAMPLES, load_example

EXAMPLE = os.path.join(EXAMPLES, "train_from_scratch.py")


@pytest.mark.full_size
def test_digits_reach_90_percent_zero_shot_accuracy(tmp_path, capsys):
    example = load_example("train_from_scratch")
    plot = tmp_path / "similarity.png"
    accuracy = example.main(["--plot", str(plot)])  # the defaults: 30 epochs, seed 0
    output = capsys.readouterr().out
    assert accuracy >= 0.90, output
    assert f"Zero-shot accuracy on 450 held-out digits: {100 * accuracy:.1f}%" in output
    assert "val_zero_shot_top1" in output  # the ZeroShotAccuracy callback's number, in the progress lines
    with Image.open(plot) as image:
        assert image.format == "PNG" and min(image.size) > 300


# The demo end to end, as a user runs it, in 5 epochs of 4 steps (the ZeroShotAccuracy callback reports every
# 5th epoch); in the background from the start of the run.
SHORT_RUN = Job([sys.executable, EXAMPLE, "--epochs", "5", "--batch-size", "256", "--plot", "{folder}/similarity.png"],
                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


@pytest.mark.background(SHORT_RUN)
def test_a_short_run_trains_reports_and_plots():
    process = SHORT_RUN.result()
    assert process.returncode == 0, process.stderr[-3000:]
    output = process.stdout
    accuracy = float(re.search(r"Zero-shot accuracy on 450 held-out digits: ([0-9.]+)%", output).group(1))
    assert 0.0 <= accuracy <= 100.0
    epochs = [line for line in output.splitlines() if line.startswith("4/4 - ")]  # 4 steps of 256 per epoch
    assert len(epochs) == 5
    losses = [float(re.search(r" loss: ([0-9.]+)", line).group(1)) for line in epochs]
    assert losses[-1] < losses[0], losses
    assert 0.0 <= float(re.search(r"val_zero_shot_top1: ([0-9.]+)", epochs[-1]).group(1)) <= 1.0
    with Image.open(os.path.join(SHORT_RUN.folder, "similarity.png")) as image:
        assert image.format == "PNG" and min(image.size) > 300


def test_captions_and_splits():
    example = load_example("train_from_scratch")
    captions = example.caption_table().numpy()
    assert captions.shape == (10, 2 * len(example.CAPTION_TEMPLATES))
    assert b"a handwritten seven" in captions[7] and b"the digit 7." in captions[7]
    assert not any(b"seven" in caption or b"7" in caption for caption in captions[3])
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = example.load_splits(seed=0)
    assert (len(train_y), len(val_y), len(test_y)) == (1167, 180, 450)
    assert train_x.dtype == np.uint8 and train_x.shape[1:] == (8, 8, 1) and train_x.max() == 255
    assert set(np.unique(test_y)) == set(range(10))


def test_plot_is_skipped_without_matplotlib(tmp_path, monkeypatch):
    example = load_example("train_from_scratch")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    path = tmp_path / "plot.png"
    assert not example.save_similarity_plot(str(path), np.zeros((2, 8, 8, 1)), ["a", "b"], np.eye(2))
    assert not path.exists()


def test_plot_shows_every_label_whole(tmp_path):
    example = load_example("train_from_scratch")
    texts = [f"a handwritten {name}" for name in example.CLASSNAMES]
    path = tmp_path / "plot.png"
    assert example.save_similarity_plot(str(path), np.zeros((10, 8, 8, 1)), texts, np.eye(10))
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    # Nothing is drawn in the outer margin: a label cut at an edge would touch it.
    margin = 5
    for edge in (pixels[:, :margin], pixels[:, -margin:], pixels[:margin], pixels[-margin:]):
        assert edge.min() == 255
