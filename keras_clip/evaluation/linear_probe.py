"""Linear probe: multinomial logistic regression on frozen CLIP image features, as in the CLIP paper.

The paper (appendix A.3) fits L-BFGS logistic regression with an L2 penalty whose strength λ is
chosen on a validation split: a parametric binary search that starts from λ = 1e-6, 1e-4, ..., 1e6
and halves the step around the best value until 8 steps per decade; the final model is fitted on
train + validation and scored on the test split. This module does the same in numpy (no
scikit-learn): the objective is scikit-learn's `LogisticRegression(C=1/λ)`, i.e. the summed
cross-entropy plus λ/2 times the squared weights (the bias is not penalised), divided here by the
number of examples for better conditioning (same minimiser).
"""

import dataclasses

import numpy as np
from tqdm.auto import tqdm

from keras_clip.evaluation.image_stream import ImageStream
from keras_clip.evaluation.sources import labelled_dataset

INITIAL_LOG10_L2 = (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)
FINEST_LOG10_STEP = 1.0 / 8.0


def _loss_and_gradient(parameters, features, onehot, l2):
    dimensions, num_classes = features.shape[1], onehot.shape[1]
    weights = parameters[: dimensions * num_classes].reshape(dimensions, num_classes)
    bias = parameters[dimensions * num_classes:]
    logits = features @ weights + bias
    logits -= logits.max(axis=1, keepdims=True)
    log_normalizer = np.log(np.exp(logits).sum(axis=1, keepdims=True))
    count = len(features)
    loss = -(onehot * (logits - log_normalizer)).sum() / count + 0.5 * l2 / count * np.sum(weights**2)
    residual = (np.exp(logits - log_normalizer) - onehot) / count
    gradient_weights = features.T @ residual + (l2 / count) * weights
    return loss, np.concatenate([gradient_weights.ravel(), residual.sum(axis=0)])


def _lbfgs(function, x, max_iterations, tolerance, memory=10):
    """Minimises a smooth convex `function(x) -> (value, gradient)` with L-BFGS and backtracking (Armijo)."""
    value, gradient = function(x)
    history = []
    for _ in range(max_iterations):
        if np.abs(gradient).max() <= tolerance:
            break
        direction = -gradient
        alphas = []
        for s, y, rho in reversed(history):
            alpha = rho * (s @ direction)
            direction = direction - alpha * y
            alphas.append(alpha)
        if history:
            s, y, _ = history[-1]
            direction = direction * ((s @ y) / (y @ y))
        for (s, y, rho), alpha in zip(history, reversed(alphas)):
            direction = direction + s * (alpha - rho * (y @ direction))
        slope = gradient @ direction
        if slope >= 0:  # not a descent direction (numerical trouble): restart from steepest descent
            history, direction, slope = [], -gradient, -(gradient @ gradient)
        step = 1.0 if history else min(1.0, 1.0 / np.abs(gradient).sum())
        while True:
            candidate = x + step * direction
            candidate_value, candidate_gradient = function(candidate)
            if candidate_value <= value + 1e-4 * step * slope:
                break
            step *= 0.5
            if step < 1e-20:
                return x
        s, y = candidate - x, candidate_gradient - gradient
        if s @ y > 1e-12:
            history = (history + [(s, y, 1.0 / (s @ y))])[-memory:]
        converged = abs(value - candidate_value) <= 1e-15 * max(1.0, abs(value))
        x, value, gradient = candidate, candidate_value, candidate_gradient
        if converged:
            break
    return x


def fit_logistic_regression(features, labels, l2, num_classes=None, max_iterations=1000, tolerance=1e-6, initial=None):
    """Multinomial logistic regression with an L2 penalty (scikit-learn's `LogisticRegression(C=1/l2)`).

    Args:
        features: [N, D] features.
        labels: int [N] labels in 0..num_classes-1.
        l2: λ, the L2 penalty on the weights (the bias is free).
        num_classes: number of classes (default max(labels) + 1).
        max_iterations: L-BFGS iterations at most.
        tolerance: stop when every gradient entry of the per-example objective is below this.
        initial: optional `(weights, bias)` to start from (warm start).

    Returns:
        `(weights [D, C], bias [C])`, float64; class scores are `features @ weights + bias`.
    """
    features = np.asarray(features, np.float64)
    labels = np.asarray(labels, np.int64)
    num_classes = int(num_classes or labels.max() + 1)
    onehot = np.eye(num_classes)[labels]
    dimensions = features.shape[1]
    if initial is None:
        start = np.zeros(dimensions * num_classes + num_classes)
    else:
        start = np.concatenate([np.ravel(initial[0]), np.ravel(initial[1])]).astype(np.float64)
    solution = _lbfgs(lambda p: _loss_and_gradient(p, features, onehot, l2), start, max_iterations, tolerance)
    return solution[: dimensions * num_classes].reshape(dimensions, num_classes), solution[dimensions * num_classes:]


def _accuracy(weights, bias, features, labels):
    return float(np.mean(np.argmax(np.asarray(features, np.float64) @ weights + bias, axis=1) == labels))


@dataclasses.dataclass
class LinearProbeResults:
    """A linear probe's outcome.

    Attributes:
        l2: the chosen λ.
        validation_accuracy: accuracy on the validation split at the chosen λ.
        test_accuracy: accuracy on the test split of the model fitted on train + validation at λ.
        sweep: {λ: validation accuracy} for every λ tried.
        weights, bias: the final model (`features @ weights + bias` are the class scores).
    """

    l2: float
    validation_accuracy: float
    test_accuracy: float
    sweep: dict
    weights: np.ndarray
    bias: np.ndarray

    def summary(self):
        return (
            f"linear probe: test accuracy {100 * self.test_accuracy:.2f}% at L2 penalty {self.l2:.3g} "
            f"(validation accuracy {100 * self.validation_accuracy:.2f}%, {len(self.sweep)} values tried)"
        )


def split_validation(features, labels, fraction=0.2, seed=0):
    """A random (train, validation) split of labelled features, as the paper does where no validation set exists."""
    order = np.random.default_rng(seed).permutation(len(labels))
    count = max(1, int(round(fraction * len(labels))))
    validation, train = order[:count], order[count:]
    return (features[train], labels[train]), (features[validation], labels[validation])


def linear_probe(train_features, train_labels, test_features, test_labels, validation_features=None,
                 validation_labels=None, validation_fraction=0.2, max_iterations=1000, seed=0,
                 verbose=True):  # fmt: skip
    """The CLIP paper's linear probe on precomputed features.

    λ is chosen by the paper's parametric binary search over [1e-6, 1e6] on the validation split
    (taken from the training data when none is given), then the probe is fitted on train +
    validation with that λ and scored on the test split.

    Returns:
        `LinearProbeResults`.
    """
    train_features, test_features = np.asarray(train_features, np.float64), np.asarray(test_features, np.float64)
    train_labels, test_labels = np.asarray(train_labels, np.int64), np.asarray(test_labels, np.int64)
    if validation_features is None:
        (fit_features, fit_labels), (validation_features, validation_labels) = split_validation(
            train_features, train_labels, validation_fraction, seed
        )
    else:
        fit_features, fit_labels = train_features, train_labels
        validation_features = np.asarray(validation_features, np.float64)
        validation_labels = np.asarray(validation_labels, np.int64)
    num_classes = int(max(train_labels.max(), test_labels.max(), validation_labels.max()) + 1)

    fitted = {}  # log10 λ -> (validation accuracy, (weights, bias))
    progress = tqdm(desc="Linear probe sweep", unit="fit", disable=not verbose)

    def evaluate(log_l2):
        log_l2 = float(np.clip(log_l2, INITIAL_LOG10_L2[0], INITIAL_LOG10_L2[-1]))
        if log_l2 not in fitted:
            nearest = min(fitted, key=lambda other: abs(other - log_l2), default=None)
            initial = fitted[nearest][1] if nearest is not None else None
            model = fit_logistic_regression(fit_features, fit_labels, 10.0**log_l2, num_classes, max_iterations,
                                            initial=initial)  # fmt: skip
            fitted[log_l2] = (_accuracy(*model, validation_features, validation_labels), model)
            progress.update(1)
        return log_l2

    def best():
        # Highest validation accuracy; among ties the strongest penalty.
        return max(fitted, key=lambda log_l2: (fitted[log_l2][0], log_l2))

    for log_l2 in INITIAL_LOG10_L2:
        evaluate(log_l2)
    step = INITIAL_LOG10_L2[1] - INITIAL_LOG10_L2[0]
    while step > FINEST_LOG10_STEP:
        step /= 2
        center = best()
        evaluate(center - step)
        evaluate(center + step)
    progress.close()
    chosen = best()
    all_features = np.concatenate([fit_features, validation_features])
    all_labels = np.concatenate([fit_labels, validation_labels])
    weights, bias = fit_logistic_regression(all_features, all_labels, 10.0**chosen, num_classes, max_iterations,
                                            initial=fitted[chosen][1])  # fmt: skip
    return LinearProbeResults(
        l2=10.0**chosen,
        validation_accuracy=fitted[chosen][0],
        test_accuracy=_accuracy(weights, bias, test_features, test_labels),
        sweep={10.0**log_l2: fitted[log_l2][0] for log_l2 in sorted(fitted)},
        weights=weights,
        bias=bias,
    )


def extract_image_features(model, dataset, batch_size=64, skip_errors=False, verbose=True):
    """CLIP image features (`model.encode_image`, not normalised) and labels of a labelled dataset.

    Args:
        model: a `keras_clip.CLIP`.
        dataset: `tf.data.Dataset` of `(image, label)` or `{"image", "label"}` (see `evaluate_zero_shot`).

    Returns:
        `(features float32 [N, embed_dim], labels int64 [N])` of the images that could be decoded.
    """
    source = labelled_dataset(dataset, [])
    stream = ImageStream(source.dataset, model.preprocessing, batch_size=batch_size, skip_errors=skip_errors,
                         description="Image features", verbose=verbose)  # fmt: skip
    features, labels = [], []
    for images, (batch_labels,), _ in stream:
        features.append(np.asarray(model.encode_image(images)))
        labels.append(np.asarray(batch_labels, np.int64))
    if not features:
        return np.zeros([0, model.embed_dim], np.float32), np.zeros([0], np.int64)
    return np.concatenate(features), np.concatenate(labels)


def evaluate_linear_probe(model, train_dataset, test_dataset, validation_dataset=None, batch_size=64,
                          skip_errors=False, verbose=True, **probe_options):  # fmt: skip
    """The paper's linear probe of a CLIP's frozen image features on labelled tf.data datasets.

    Example:
    >>> results = evaluate_linear_probe(model, train, test)
    >>> print(results.summary())
    linear probe: test accuracy ...% at L2 penalty ... (validation accuracy ...%, ... values tried)
    """
    options = dict(batch_size=batch_size, skip_errors=skip_errors, verbose=verbose)
    train = extract_image_features(model, train_dataset, **options)
    test = extract_image_features(model, test_dataset, **options)
    validation = extract_image_features(model, validation_dataset, **options) if validation_dataset else (None, None)
    return linear_probe(*train, *test, *validation, verbose=verbose, **probe_options)
