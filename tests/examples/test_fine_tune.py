"""examples/fine_tune.py on a tiny checkpoint and a caption CSV of generated images (no network)."""

import os

import numpy as np
import pytest

from keras_clip.checkpoints.load import load
from tests.helpers.caption_files import captioned_photos, write_caption_dataset
from tests.helpers.example_scripts import load_example
from tests.helpers.tiny_models import tiny_clip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fine_tune")
    checkpoint = str(root / "tiny.keras")
    tiny_clip(seed=7).save(checkpoint)
    train = write_caption_dataset(str(root / "train"), "csv", captioned_photos(12, seed=1, captions_per_photo=2))
    validation = write_caption_dataset(str(root / "validation"), "csv", captioned_photos(5, seed=2))
    return root, checkpoint, train, validation


def weights_by_path(model):
    return {variable.path: variable.numpy() for variable in model.weights}


def test_fine_tune_saves_a_changed_model(files):
    root, checkpoint, train, validation = files
    output = str(root / "out" / "tuned.keras")
    os.makedirs(os.path.dirname(output))
    history = load_example("fine_tune").main([
        checkpoint, train, "--output", output, "--validation", validation, "--epochs", "2",
        "--batch-size", "4", "--learning-rate", "1e-3", "--backup-dir", str(root / "backup"),
    ])  # fmt: skip
    losses = history.history["loss"]
    assert len(losses) == 2 and np.isfinite(losses).all()
    assert len(history.history["val_image_to_text_recall_at_5"]) == 2
    assert history.history["skipped_images"] == [0, 0]
    assert os.listdir(os.path.dirname(output)) == ["tuned.keras"]  # no partial file left
    assert not os.path.exists(root / "backup")  # BackupAndRestore removes its backup after a finished run

    start, _ = load(checkpoint)
    tuned, preprocess = load(output)
    assert preprocess.image_resolution == tuned.image_resolution == 32
    before, after = weights_by_path(start), weights_by_path(tuned)
    assert before.keys() == after.keys()
    changed = [path for path in before if not np.array_equal(before[path], after[path])]
    assert any(path.startswith("visual/") for path in changed) and any(path.startswith("text/") for path in changed)


@pytest.mark.full_size  # tower locking itself: tests/training/test_training_options.py, test_accumulation.py
def test_locked_image_tower_stays_as_loaded(files):
    root, checkpoint, train, _ = files
    output = str(root / "locked.keras")
    load_example("fine_tune").main([checkpoint, train, "--output", output, "--lock-image-tower", "--batch-size", "4",
                                    "--learning-rate", "1e-3"])  # fmt: skip
    before, after = weights_by_path(load(checkpoint)[0]), weights_by_path(load(output)[0])
    visual = [path for path in before if path.startswith("visual/")]
    text = [path for path in before if path.startswith("text/")]
    assert visual and all(np.array_equal(before[path], after[path]) for path in visual)
    assert any(not np.array_equal(before[path], after[path]) for path in text)


# full_size: resuming exactly is tests/training/test_resume.py's check; this one runs the example's own flags.
@pytest.mark.full_size
def test_run_again_after_an_interruption_resumes_and_ends_as_one_run(files, monkeypatch):
    root, checkpoint, train, _ = files
    options = ["--epochs", "2", "--batch-size", "4", "--learning-rate", "1e-3", "--seed", "3"]
    example = load_example("fine_tune")
    example.main([checkpoint, train, "--output", str(root / "whole.keras"), *options])

    replay = example.ReplayDataEpochs.on_epoch_begin

    def preempted(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("preempted before epoch 2")
        replay(self, epoch, logs)

    resumed_path = str(root / "resumed.keras")
    backup = ["--backup-dir", str(root / "resume_backup")]
    with monkeypatch.context() as patch:
        patch.setattr(example.ReplayDataEpochs, "on_epoch_begin", preempted)
        with pytest.raises(KeyboardInterrupt):
            example.main([checkpoint, train, "--output", resumed_path, *options, *backup])
    assert not os.path.exists(resumed_path)
    history = load_example("fine_tune").main([checkpoint, train, "--output", resumed_path, *options, *backup])
    assert len(history.history["loss"]) == 1  # only epoch 2 ran: the model, optimizer and data pass were restored
    whole, resumed = weights_by_path(load(str(root / "whole.keras"))[0]), weights_by_path(load(resumed_path)[0])
    for path, value in whole.items():
        np.testing.assert_allclose(resumed[path], value, atol=1e-6, rtol=0, err_msg=path)


def test_bad_arguments(files, capsys):
    _, checkpoint, train, _ = files
    example = load_example("fine_tune")
    with pytest.raises(SystemExit):
        example.main([checkpoint, train, "--output", "model.h5"])
    assert "--output must end with .keras" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="has 12 images .*fewer than one batch of 32"):
        example.main([checkpoint, train, "--output", "never.keras"])
