import pytest

from keras_clip.models.zero_shot import ZeroShotClassifier
from tests.helpers.evaluation_data import tiny_photos_builder
from tests.helpers.tiny_models import tiny_clip


@pytest.fixture(scope="package")
def clip_model():
    return tiny_clip(seed=2)


@pytest.fixture(scope="package")
def folder_classifier(clip_model):
    """A classifier for FOLDER_LAYOUT's classes (sorted folder names, underscores as spaces)."""
    classnames = ["astronaut", "cat", "coffee cup", "rocket"]
    return ZeroShotClassifier(clip_model, classnames, templates="simple", verbose=False)


@pytest.fixture(scope="package")
def tfds_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds")
    tiny_photos_builder(directory)
    return str(directory)
