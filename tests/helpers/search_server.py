"""A search page served on 127.0.0.1 for the tests: real photographs, a tiny CLIP, an exact index.

`search_site(folder)` writes the photographs and builds the index; `running_server(app)` serves an app with
uvicorn in a thread on a free port; `headless_chromium()` is Debian's chromium driven by its chromedriver
(both from apt: `apt-get install chromium chromium-driver`), never a downloaded browser.
"""

import contextlib
import os
import shutil
import socket
import threading
import time

from keras_clip.serving.embedding import embed_images
from keras_clip.serving.index import build_index
from tests.helpers.images import write_photos
from tests.helpers.tiny_models import tiny_clip

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")
# .ci/run sets this: there a missing browser fails the browser test instead of skipping it.
REQUIRE_BROWSER = "KERAS_CLIP_REQUIRE_BROWSER"


def search_site(folder, photos=5):
    """(index of `photos` real photographs under folder/photos, the tiny CLIP that embedded them)."""
    model = tiny_clip(seed=8)
    paths = write_photos(folder / "photos", photos)
    embeddings = embed_images(model, paths, verbose=False)
    return build_index(embeddings, paths=paths, model="tiny"), model


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(app):
    """Serves `app` on 127.0.0.1 in a thread; yields its base URL; stops it after."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the search page's server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def browser_missing():
    """Why the browser test cannot run here, or None."""
    missing = [path for path in CHROMIUM if not shutil.which(path)]
    return f"{', '.join(missing)} missing (apt-get install chromium chromium-driver)" if missing else None


@contextlib.contextmanager
def headless_chromium():
    """A selenium WebDriver on headless chromium (1280 x 900), quit after."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900"):  # fmt: skip
        options.add_argument(argument)
    # The driver's path is given: selenium then never looks for (or downloads) a driver itself.
    driver = webdriver.Chrome(options=options, service=Service(CHROMIUM[1]))
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_path():
    """Where the browser test saves its screenshot of the page, if KERAS_CLIP_SCREENSHOT names a file."""
    return os.environ.get("KERAS_CLIP_SCREENSHOT")
