"""The keras-clip command's dispatch."""

import keras_clip
from keras_clip.cli import main


def test_models_lists_openais_names(capsys):
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split("\n")[:-1] == keras_clip.available_models()
