"""`keras-clip classify` and `keras-clip evaluate` on real image files with local checkpoints (no download)."""

import json

import numpy as np
import pytest

from keras_clip.cli import main
from keras_clip.models.zero_shot import ZeroShotClassifier
from keras_clip.text.templates import SIMPLE_TEMPLATES
from tests.helpers import images
from tests.helpers.cli import failure
from tests.helpers.evaluation_data import CORRUPT_JPEG, small_photo, tiny_photos_builder, write_image_folder


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name, fmt, extension in [("chelsea_odd_size", "jpeg", "jpg"), ("coffee_landscape", "png", "png"),
                                 ("rocket_portrait", "webp", "webp")]:  # fmt: skip
        path = folder / f"{name}.{extension}"
        path.write_bytes(images.encode(small_photo(name), fmt))
        paths.append(str(path))
    return paths


def parse_tables(output):
    """Printed tables -> {path: [(class name, percent)]}."""
    tables, current = {}, None
    for line in output.splitlines():
        if not line.startswith("  "):
            current = tables.setdefault(line, [])
        elif not line.strip().startswith("rank"):
            _, label, percent = line.split()
            current.append((label, float(percent.rstrip("%"))))
    return tables


def expected_labels(classifier, paths, top_k):
    resolution = classifier.image_resolution
    batch = np.stack([images.reference_preprocess(open(path, "rb").read(), resolution) for path in paths])
    return classifier.predict_labels(batch, top_k=top_k)


def test_classify_prints_a_table_per_image(checkpoint, photo_files, capsys):
    path, model = checkpoint
    code = main(["classify", *photo_files, "--classnames", "cat,dog,car", "--model", path,
                 "--templates", "simple", "--top-k", "2", "--batch-size", "2"])  # fmt: skip
    assert code == 0
    tables = parse_tables(capsys.readouterr().out)
    assert list(tables) == photo_files
    classifier = ZeroShotClassifier(model, ["cat", "dog", "car"], templates=SIMPLE_TEMPLATES, verbose=False)
    for photo, expected in zip(photo_files, expected_labels(classifier, photo_files, 2)):
        assert [label for label, _ in tables[photo]] == [label for label, _ in expected]
        np.testing.assert_allclose([p for _, p in tables[photo]], [100 * p for _, p in expected], atol=0.02)


def test_classify_with_one_template_and_a_saved_classifier(checkpoint, photo_files, tmp_path, capsys):
    path, model = checkpoint
    assert main(["classify", photo_files[0], "--classnames", "cat, dog", "--model", path,
                 "--templates", "a photo of a {}."]) == 0  # fmt: skip
    table = parse_tables(capsys.readouterr().out)[photo_files[0]]
    classifier = ZeroShotClassifier(model, ["cat", "dog"], templates="a photo of a {}.", verbose=False)
    assert [label for label, _ in table] == [label for label, _ in expected_labels(classifier, photo_files[:1], 5)[0]]

    saved = str(tmp_path / "pets.keras")
    classifier.save(saved)
    assert main(["classify", photo_files[0], "--model", saved]) == 0  # the saved classifier's own classes
    assert parse_tables(capsys.readouterr().out)[photo_files[0]] == table


def test_classify_goes_on_after_a_bad_image(checkpoint, photo_files, tmp_path, capsys):
    path, _ = checkpoint
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(CORRUPT_JPEG)
    assert main(["classify", photo_files[0], str(broken), "--classnames", "cat,dog", "--model", path,
                 "--templates", "simple"]) == 1  # fmt: skip
    captured = capsys.readouterr()
    assert list(parse_tables(captured.out)) == [photo_files[0]]
    assert captured.err.strip().splitlines() == [captured.err.strip()]
    assert f"Could not decode {broken}" in captured.err
    status, message = failure(capsys, "classify", photo_files[0], "--classnames", "cat", "--model", path,
                              "--templates", "a cat")  # fmt: skip
    assert status == 2 and "exactly one '{}'" in message


def test_classify_refuses_images_over_max_pixels(checkpoint, photo_files, capsys):
    path, _ = checkpoint
    assert main(["classify", *photo_files, "--classnames", "cat,dog", "--model", path, "--templates", "simple",
                 "--max-pixels", "1000"]) == 1  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == len(photo_files)
    for line, photo in zip(lines, photo_files):
        assert line.startswith(f"keras-clip classify: error: Could not decode {photo}: its ") and line.endswith(
            " pixels exceed max_pixels (1000), a guard against decompression bombs; pass a larger max_pixels to "
            "decode it"), line  # fmt: skip


def test_evaluate_an_image_folder(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    write_image_folder(tmp_path / "photos", corrupt_files=[("cat", "broken.jpg")])
    arguments = ["evaluate", str(tmp_path / "photos"), "--model", path, "--templates", "simple"]
    assert main(arguments) == 1
    assert "broken.jpg" in capsys.readouterr().err
    assert main(arguments + ["--skip-errors", "--per-class", "--json", str(tmp_path / "results.json")]) == 0
    output = capsys.readouterr().out
    assert output.startswith(f"{tmp_path / 'photos'}: top-1 ")
    assert "skipped (unreadable): " in output and "coffee cup" in output  # the per-class table
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["num_skipped"] == 1 and results["num_examples"] == 9
    assert [row["class"] for row in results["per_class"]] == ["astronaut", "cat", "coffee cup", "rocket"]


def test_evaluate_a_local_tfds_dataset(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    tiny_photos_builder(tmp_path / "tfds")
    capsys.readouterr()  # TFDS' own messages while preparing
    assert main(["evaluate", "tiny_photos", "--split", "test", "--data-dir", str(tmp_path / "tfds"), "--model", path,
                 "--templates", "simple", "--classnames", "cat,cup,rocket"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("tiny_photos test: top-1 ")
    status, message = failure(capsys, "evaluate", "tiny_photos", "--data-dir", tmp_path / "tfds", "--model", path,
                              "--classnames", "cat,cup")  # fmt: skip
    assert status == 2 and "2 class names given, but tiny_photos has 3" in message


def test_evaluate_names_a_missing_dataset(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    status, message = failure(capsys, "evaluate", "no_such_dataset_here", "--data-dir", tmp_path, "--model", path)
    assert status == 1 and "no_such_dataset_here not found" in message
