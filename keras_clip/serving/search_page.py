"""A search page and JSON API over an index: text queries, "more like this", and an image as the query.

    GET  /                      the page (one HTML file, no outside assets: it works offline)
    GET  /search?q=...&k=...    {"query", "results": [{"row", "path", "score", "image"}, ...]}
    GET  /similar?row=...&k=... the rows most like a row of the index (itself first)
    POST /search/image?k=...    the rows most like an uploaded image (multipart field "image")
    GET  /image/{row}           the file of a row of the index (only those: no other path is served)

FastAPI (with uvicorn to serve it), a well-kept framework, in the optional extra
`pip install "keras-clip[serve]"`. The model and the index are loaded once, by whoever builds the app.
"""

import html
import os

import numpy as np

from keras_clip.errors import CorruptImageError

PAGE = os.path.join(os.path.dirname(__file__), "assets", "search_page.html")
MAX_TOP_K = 200
MAX_UPLOAD_BYTES = 32 << 20


def _fastapi():
    try:
        import fastapi
        import fastapi.responses
    except ImportError:
        raise ImportError('The search page needs FastAPI: pip install "keras-clip[serve]"') from None
    return fastapi


class QueryEmbedder:
    """Embeds one query at a time without a tf.data pipeline (whose start costs more than the query).

    Args:
        model: a `keras_clip.CLIP`.
        tokenizer: the model's tokenizer (`keras_clip.get_tokenizer(name)` for a SigLIP); None: CLIP's.
    """

    def __init__(self, model, tokenizer=None):
        import tensorflow as tf

        from keras_clip.serving.embedding import encoded_image_embedder
        from keras_clip.text.tokenizer import text_tokenizer

        self.model = model
        self.tokenizer = text_tokenizer(model, tokenizer, "queries", "create_app(index, model, ")
        self._image_embedder = encoded_image_embedder(model)
        self._tf = tf

    def text(self, query):
        tokens = self.tokenizer(self._tf.constant([query]))
        return np.asarray(self.model.encode_text(tokens), np.float32)

    def image(self, data):
        """An uploaded image's embedding; CorruptImageError if it does not decode."""
        from keras_clip.serving.embedding import embed_encoded_batch

        encoded = self._tf.constant([data])
        features, _ = embed_encoded_batch(self._image_embedder, [0], ["the uploaded image"], encoded,
                                          skip_errors=False, max_pixels=self.model.preprocessing.max_pixels)
        return np.asarray(features, np.float32)


def create_app(index, model, tokenizer=None, title="keras-clip search"):
    """The search page's FastAPI app over `index` (an `EmbeddingIndex` with paths) and `model`.

    Args:
        index: the `EmbeddingIndex` searched; its `paths` are what results show and `/image/{row}` serves.
        model: the `keras_clip.CLIP` that made the index's embeddings (queries are embedded with it).
        tokenizer: the model's tokenizer, for a SigLIP; None: CLIP's.
        title: the page's title.

    Example:
    >>> app = create_app(keras_clip.load_index("photos.index"), model)
    >>> # uvicorn.run(app, port=8000), or `keras-clip serve photos.index`
    """
    fastapi = _fastapi()
    from fastapi.responses import FileResponse, HTMLResponse

    if index.paths is None:
        raise ValueError("The search page shows each result's file: build the index with paths")
    if index.dimension != model.embed_dim:
        raise ValueError(f"The model embeds in {model.embed_dim} dimensions but the index holds {index.dimension}")
    embedder = QueryEmbedder(model, tokenizer)
    with open(PAGE, encoding="utf-8") as file:
        page = file.read().replace("TITLE", html.escape(title))
    app = fastapi.FastAPI(title=title)

    def top_k():
        return fastapi.Query(10, ge=1, le=MAX_TOP_K, description="results per query")

    def answer(query, vectors, k):
        rows, scores = index.search(vectors, top_k=k)
        results = [{"row": int(row), "path": index.paths[row], "score": float(score), "image": f"/image/{int(row)}"}
                   for row, score in zip(rows[0], scores[0]) if row >= 0]  # fmt: skip
        return {"query": query, "results": results}

    @app.get("/", response_class=HTMLResponse)
    def search_page():
        return page

    @app.get("/search")
    def search_text(q: str = fastapi.Query(..., min_length=1, max_length=1000), k: int = top_k()):
        return answer(q, embedder.text(q), k)

    @app.get("/similar")
    def search_similar(row: int, k: int = top_k()):
        if not 0 <= row < index.size:
            raise fastapi.HTTPException(404, f"No row {row} in the index (it has {index.size})")
        return answer(f"images like {index.paths[row]}", index.vector(row)[None], k)

    @app.post("/search/image")
    async def search_image(image: fastapi.UploadFile, k: int = top_k()):
        data = await image.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise fastapi.HTTPException(413, f"The image is larger than {MAX_UPLOAD_BYTES >> 20} MB")
        try:
            vector = embedder.image(data)
        except CorruptImageError as error:
            raise fastapi.HTTPException(400, str(error)) from None
        return answer(f"images like {image.filename or 'the uploaded image'}", vector, k)

    @app.get("/image/{row}")
    def image_file(row: int):
        if not 0 <= row < index.size or not os.path.isfile(index.paths[row]):
            raise fastapi.HTTPException(404, f"No image file for row {row}")
        return FileResponse(index.paths[row])

    return app
