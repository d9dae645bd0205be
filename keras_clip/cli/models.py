"""List the released model names that `--model` accepts.

Examples:
  keras-clip models
"""

from keras_clip.models.presets import available_models


def add_arguments(parser):
    pass


def run(args):
    for name in available_models():
        print(name)
