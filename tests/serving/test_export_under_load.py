"""An exported SavedModel under load: 8 threads x 500 requests mixing good images, corrupt bytes, oversize
images and empty batches, served by one process. Every good answer equals the eager model's, every bad
request fails with an InvalidArgumentError naming its image, and memory stays bounded."""

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.image.preprocessing import ImagePreprocessor
from keras_clip.image.settings import Preprocessing
from keras_clip.models.clip import create_model
from keras_clip.serving.export import export_saved_model
from tests.helpers import image_bombs, images
from tests.helpers.serving_load import CORRUPT, OVERSIZE, plan_requests, run_load
from tests.helpers.tiny_models import tiny_clip

def _good_images(max_pixels, large=False):
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


def _bad_images(max_pixels):
    """{kind: [(bytes, what the error says after "Could not decode the image at index i: ")]}."""
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


def _load_test(model, tmp_path, threads, requests_per_thread, cap_mb, max_pixels, large=False):
    """Exports `model` with `max_pixels` (a multiple of 200) baked in, and serves the requests in a child."""
    model.preprocessing = Preprocessing(model.image_resolution, max_pixels=max_pixels)
    export_dir = export_saved_model(model, str(tmp_path / "model" / "1"))
    good = _good_images(max_pixels, large)
    preprocess = ImagePreprocessor.from_settings(model.preprocessing)
    features = np.asarray(model.encode_image(preprocess(tf.constant(good))), np.float64)
    expected = dict(enumerate((features / np.linalg.norm(features, axis=-1, keepdims=True)).astype(np.float32)))
    pool, phrases, bad = list(good), {}, {}
    for kind, items in _bad_images(max_pixels).items():
        bad[kind] = list(range(len(pool), len(pool) + len(items)))
        for data, phrase in items:
            phrases[len(pool)] = phrase
            pool.append(data)
    requests = plan_requests(list(range(len(good))), bad, threads, requests_per_thread)
    run = run_load(export_dir, pool, expected, phrases, requests, str(tmp_path), model.embed_dim, cap_mb)
    assert not run.killed and run.returncode == 0 and len(run.results) == 1, run
    result = run.results[0]
    assert result["failures"] == [], result["failures"]
    assert result["answered"] + result["refused"] == threads * requests_per_thread
    return result


def test_eight_threads_of_good_corrupt_oversize_and_empty_requests(tmp_path):
    result = _load_test(tiny_clip(seed=0), tmp_path, threads=8, requests_per_thread=500, cap_mb=2500, max_pixels=40000)
    print(f"\ntiny model, 8 threads x 500 requests: {result['seconds']:.1f} s "
          f"({8 * 500 / result['seconds']:.0f} requests/s), {result['refused']} refused, peak memory "
          f"+{result['peak_growth_mb']:.0f} MB over {result['rss_mb_before']:.0f} MB")  # fmt: skip
    # Eight images decoded at once (at most 120 KB each, and their resampling) and the requests in flight.
    assert result["peak_growth_mb"] < 300, result


@pytest.mark.full_size
def test_vit_b32_under_load_with_camera_sized_images(tmp_path):
    result = _load_test(create_model("ViT-B/32"), tmp_path, threads=8, requests_per_thread=50, cap_mb=4000,
                        max_pixels=2_000_000, large=True)  # fmt: skip
    print(f"\nViT-B/32, 8 threads x 50 requests: {result['seconds']:.1f} s, peak memory "
          f"+{result['peak_growth_mb']:.0f} MB over {result['rss_mb_before']:.0f} MB")  # fmt: skip
    assert result["peak_growth_mb"] < 1000, result
