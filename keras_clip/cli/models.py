"""List OpenAI's model names that `--model` accepts."""

import keras_clip


def add_arguments(parser):
    pass


def run(args):
    for name in keras_clip.available_models():
        print(name)
