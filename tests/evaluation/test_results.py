"""ZeroShotResults: accuracies, per-class table, confusion matrix and its optional matplotlib plot."""

import json
import sys

import numpy as np
import pytest

from keras_clip.evaluation import ZeroShotResults


@pytest.fixture
def results():
    # 6 images, 3 classes (class 2 has no images); top-2 predictions per image.
    labels = np.array([0, 0, 0, 1, 1, 1])
    predictions = np.array([[0, 1], [1, 0], [0, 2], [1, 0], [0, 2], [2, 0]])
    return ZeroShotResults(["cat", "dog", "fox"], labels, predictions, skipped=["a.jpg"], description="pets")


def test_accuracies(results):
    assert results.top1 == pytest.approx(3 / 6)
    assert results.top5 == pytest.approx(4 / 6)  # k capped at the 2 predictions kept
    np.testing.assert_allclose(results.per_class_accuracy(), [2 / 3, 1 / 3, np.nan])
    np.testing.assert_allclose(results.per_class_accuracy(2), [1.0, 1 / 3, np.nan])
    assert results.mean_per_class_accuracy() == pytest.approx(0.5)
    np.testing.assert_array_equal(results.confusion_matrix(), [[2, 1, 0], [1, 1, 1], [0, 0, 0]])
    assert results.summary() == (
        "pets: top-1 50.00%, top-5 66.67% over 6 images, 3 classes (1 unreadable images skipped)"
    )


def test_per_class_table(results):
    table = results.per_class_table()
    assert table.splitlines() == [
        "class  images    top-1    top-5  most confused with",
        "cat         3    66.7%   100.0%  dog (1)",
        "dog         3    33.3%    33.3%  cat (1)",
        "fox         0        -        -",
    ]
    assert [line.split()[0] for line in results.per_class_table(sort_by="accuracy").splitlines()[1:]] == [
        "dog", "cat", "fox"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="sort_by"):
        results.per_class_table(sort_by="colour")


def test_to_dict_is_json(results):
    summary = json.loads(json.dumps(results.to_dict()))
    assert summary["top1"] == 0.5 and summary["num_skipped"] == 1
    assert summary["per_class"][2] == {"class": "fox", "images": 0, "top1": None}


def test_confusion_matrix_plot(results, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "confusion.png"
    figure = results.plot_confusion_matrix(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    matrix = figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(matrix, [[2 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 0]])
    # Many classes: only those with the most errors are drawn.
    many = ZeroShotResults([f"c{i}" for i in range(60)], np.arange(60), np.roll(np.arange(60), 1)[:, None])
    assert many.plot_confusion_matrix(max_classes=10).axes[0].images[0].get_array().shape == (10, 10)


def test_plot_without_matplotlib_says_how_to_get_it(results, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        results.plot_confusion_matrix()
