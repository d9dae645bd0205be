"""embed_images / embed_texts / search: pipelines equal to direct model calls."""

import os

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.errors import CorruptImageError, ImageTooLargeError
from keras_clip.image.files import list_image_files
from keras_clip.serving.embedding import embed_images, embed_texts, encoded_image_embedder
from keras_clip.serving.search import search
from tests.helpers.image_bombs import png_bomb
from tests.helpers.images import write_photos
from tests.helpers.tiny_models import tiny_clip

TOLERANCE = 1e-5


def normalized(x):
    x = np.asarray(x)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_folder_embeddings_equal_direct_calls(tmp_path):
    model = tiny_clip()
    paths = write_photos(tmp_path)
    assert list_image_files(str(tmp_path)) == paths
    embeddings, kept = embed_images(model, str(tmp_path), batch_size=2, return_paths=True,
                                    output=str(tmp_path / "e.npy"), verbose=False)
    preprocess = keras_clip.ImagePreprocessor(32)
    expected = normalized(model.encode_image(preprocess([open(p, "rb").read() for p in paths])))
    assert kept == paths
    np.testing.assert_allclose(embeddings, expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_array_equal(np.load(tmp_path / "e.npy"), embeddings)
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]


def test_dataset_input_and_corrupt_files(tmp_path):
    model = tiny_clip()
    paths = write_photos(tmp_path, 3)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(CorruptImageError, match="broken.jpg") as error:
        embed_images(model, paths + [str(broken)], batch_size=2, verbose=False)
    assert (error.value.index, error.value.path) == (3, str(broken))
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(tf.errors.NotFoundError):
        embed_images(model, [missing] + paths, verbose=False)
    embeddings, kept = embed_images(
        model, [paths[0], str(broken), missing] + paths[1:], batch_size=2, skip_errors=True, return_paths=True,
        verbose=False,
    )
    assert kept == paths and embeddings.shape == (3, 32)
    np.testing.assert_allclose(embeddings, embed_images(model, paths, verbose=False), atol=TOLERANCE, rtol=0)
    dataset = tf.data.Dataset.from_tensor_slices([open(p, "rb").read() for p in paths])
    np.testing.assert_allclose(embed_images(model, dataset, verbose=False), embeddings, atol=TOLERANCE, rtol=0)


def test_pixel_dataset_and_one_trace_for_every_batch_size(tmp_path):
    model = tiny_clip()
    paths = write_photos(tmp_path, 3)
    embeddings = embed_images(model, paths, batch_size=2, verbose=False)
    embed_images(model, paths, batch_size=3, verbose=False)
    assert encoded_image_embedder(model).experimental_get_tracing_count() == 1
    pixels = [np.asarray(keras_clip.decode_image(open(path, "rb").read())) for path in paths]
    signature = tf.TensorSpec([None, None, 3], tf.uint8)
    dataset = tf.data.Dataset.from_generator(lambda: iter(pixels), output_signature=signature)
    np.testing.assert_allclose(embed_images(model, dataset, verbose=False), embeddings, atol=TOLERANCE, rtol=0)


def test_text_embeddings_and_search():
    model = tiny_clip()
    texts = ["a dog on a beach", "a red car", "a photo of a cat", "ünïcödé text"]
    embeddings = embed_texts(model, texts, batch_size=3, verbose=False)
    expected = normalized(model.encode_text(keras_clip.tokenize(texts)))
    np.testing.assert_allclose(embeddings, expected, atol=TOLERANCE, rtol=0)
    indices, scores = search(embeddings, embeddings[[2, 0]], top_k=2)
    assert indices[:, 0].tolist() == [2, 0]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert embed_texts(model, [], verbose=False).shape == (0, 32)


def test_the_model_comes_first(tmp_path):
    model = tiny_clip()
    with pytest.raises(TypeError, match=r"embed_images\(model, ...\)"):
        embed_images(write_photos(tmp_path, 1), model)
    with pytest.raises(TypeError, match=r"embed_texts\(model, ...\)"):
        embed_texts(["a dog"], model)


def test_images_over_max_pixels_are_refused_or_skipped(tmp_path):
    model = tiny_clip()
    paths = write_photos(tmp_path, 3)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(20000, 20000))
    with pytest.raises(ImageTooLargeError, match="bomb.png: its 20000 x 20000 pixels exceed max_pixels") as error:
        embed_images(model, paths + [str(bomb)], batch_size=2, verbose=False)
    assert (error.value.index, error.value.path) == (3, str(bomb))
    embeddings, kept = embed_images(model, [str(bomb)] + paths, batch_size=2, skip_errors=True, return_paths=True,
                                    verbose=False)  # fmt: skip
    assert kept == paths
    np.testing.assert_allclose(embeddings, embed_images(model, paths, verbose=False), atol=TOLERANCE, rtol=0)
    # A lower limit: given to the call, or the model's own (keras_clip.load(..., max_pixels=) sets it).
    with pytest.raises(ImageTooLargeError, match="exceed max_pixels \\(1000\\)"):
        embed_images(model, paths, max_pixels=1000, verbose=False)
    model.preprocessing = dict(image_resolution=32, max_pixels=1000)
    with pytest.raises(ImageTooLargeError, match="exceed max_pixels \\(1000\\)"):
        embed_images(model, paths, verbose=False)
    np.testing.assert_allclose(embed_images(model, paths, max_pixels=None, verbose=False), embeddings,
                               atol=TOLERANCE, rtol=0)  # fmt: skip
