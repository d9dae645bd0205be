"""Fixtures of the checkpoint tests."""

import pytest

from tests.helpers.fake_hub import FakeHub


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A local server answering as the Hugging Face Hub (HF_ENDPOINT), with empty caches."""
    hub = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "huggingface"))
    monkeypatch.setenv("KERAS_CLIP_CACHE", str(tmp_path / "keras_clip"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield hub
    hub.close()
