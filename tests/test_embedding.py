"""embed_images / embed_texts / search: pipelines equal to direct model calls."""

import os

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.embedding import embed_images, embed_texts, encoded_image_embedder, image_files, search
from tests.helpers.images import encode, photographs
from tests.helpers.tiny_models import tiny_clip

TOLERANCE = 1e-5


def write_photos(folder, count=5):
    os.makedirs(folder / "sub", exist_ok=True)
    paths = []
    for index, pixels in zip(range(count), photographs().values()):
        fmt = "jpeg" if index % 2 else "png"
        path = folder / ("sub" if index == 0 else "") / f"photo{index}.{'jpg' if fmt == 'jpeg' else 'png'}"
        path.write_bytes(encode(pixels, fmt))
        paths.append(str(path))
    return sorted(paths)


def normalized(x):
    x = np.asarray(x)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_folder_embeddings_equal_direct_calls(tmp_path):
    model = tiny_clip()
    paths = write_photos(tmp_path)
    assert image_files(str(tmp_path)) == paths
    embeddings, kept = embed_images(str(tmp_path), model, batch_size=2, return_paths=True,
                                    output=str(tmp_path / "e.npy"), progress=False)
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
    with pytest.raises(tf.errors.InvalidArgumentError, match="broken.jpg"):
        embed_images(paths + [str(broken)], model, progress=False)
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(tf.errors.NotFoundError):
        embed_images([missing] + paths, model, progress=False)
    embeddings, kept = embed_images(
        [paths[0], str(broken), missing] + paths[1:], model, batch_size=2, skip_errors=True, return_paths=True,
        progress=False,
    )
    assert kept == paths and embeddings.shape == (3, 32)
    np.testing.assert_allclose(embeddings, embed_images(paths, model, progress=False), atol=TOLERANCE, rtol=0)
    dataset = tf.data.Dataset.from_tensor_slices([open(p, "rb").read() for p in paths])
    np.testing.assert_allclose(embed_images(dataset, model, progress=False), embeddings, atol=TOLERANCE, rtol=0)


def test_pixel_dataset_and_one_trace_for_every_batch_size(tmp_path):
    model = tiny_clip()
    paths = write_photos(tmp_path, 3)
    embeddings = embed_images(paths, model, batch_size=2, progress=False)
    embed_images(paths, model, batch_size=3, progress=False)
    assert encoded_image_embedder(model).experimental_get_tracing_count() == 1
    pixels = [np.asarray(keras_clip.preprocessing.decode_image(open(path, "rb").read())) for path in paths]
    signature = tf.TensorSpec([None, None, 3], tf.uint8)
    dataset = tf.data.Dataset.from_generator(lambda: iter(pixels), output_signature=signature)
    np.testing.assert_allclose(embed_images(dataset, model, progress=False), embeddings, atol=TOLERANCE, rtol=0)


def test_text_embeddings_and_search():
    model = tiny_clip()
    texts = ["a dog on a beach", "a red car", "a photo of a cat", "ünïcödé text"]
    embeddings = embed_texts(texts, model, batch_size=3, progress=False)
    expected = normalized(model.encode_text(keras_clip.tokenize(texts)))
    np.testing.assert_allclose(embeddings, expected, atol=TOLERANCE, rtol=0)
    indices, scores = search(embeddings, embeddings[[2, 0]], top_k=2)
    assert indices[:, 0].tolist() == [2, 0]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert embed_texts([], model, progress=False).shape == (0, 32)
