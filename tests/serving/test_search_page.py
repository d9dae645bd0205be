"""The search page: its JSON API against the index searched directly, and the page itself in headless chromium."""

import os

import numpy as np
import pytest

from keras_clip.serving.index import EmbeddingIndex
from keras_clip.serving.search_page import QueryEmbedder, create_app
from tests.helpers.evaluation_data import CORRUPT_JPEG
from tests.helpers.search_server import (
    REQUIRE_BROWSER,
    browser_missing,
    headless_chromium,
    running_server,
    screenshot_path,
    search_site,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(index, model, app) over 5 real photographs."""
    index, model = search_site(tmp_path_factory.mktemp("site"))
    return index, model, create_app(index, model)


def expected_paths(index, vectors, k):
    rows, _ = index.search(vectors, top_k=k)
    return [index.paths[row] for row in rows[0]]


def test_the_json_api_answers_as_the_index(site):
    from fastapi.testclient import TestClient

    index, model, app = site
    client = TestClient(app)
    answer = client.get("/search", params={"q": "a cat on a sofa", "k": 3}).json()
    embedder = QueryEmbedder(model)
    assert answer["query"] == "a cat on a sofa"
    assert [item["path"] for item in answer["results"]] == expected_paths(index, embedder.text("a cat on a sofa"), 3)
    assert [item["image"] for item in answer["results"]] == [f"/image/{item['row']}" for item in answer["results"]]

    similar = client.get("/similar", params={"row": 2, "k": 5}).json()["results"]
    assert similar[0]["row"] == 2 and abs(similar[0]["score"] - 1.0) < 1e-5 and len(similar) == 5

    with open(index.paths[3], "rb") as file:
        photo = file.read()
    uploaded = client.post("/search/image", files={"image": ("mine.jpg", photo)}, params={"k": 2}).json()
    assert uploaded["query"] == "images like mine.jpg" and uploaded["results"][0]["row"] == 3
    np.testing.assert_allclose(uploaded["results"][0]["score"], 1.0, atol=1e-5)

    assert client.get("/image/3").content == photo
    assert client.get("/").text.count("More like this") == 1 and "http" not in client.get("/").text


def test_bad_requests_are_answered_with_what_is_wrong(site):
    from fastapi.testclient import TestClient

    client = TestClient(site[2])
    broken = client.post("/search/image", files={"image": ("broken.jpg", CORRUPT_JPEG)})
    assert broken.status_code == 400 and "Could not decode the uploaded image" in broken.json()["detail"]
    assert client.get("/image/99").status_code == 404
    assert client.get("/image/-1").status_code == 404
    assert client.get("/similar", params={"row": 5}).status_code == 404
    assert client.get("/search", params={"q": "a dog", "k": 1000}).status_code == 422
    assert client.get("/search", params={"q": ""}).status_code == 422


def test_the_page_in_a_browser(site, tmp_path):
    """Type a query, see the index's top result first; "More like this"; an uploaded photograph finds itself."""
    reason = browser_missing()
    if reason:
        if os.environ.get(REQUIRE_BROWSER):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    index, model, app = site
    embedder = QueryEmbedder(model)

    def shown_paths(driver, first=None):
        """The result paths once the page shows results (whose first is `first`, when given)."""
        def ready(driver):
            paths = [element.text for element in driver.find_elements(By.CSS_SELECTOR, ".result .path")]
            return paths if paths and (first is None or paths[0] == first) else False
        # (A result may be replaced while it is read: the page redraws the grid on each answer.)
        return WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(ready)

    with running_server(app) as url, headless_chromium() as driver:
        driver.get(url)
        driver.find_element(By.ID, "query").send_keys("a cat on a sofa")
        driver.find_element(By.ID, "search").click()
        expected = expected_paths(index, embedder.text("a cat on a sofa"), len(index.paths))
        assert shown_paths(driver, expected[0]) == expected
        assert driver.find_element(By.ID, "status").text == f"{len(expected)} results for a cat on a sofa"
        loaded = driver.execute_script("return [...document.images].map(image => image.naturalWidth > 0)")
        assert loaded == [True] * len(expected)  # every thumbnail came from /image/{row}

        driver.find_elements(By.CSS_SELECTOR, ".result .similar")[2].click()
        assert shown_paths(driver, expected[2])[0] == expected[2]

        driver.find_element(By.ID, "upload").send_keys(index.paths[4])
        assert shown_paths(driver, index.paths[4])[0] == index.paths[4]
        if screenshot_path():
            driver.find_element(By.ID, "query").clear()
            driver.find_element(By.ID, "query").send_keys("a cat on a sofa")
            driver.find_element(By.ID, "search").click()
            shown_paths(driver, expected[0])
            driver.save_screenshot(screenshot_path())


def test_a_siglip_page_needs_its_tokenizer():
    import keras_clip
    from tests.helpers.tiny_models import TINY_SIGLIP

    siglip = keras_clip.CLIP(**TINY_SIGLIP)
    index = EmbeddingIndex("exact", np.eye(siglip.embed_dim, dtype=np.float32), paths=["a.jpg"] * siglip.embed_dim)
    with pytest.raises(ValueError, match=r"need its tokenizer: create_app\(index, model, tokenizer="):
        create_app(index, siglip)
