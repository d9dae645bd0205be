"""Downloads of released checkpoints, against a local HTTP server on 127.0.0.1 (no internet)."""

import ast
import dataclasses
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

from keras_clip.checkpoints import download
from keras_clip.errors import ChecksumError, DownloadError
from keras_clip.models import presets
from keras_clip.image.settings import Preprocessing
from tests.helpers import checkpoint_files
from tests.helpers.openai_reference import clip_package_dir

PAYLOAD = np.random.default_rng(0).bytes(3 * download.CHUNK_BYTES + 12345)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _Server:
    """Serves `files[url_path] = bytes`; `mode` "ok", "corrupt" (one byte changed) or "cut" (closes mid-body)."""

    def __init__(self):
        self.files = {}
        self.mode = "ok"
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                if server.mode == "corrupt":
                    data = data[:-1] + bytes([data[-1] ^ 1])
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if server.mode == "cut":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/clip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, sha256, file_name, data):
        self.files[f"/clip/{sha256}/{file_name}"] = data

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    server = _Server()
    monkeypatch.setenv("KERAS_CLIP_BASE_URL", server.base_url)
    publish_preset(monkeypatch, "tiny.pt", PAYLOAD_SHA256)
    server.publish(PAYLOAD_SHA256, "tiny.pt", PAYLOAD)
    yield server
    server.close()


def publish_preset(monkeypatch, file_name, sha256, architecture=checkpoint_files.SMALL_VIT):
    """A released model "Test/tiny" whose checkpoint is at OpenAI's URL layout."""
    url = f"{presets.OPENAI_BASE_URL}/{sha256}/{file_name}"
    preset = dataclasses.replace(presets.PRESETS["ViT-B/32"], name="Test/tiny", architecture=architecture,
                                 checkpoint=presets.CheckpointFile(file_name, url, sha256),
                                 preprocessing=Preprocessing(architecture["image_resolution"]))  # fmt: skip
    monkeypatch.setitem(presets.PRESETS, "Test/tiny", preset)


def _files(folder):
    return sorted(name for _, _, names in os.walk(folder) for name in names)


def test_table_matches_openai_clip_py():
    # The facts come from OpenAI's clip/clip.py (_MODELS); it imports torchvision, so read it as text.
    with open(os.path.join(clip_package_dir(), "clip.py")) as file:
        tree = ast.parse(file.read())
    models = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_MODELS"
    )
    assert presets.available_models() == list(models)
    for name, url in models.items():
        checkpoint = presets.get_preset(name).checkpoint
        assert download.checkpoint_url(name) == checkpoint.url == url
        assert checkpoint.sha256 == url.split("/")[-2] and checkpoint.file_name == url.split("/")[-1]


def test_download_shows_progress_and_verifies(server, tmp_path, capfd):
    path = download.download_checkpoint("Test/tiny", cache_dir=str(tmp_path))
    assert path == str(tmp_path / "tiny.pt")
    assert open(path, "rb").read() == PAYLOAD
    progress = capfd.readouterr().err
    assert "tiny.pt" in progress and "100%" in progress
    assert _files(tmp_path) == ["tiny.pt"]
    assert len(server.requests) == 1


def test_second_call_makes_no_request(server, tmp_path):
    download.download_checkpoint("Test/tiny", cache_dir=str(tmp_path), verbose=False)
    server.close()  # nothing listens any more
    assert download.download_checkpoint("Test/tiny", cache_dir=str(tmp_path)) == str(tmp_path / "tiny.pt")
    assert len(server.requests) == 1


def test_hash_mismatch_raises_and_keeps_nothing(server, tmp_path):
    server.mode = "corrupt"
    with pytest.raises(ChecksumError, match=f"not the published {PAYLOAD_SHA256}"):
        download.download_checkpoint("Test/tiny", cache_dir=str(tmp_path), verbose=False)
    assert _files(tmp_path) == []


def test_interrupted_transfer_leaves_nothing(server, tmp_path):
    server.mode = "cut"
    with pytest.raises(DownloadError, match=r"interrupted after \d+ of \d+ bytes"):
        download.download_checkpoint("Test/tiny", cache_dir=str(tmp_path), verbose=False)
    assert _files(tmp_path) == []


def test_missing_file_on_server_is_an_error(server, tmp_path):
    server.files.clear()
    with pytest.raises(DownloadError, match="404"):
        download.download_checkpoint("Test/tiny", cache_dir=str(tmp_path), verbose=False)
    assert _files(tmp_path) == []


def test_cached_file_with_wrong_hash_is_fetched_again(server, tmp_path):
    (tmp_path / "tiny.pt").write_bytes(b"stale")
    with pytest.warns(UserWarning, match="SHA256 is not the published one"):
        path = download.download_checkpoint("Test/tiny", cache_dir=str(tmp_path), verbose=False)
    assert open(path, "rb").read() == PAYLOAD
    assert len(server.requests) == 1


def test_cache_folder_choice(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_CLIP_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.cache_root() == str(tmp_path / "home" / ".cache" / "keras_clip")
    monkeypatch.setenv("KERAS_CLIP_CACHE", str(tmp_path / "env"))
    assert download.cache_root() == str(tmp_path / "env")
    assert download.cache_root(str(tmp_path / "arg")) == str(tmp_path / "arg")


def test_unknown_name_lists_the_models():
    with pytest.raises(ValueError, match="OpenAI.s: RN50, RN101.*list_pretrained"):
        download.download_checkpoint("ViT-H/14")


def test_load_by_name_downloads_once_then_needs_no_network(server, monkeypatch, tmp_path):
    from keras_clip.checkpoints.load import load_model

    config = checkpoint_files.SMALL_VIT
    _, state_dict = checkpoint_files.reference_state_dict(config, seed=6)
    archive = checkpoint_files.write_torchscript(str(tmp_path / "tiny.pt"), config, state_dict)
    data = open(archive, "rb").read()
    sha256 = hashlib.sha256(data).hexdigest()
    publish_preset(monkeypatch, "tiny.pt", sha256)
    server.publish(sha256, "tiny.pt", data)
    cache = tmp_path / "cache"

    first = load_model("Test/tiny", cache_dir=str(cache), verbose=False)
    assert len(server.requests) == 1
    assert _files(cache) == [f"{sha256}.safetensors", "tiny.pt"]
    server.close()
    second = load_model("Test/tiny", cache_dir=str(cache))
    os.remove(cache / "tiny.pt")  # the converted weights alone are enough
    third = load_model("Test/tiny", cache_dir=str(cache))
    assert len(server.requests) == 1
    assert first.name == "clip_test_tiny"
    for model in (second, third):
        for expected, actual in zip(first.weights, model.weights):
            np.testing.assert_array_equal(actual.numpy(), expected.numpy())
