"""Running the `keras-clip` command in-process and reading what it printed."""

import numpy as np

from keras_clip.checkpoints.keras_files import save_model_file
from keras_clip.cli import main
from keras_clip.serving.search import write_metadata
from tests.helpers.tiny_models import tiny_clip


def saved_tiny_clip(folder, seed=4):
    """A tiny CLIP saved as `folder/tiny.keras`: (path, model)."""
    model = tiny_clip(seed=seed)
    path = str(folder / "tiny.keras")
    save_model_file(model, path)
    return path, model


def run(capsys, *arguments):
    """`keras-clip ARGUMENTS` -> (exit status, stdout, stderr); clears what earlier calls printed first."""
    capsys.readouterr()
    status = main([str(argument) for argument in arguments])
    out, err = capsys.readouterr()
    return status, out, err


def failure(capsys, *arguments):
    """`keras-clip ARGUMENTS` expected to fail: its status and its one-line message (checked: one line,
    no traceback, prefixed with the subcommand)."""
    status, _, err = run(capsys, *arguments)
    lines = err.strip().splitlines()
    assert status in (1, 2), (status, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"keras-clip {arguments[0]}: error: "), lines[0]
    return status, lines[0]


def embeddings_file(path, rows, model):
    """An embeddings file as `keras-clip embed` writes it (`path`.npy and its .json), without embedding."""
    np.save(path, rows)
    paths = [f"{path.stem}_{i}.jpg" for i in range(len(rows))]
    write_metadata(path, paths, model)
    return paths
