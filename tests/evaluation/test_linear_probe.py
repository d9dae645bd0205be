"""Linear probe: our L-BFGS logistic regression against scikit-learn's (test-only), the paper's λ search,
and the probe end to end on CLIP features of real photographs."""

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.evaluation import evaluate_linear_probe, extract_image_features, fit_logistic_regression, linear_probe
from tests.helpers import images
from tests.helpers.evaluation_data import small_photo


def blobs(count, dimensions=8, classes=4, spread=2.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dimensions)) * spread
    labels = rng.integers(0, classes, count)
    return centres[labels] + rng.normal(size=(count, dimensions)), labels


@pytest.mark.parametrize("l2", [1e-2, 1.0, 100.0])
def test_matches_scikit_learn_logistic_regression(l2):
    from sklearn.linear_model import LogisticRegression

    features, labels = blobs(300)
    weights, bias = fit_logistic_regression(features, labels, l2, tolerance=1e-10, max_iterations=5000)
    reference = LogisticRegression(C=1.0 / l2, tol=1e-12, max_iter=10000).fit(features, labels)
    np.testing.assert_allclose(weights, reference.coef_.T, atol=1e-5 * max(1.0, np.abs(reference.coef_).max()))
    # The bias of a softmax model is defined up to a shared constant (it is not penalised).
    np.testing.assert_allclose(bias - bias.mean(), reference.intercept_ - reference.intercept_.mean(), atol=1e-4)


def test_regularisation_search_follows_the_paper():
    features, labels = blobs(400, spread=0.6, seed=1)
    test_features, test_labels = blobs(200, spread=0.6, seed=1)  # same centres (same seed), new noise below
    test_features = test_features + np.random.default_rng(2).normal(size=test_features.shape) * 0.1
    results = linear_probe(features, labels, test_features, test_labels, verbose=False)
    exponents = np.log10(sorted(results.sweep))
    assert set(np.round(exponents[np.isclose(exponents % 2, 0)])) == {-6, -4, -2, 0, 2, 4, 6}
    # Binary search: halving steps down to 1/8 decade around the best value, two fits per step.
    assert len(results.sweep) <= 7 + 2 * 4
    chosen = np.log10(results.l2)
    assert np.isclose((chosen * 8) % 1, 0) or np.isclose((chosen * 8) % 1, 1)
    assert results.validation_accuracy == max(results.sweep.values())
    assert results.test_accuracy > 0.6 and "linear probe" in results.summary()
    weights, bias = fit_logistic_regression(features, labels, results.l2)
    assert weights.shape == results.weights.shape == (8, 4) and bias.shape == (4,)


def test_probe_on_clip_features_of_photographs(clip_model):
    names = ["chelsea_odd_size", "coffee_landscape", "rocket_portrait", "astronaut_square", "china_landscape"]
    labels = [0, 1, 2, 3, 1]
    encoded = [images.encode(small_photo(name), "png") for name in names]
    dataset = tf.data.Dataset.from_tensor_slices((encoded, labels))
    features, feature_labels = extract_image_features(clip_model, dataset, batch_size=2, verbose=False)
    batch = np.stack([images.reference_preprocess(data, clip_model.image_resolution) for data in encoded])
    # The preprocessing is OpenAI's bit for bit; what is left is the model's float rounding in batches.
    np.testing.assert_allclose(features, clip_model.encode_image(batch).numpy(), atol=1e-5)
    np.testing.assert_array_equal(feature_labels, labels)
    results = evaluate_linear_probe(clip_model, dataset, dataset, validation_dataset=dataset, verbose=False)
    assert results.test_accuracy == 1.0  # 5 points in 32 dimensions: separable, scored on themselves
