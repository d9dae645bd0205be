"""Zero-shot classification results: top-k accuracy, per-class table, confusion matrix (and its plot)."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class ZeroShotResults:
    """What a zero-shot evaluation found.

    Attributes:
        classnames: the class names, label i at index i.
        labels: int64 [N], the true label of each evaluated image.
        predictions: int64 [N, k], each image's k most probable classes, most probable first
            (k = min(5, number of classes)).
        skipped: names of the images skipped because they could not be read or decoded.
        description: what was evaluated (a folder, a TFDS split, ...).

    Example:
    >>> results = keras_clip.evaluation.evaluate_image_folder(model, "pets/")
    >>> results.top1, results.top5  # e.g. (0.87, 0.98)
    >>> print(results.per_class_table())
    class       images    top-1    top-5  most confused with
    ...
    >>> figure = results.plot_confusion_matrix("confusion.png")
    """

    classnames: list
    labels: np.ndarray
    predictions: np.ndarray
    skipped: list = dataclasses.field(default_factory=list)
    description: str = "dataset"

    @property
    def num_examples(self):
        return int(len(self.labels))

    @property
    def num_skipped(self):
        return len(self.skipped)

    @property
    def num_classes(self):
        return len(self.classnames)

    def correct(self, k=1):
        """bool [N]: the true label is among the k most probable classes."""
        k = min(k, self.predictions.shape[1])
        return (self.predictions[:, :k] == self.labels[:, None]).any(axis=1)

    def accuracy(self, k=1):
        """Top-k accuracy in [0, 1] (NaN without examples)."""
        return float(self.correct(k).mean()) if self.num_examples else float("nan")

    @property
    def top1(self):
        return self.accuracy(1)

    @property
    def top5(self):
        return self.accuracy(5)

    def class_counts(self):
        """int64 [C]: evaluated images per class."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def per_class_accuracy(self, k=1):
        """float [C]: top-k accuracy of each class's images (NaN for a class without images)."""
        hits = np.bincount(self.labels, weights=self.correct(k), minlength=self.num_classes)
        counts = self.class_counts()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)

    def mean_per_class_accuracy(self, k=1):
        """The mean over classes with images of their top-k accuracy (the metric some datasets report)."""
        accuracies = self.per_class_accuracy(k)
        return float(np.nanmean(accuracies)) if np.isfinite(accuracies).any() else float("nan")

    def confusion_matrix(self):
        """int64 [C, C]: row = true class, column = top-1 prediction."""
        matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
        if self.num_examples:
            np.add.at(matrix, (self.labels, self.predictions[:, 0]), 1)
        return matrix

    def summary(self):
        """One line: top-1, top-5, counts."""
        text = (
            f"{self.description}: top-1 {100 * self.top1:.2f}%, top-5 {100 * self.top5:.2f}% "
            f"over {self.num_examples} images, {self.num_classes} classes"
        )
        if self.num_skipped:
            text += f" ({self.num_skipped} unreadable images skipped)"
        return text

    def per_class_table(self, sort_by="name"):
        """A text table: class, images, top-1 and top-5 accuracy, most frequent wrong prediction.

        Args:
            sort_by: "name" (label order), "accuracy" (worst first) or "count" (most images first).
        """
        counts, top1, top5 = self.class_counts(), self.per_class_accuracy(1), self.per_class_accuracy(5)
        confusion = self.confusion_matrix()
        np.fill_diagonal(confusion, 0)
        order = np.arange(self.num_classes)
        if sort_by == "accuracy":
            order = np.lexsort((order, np.nan_to_num(top1, nan=np.inf)))
        elif sort_by == "count":
            order = np.lexsort((order, -counts))
        elif sort_by != "name":
            raise ValueError(f"sort_by must be 'name', 'accuracy' or 'count', got {sort_by!r}")
        width = max([len("class")] + [len(name) for name in self.classnames])
        lines = [f"{'class':<{width}}  {'images':>6}  {'top-1':>7}  {'top-5':>7}  most confused with"]
        for i in order:
            confused = self.classnames[int(confusion[i].argmax())] if confusion[i].any() else ""
            if confused:
                confused += f" ({confusion[i].max()})"
            lines.append(
                f"{self.classnames[i]:<{width}}  {counts[i]:>6}  {_percent(top1[i]):>7}  {_percent(top5[i]):>7}  "
                + confused
            )
        return "\n".join(line.rstrip() for line in lines)

    def plot_confusion_matrix(self, path=None, normalize=True, max_classes=50):
        """A matplotlib figure of the confusion matrix; saved to `path` (PNG, PDF, SVG...) if given.

        Needs matplotlib (optional dependency: `pip install matplotlib`).

        Args:
            path: file to save the figure to, or None.
            normalize: show each row as fractions of the class's images instead of counts.
            max_classes: with more classes, only the `max_classes` classes with most errors are shown.

        Returns:
            The `matplotlib.figure.Figure`.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("plot_confusion_matrix needs matplotlib: pip install matplotlib") from None
        matrix = self.confusion_matrix().astype(np.float64)
        classes = np.arange(self.num_classes)
        if self.num_classes > max_classes:
            errors = matrix.sum(axis=1) - np.diag(matrix)
            classes = np.sort(np.argsort(-errors, kind="stable")[:max_classes])
            matrix = matrix[np.ix_(classes, classes)]
        if normalize:
            matrix = matrix / np.maximum(self.class_counts()[classes], 1)[:, None]
        size = max(4.0, 0.3 * len(classes) + 2.0)
        figure = Figure(figsize=(size + 1.0, size))
        axes = figure.add_subplot()
        image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
        names = [self.classnames[i] for i in classes]
        axes.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        axes.set_yticks(range(len(names)), names, fontsize=8)
        axes.set_xlabel("predicted class")
        axes.set_ylabel("true class")
        axes.set_title(f"{self.description}: top-1 {100 * self.top1:.1f}%")
        figure.tight_layout()
        if path is not None:
            figure.savefig(path)
        return figure

    def to_dict(self):
        """JSON-serialisable summary: accuracies, counts, per-class accuracies, skipped images."""
        return {
            "description": self.description,
            "top1": self.top1,
            "top5": self.top5,
            "mean_per_class_top1": self.mean_per_class_accuracy(1),
            "num_examples": self.num_examples,
            "num_skipped": self.num_skipped,
            "skipped": list(self.skipped),
            "per_class": [
                {"class": name, "images": int(count), "top1": None if np.isnan(top1) else float(top1)}
                for name, count, top1 in zip(self.classnames, self.class_counts(), self.per_class_accuracy(1))
            ],
        }


def _percent(value):
    return "-" if np.isnan(value) else f"{100 * value:.1f}%"
