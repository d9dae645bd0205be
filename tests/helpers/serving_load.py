"""A load test of an exported SavedModel: threads sending a mix of good, corrupt, oversize and empty requests.

`load_test_job` is a background job (tests/helpers/background.py) whose process exports a model with a
`max_pixels` baked in, computes the eager model's embeddings of the good images, loads the SavedModel
with `tf.saved_model.load` and answers every request from `threads` threads at once, checking each
answer; it reports counts, failures, time and its peak memory growth as JSON, and ends itself past a
memory cap (tests/helpers/memory.py).
"""

import json
import random
import threading
import time

GOOD, CORRUPT, OVERSIZE, EMPTY = "good", "corrupt", "oversize", "empty"
TOLERANCE = 1e-5  # served embeddings vs the eager model's


def good_images(max_pixels, large=False):
    """Encoded images of 5 formats, one exactly `max_pixels` (a multiple of 200) large."""
    from tests.helpers import image_bombs, images

    photos = images.photographs()
    good = [
        images.encode(photos["chelsea"][:75, :100], "jpeg"),
        images.encode(photos["coffee"][:60, :45], "png"),
        images.encode(photos["astronaut"][:50, :50], "gif"),
        images.encode(photos["rocket"][:65, :35], "webp"),
        images.encode(photos["china"][:40, :80], "bmp"),
        images.encode(photos["flower"][:45, :60], "jpeg_progressive"),
        image_bombs.png_bomb(max_pixels // 200, 200),  # exactly max_pixels: decoded
    ]
    return good + [images.large_jpeg(1200, 800)] if large else good


def bad_images(max_pixels):
    """{kind: [(bytes, what the error says after "Could not decode the image at index i: ")]}."""
    from tests.helpers import image_bombs, images

    jpeg = images.encode(images.photographs()["chelsea"][:100, :150], "jpeg")
    png = bytearray(images.encode(images.photographs()["coffee"][:100, :100], "png"))
    png[len(png) // 2] ^= 0xFF
    gif = images.encode(images.photographs()["coffee"][:100, :100], "gif")
    corrupt = [
        (jpeg[: len(jpeg) // 2], f"its {len(jpeg) // 2} bytes are not a valid JPEG file (corrupt or truncated data)"),
        (bytes(png), f"its {len(png)} bytes are not a valid PNG file"),
        (jpeg[:300], "its JPEG header is corrupt or truncated"),
        (gif[: len(gif) // 2], "its GIF data ends before its first frame does"),
        (b"<html>404</html>", "its 16 bytes are not a JPEG, PNG, GIF, BMP or WebP file"),
        (b"", "its 0 bytes are not a JPEG, PNG, GIF, BMP or WebP file"),
    ]
    limit = f"pixels exceed max_pixels ({max_pixels})"
    oversize = [
        (image_bombs.png_bomb(20000, 20000), f"its 20000 x 20000 {limit}"),
        (image_bombs.png_bomb(max_pixels // 200 + 1, 200), f"its {max_pixels // 200 + 1} x 200 {limit}"),
        (image_bombs.jpeg_with_size(jpeg, 30000, 20000), f"its 30000 x 20000 {limit}"),
        (image_bombs.gif_with_frame_size(gif, 65535, 65535), f"its 65535 x 65535 {limit}"),
    ]
    return {CORRUPT: corrupt, OVERSIZE: oversize}


def plan_requests(good, bad, threads, requests_per_thread, max_batch=4, seed=0):
    """Each thread's requests, `(kind, pool indices, position of the bad image or None)`: a quarter each
    good, corrupt, oversize and empty, in a random order.

    Args:
        good: pool indices of good images; bad: {kind: pool indices} for CORRUPT and OVERSIZE.
    """
    rng = random.Random(seed)
    plans = []
    for _ in range(threads):
        requests = []
        for number in range(requests_per_thread):
            kind = (GOOD, CORRUPT, OVERSIZE, EMPTY)[number % 4]
            if kind == EMPTY:
                requests.append((kind, [], None))
                continue
            indices = [rng.choice(good) for _ in range(rng.randint(1, max_batch))]
            position = None
            if kind != GOOD:
                position = rng.randrange(len(indices) + 1)
                indices.insert(position, rng.choice(bad[kind]))
            requests.append((kind, indices, position))
        rng.shuffle(requests)
        plans.append(requests)
    return plans


class _Server:
    """The export's `encode_image` signature and what each pool image's answer must be."""

    def __init__(self, export_dir, pool, expected, phrases, embed_dim):
        import tensorflow as tf

        self.tf = tf
        self.encode_image = tf.saved_model.load(export_dir).signatures["encode_image"]
        self.pool, self.expected, self.phrases, self.embed_dim = pool, expected, phrases, embed_dim

    def check(self, kind, indices, bad):
        """None if the answer to the request is right, else what is wrong."""
        import numpy as np

        tf = self.tf
        batch = tf.constant([self.pool[i] for i in indices], tf.string) if indices else tf.zeros([0], tf.string)
        try:
            embeddings = self.encode_image(image_bytes=batch)["embeddings"].numpy()
        except tf.errors.InvalidArgumentError as error:
            if kind in (CORRUPT, OVERSIZE):
                phrase = f"Could not decode the image at index {bad}: " + self.phrases[indices[bad]]
                return None if phrase in error.message else f"{kind}: {phrase!r} not in {error.message[-500:]!r}"
            return f"{kind}: unexpected error {error.message[-500:]!r}"
        if kind in (CORRUPT, OVERSIZE):
            return f"{kind}: answered instead of failing"
        want = np.stack([self.expected[i] for i in indices]) if indices else np.zeros((0, self.embed_dim))
        if embeddings.shape != want.shape or np.abs(embeddings - want).max(initial=0) > TOLERANCE:
            return f"{kind}: embeddings differ (shape {embeddings.shape}, {want.shape})"
        return None


def serve_under_load(folder, model_name, threads, requests_per_thread, max_pixels, large=False):
    """Exports the model (`"tiny"` or a released architecture, random weights) with `max_pixels` baked in to
    `folder`, then serves the planned requests from `threads` threads; prints the JSON report."""
    import numpy as np
    import tensorflow as tf

    from keras_clip.image.preprocessing import ImagePreprocessor
    from keras_clip.image.settings import Preprocessing
    from keras_clip.models.clip import create_model
    from keras_clip.serving.export import export_saved_model
    from tests.helpers.memory import memory_mb, reset_peak
    from tests.helpers.tiny_models import tiny_clip

    model = tiny_clip(seed=0) if model_name == "tiny" else create_model(model_name)
    model.preprocessing = Preprocessing(model.image_resolution, max_pixels=max_pixels)
    export_dir = export_saved_model(model, f"{folder}/model/1")
    good = good_images(max_pixels, large)
    features = np.asarray(model.encode_image(ImagePreprocessor.from_settings(model.preprocessing)(tf.constant(good))))
    expected = dict(enumerate(features / np.linalg.norm(features, axis=-1, keepdims=True)))
    pool, phrases, bad = list(good), {}, {}
    for kind, items in bad_images(max_pixels).items():
        bad[kind] = list(range(len(pool), len(pool) + len(items)))
        for data, phrase in items:
            phrases[len(pool)] = phrase
            pool.append(data)
    server = _Server(export_dir, pool, expected, phrases, model.embed_dim)
    server.check(GOOD, [0, 1], None)  # traces and fills the allocator's caches
    report = {"failures": [], "answered": 0, "refused": 0}
    lock = threading.Lock()

    def serve(requests):
        for kind, indices, position in requests:
            failure = server.check(kind, indices, position)
            with lock:
                report["answered" if kind in (GOOD, EMPTY) else "refused"] += 1
                if failure is not None:
                    report["failures"].append(failure)

    workers = [threading.Thread(target=serve, args=(requests,))
               for requests in plan_requests(list(range(len(good))), bad, threads, requests_per_thread)]  # fmt: skip
    report["rss_mb_before"], _ = memory_mb()
    reset_peak()
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    report["seconds"] = time.perf_counter() - start
    report["peak_growth_mb"] = memory_mb()[1] - report["rss_mb_before"]
    report["failures"] = report["failures"][:10] + [f"{len(report['failures'])} failures in all"] * (
        len(report["failures"]) > 10)  # fmt: skip
    print(json.dumps(report), flush=True)


def load_test_job(model_name, threads, requests_per_thread, max_pixels, cap_mb, large=False):
    """`serve_under_load` in a fresh process capped at `cap_mb` (a tests/helpers/memory.py `capped_job`)."""
    from tests.helpers.memory import capped_job

    arguments = f"{model_name!r}, {threads}, {requests_per_thread}, {max_pixels}, large={large}"
    return capped_job("from tests.helpers.serving_load import serve_under_load\n"
                      f"serve_under_load('{{folder}}', {arguments})\n", cap_mb)  # fmt: skip
