"""The `>>>` examples in the docstrings of keras_clip's public API run, and print what they show.

Each docstring runs with `doctest` (ELLIPSIS, NORMALIZE_WHITESPACE) in a fresh working folder holding the
files the examples open (real photographs, caption files, a tar shard, an image folder, a prepared TFDS
dataset; see `tests/helpers/docstring_examples.py`) and with the variables they use (`model` is a tiny
CLIP). What is substituted: the table entry of "ViT-B/32" (models/presets.py) gets a tiny CLIP's architecture
(224 pixels), and `keras_clip.load("ViT-B/32")` finds, in the cache `KERAS_CLIP_CACHE` points at, that tiny
CLIP's weights stored under ViT-B/32's checkpoint SHA256, as an earlier load would have cached the converted
release; it returns that tiny CLIP, and any attempt to download fails the test. Output lines that
depend on trained weights are comments (`# e.g. ...`) or elided with `...`.
"""

import doctest
import shutil

import keras
import pytest

from keras_clip.checkpoints import download
from keras_clip.models import presets
from tests.helpers.docstring_examples import (
    OPTION_FLAGS,
    ExampleOutputChecker,
    docstring_tests,
    example_namespace,
    tiny_release,
    write_example_files,
    write_released_model_cache,
)

DOCSTRINGS = docstring_tests()
MIN_RUN_FRACTION = 0.9


@pytest.fixture(scope="module")
def prepared_folders(tmp_path_factory):
    """(files the examples open, written once and copied for each test; cache holding the tiny "ViT-B/32")."""
    files = tmp_path_factory.mktemp("example_files")
    write_example_files(files)
    cache = tmp_path_factory.mktemp("keras_clip_cache")
    write_released_model_cache(cache)
    return files, cache


def _refuse_download(name, *args, **kwargs):
    raise AssertionError(f"A docstring example tried to download {name!r}")


@pytest.fixture
def example_folder(prepared_folders, tmp_path, monkeypatch):
    """A working folder with the example files, the released-model cache set up, downloads refused,
    and Keras' progress bars sent to the log instead of the examples' output."""
    files, cache = prepared_folders
    working_folder = tmp_path / "work"
    shutil.copytree(files, working_folder)
    monkeypatch.chdir(working_folder)
    monkeypatch.setenv("KERAS_CLIP_CACHE", str(cache))
    monkeypatch.setattr(download, "download_checkpoint", _refuse_download)
    monkeypatch.setitem(presets.PRESETS, "ViT-B/32", tiny_release())
    interactive_logging = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    yield working_folder
    if interactive_logging:
        keras.config.enable_interactive_logging()


# Keras warns after the first epoch of a dataset of unknown length (tar shards without steps_per_epoch).
@pytest.mark.filterwarnings("ignore:Your input ran out of data")
@pytest.mark.parametrize("docstring", DOCSTRINGS, ids=[docstring.name for docstring in DOCSTRINGS])
def test_docstring_examples(docstring, example_folder):
    test = docstring.test
    test.globs = example_namespace(docstring)
    runner = doctest.DocTestRunner(checker=ExampleOutputChecker(), optionflags=OPTION_FLAGS)
    report = []
    try:
        results = runner.run(test, out=report.append, clear_globs=True)
    finally:
        test.globs = {}
    assert results.failed == 0, "".join(report)
    assert results.attempted == len(test.examples) - len(docstring.skipped)


def test_at_least_90_percent_of_the_examples_run():
    examples = sum(len(docstring.test.examples) for docstring in DOCSTRINGS)
    skipped = [example for docstring in DOCSTRINGS for example in docstring.skipped]
    assert examples - len(skipped) >= MIN_RUN_FRACTION * examples, f"{len(skipped)} of {examples} examples skipped"
    # Every skip says why, in a comment before its directive.
    assert all("#" in example.source.split("# doctest:")[0] for example in skipped)


def test_public_docstrings_are_collected_once():
    names = {docstring.name for docstring in DOCSTRINGS}
    assert {"keras_clip.load", "keras_clip.CLIP", "keras_clip.data.caption_dataset", "keras_clip.layers.Transformer",
            "keras_clip.evaluation.evaluate_tfds", "keras_clip.training.optimizer"} <= names  # fmt: skip
    assert len({(docstring.test.filename, docstring.test.lineno) for docstring in DOCSTRINGS}) == len(DOCSTRINGS)
