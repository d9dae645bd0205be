import pytest

from tests.helpers.cli import saved_tiny_clip


@pytest.fixture(scope="package")
def checkpoint(tmp_path_factory):
    """A tiny CLIP saved as .keras: (path, model)."""
    return saved_tiny_clip(tmp_path_factory.mktemp("models"))
