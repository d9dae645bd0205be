"""Image <-> text retrieval recall@K: against a brute-force ranking, and end to end on real photographs."""

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.evaluation import CorruptImageError, evaluate_retrieval, recall_at_k
from keras_clip.text.tokenizer import tokenize
from tests.helpers import images
from tests.helpers.evaluation_data import CORRUPT_JPEG, small_photo


def brute_force_recall(image_features, text_features, caption_images, ks):
    images_ = image_features / np.linalg.norm(image_features, axis=1, keepdims=True)
    texts = text_features / np.linalg.norm(text_features, axis=1, keepdims=True)
    similarity = images_ @ texts.T
    image_to_text, text_to_image = {}, {}
    for k in ks:
        found = [set(np.argsort(-row, kind="stable")[:k]) & set(np.flatnonzero(caption_images == i))
                 for i, row in enumerate(similarity)]  # fmt: skip
        image_to_text[k] = np.mean([bool(hits) for hits in found])
        text_to_image[k] = np.mean(
            [caption_images[m] in np.argsort(-similarity[:, m], kind="stable")[:k] for m in range(len(texts))]
        )
    return image_to_text, text_to_image


def test_recall_matches_brute_force_ranking():
    rng = np.random.default_rng(0)
    image_features = rng.normal(size=(40, 16))
    caption_images = np.repeat(np.arange(40), rng.integers(1, 4, 40))  # 1 to 3 captions per image
    # Captions near their image, with noise: recall between 0 and 1.
    text_features = image_features[caption_images] + rng.normal(scale=1.2, size=(len(caption_images), 16))
    ks = (1, 5, 10)
    results = recall_at_k(image_features, text_features, caption_images, ks, chunk_size=7)
    expected_i2t, expected_t2i = brute_force_recall(image_features, text_features, caption_images, ks)
    assert results.image_to_text == pytest.approx(expected_i2t)
    assert results.text_to_image == pytest.approx(expected_t2i)
    assert 0 < results.image_to_text[1] < results.image_to_text[10] < 1
    assert results.num_images == 40 and results.num_captions == len(caption_images)


def test_recall_input_checks():
    with pytest.raises(ValueError, match="caption owners"):
        recall_at_k(np.ones((2, 3)), np.ones((3, 3)), [0, 1])
    with pytest.raises(ValueError, match="must index the images"):
        recall_at_k(np.ones((2, 3)), np.ones((2, 3)), [0, 2])


PHOTOS = ["chelsea_odd_size", "coffee_landscape", "rocket_portrait", "astronaut_square"]
CAPTIONS = [
    ["a cat on a table", "a tabby cat"],
    ["a cup of coffee", "coffee on a saucer"],
    ["a rocket on its launch pad", "a space shuttle"],
    ["an astronaut with a flag", "a portrait of an astronaut"],
]


def test_end_to_end_on_photographs(clip_model):
    encoded = [images.encode(small_photo(name), "jpeg") for name in PHOTOS]
    dataset = tf.data.Dataset.from_tensor_slices((encoded, CAPTIONS))  # two captions per image
    results = evaluate_retrieval(clip_model, dataset, ks=(1, 2), batch_size=3, verbose=False)

    batch = np.stack([images.reference_preprocess(data, clip_model.image_resolution) for data in encoded])
    flat = [caption for captions in CAPTIONS for caption in captions]
    image_features = clip_model.encode_image(batch).numpy()
    text_features = clip_model.encode_text(tokenize(flat)).numpy()
    expected = recall_at_k(image_features, text_features, np.repeat(np.arange(4), 2), (1, 2))
    assert results.image_to_text == pytest.approx(expected.image_to_text)
    assert results.text_to_image == pytest.approx(expected.text_to_image)
    assert results.num_captions == 8 and "image->text R@1" in results.summary()

    # One caption per image, as a dict dataset; an undecodable image is named or skipped with its caption.
    single = {"image": encoded[:2] + [CORRUPT_JPEG] + encoded[3:], "caption": [captions[0] for captions in CAPTIONS]}
    with pytest.raises(CorruptImageError, match="the image at index 2"):
        evaluate_retrieval(clip_model, tf.data.Dataset.from_tensor_slices(single), verbose=False)
    dataset = tf.data.Dataset.from_tensor_slices(single)
    skipped = evaluate_retrieval(clip_model, dataset, skip_errors=True, verbose=False)
    assert skipped.skipped == ["the image at index 2"] and skipped.num_images == 3 and skipped.num_captions == 3
