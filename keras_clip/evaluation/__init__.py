"""Evaluating CLIP models: zero-shot classification, image <-> text retrieval, linear probes.

- `evaluate_image_folder`, `evaluate_tfds`, `evaluate_zero_shot`: zero-shot top-1 / top-5 accuracy on an
  image folder (one subfolder per class), a TensorFlow Datasets split, or any tf.data dataset of
  labelled images; `ZeroShotResults` gives a per-class table and a confusion matrix (plot with matplotlib).
- `evaluate_retrieval` / `recall_at_k`: image -> text and text -> image recall@1/5/10.
- `evaluate_linear_probe` / `linear_probe`: logistic regression on frozen image features, the
  L2 penalty chosen on a validation split, as in the CLIP paper.

Images that cannot be decoded raise `CorruptImageError` naming them, or are skipped and listed with
`skip_errors=True`.
"""

from keras_clip.errors import CorruptImageError
from keras_clip.evaluation.classification import (
    evaluate_image_folder,
    evaluate_labelled_images,
    evaluate_tfds,
    evaluate_zero_shot,
    zero_shot_classifier,
)
from keras_clip.evaluation.image_stream import ImageStream
from keras_clip.evaluation.linear_probe import (
    LinearProbeResults,
    evaluate_linear_probe,
    extract_image_features,
    fit_logistic_regression,
    linear_probe,
)
from keras_clip.evaluation.results import ZeroShotResults
from keras_clip.evaluation.retrieval import RetrievalResults, evaluate_retrieval, recall_at_k
from keras_clip.evaluation.sources import LabelledImages, image_folder, labelled_dataset, tfds_split

__all__ = [
    "CorruptImageError",
    "ImageStream",
    "LabelledImages",
    "LinearProbeResults",
    "RetrievalResults",
    "ZeroShotResults",
    "evaluate_image_folder",
    "evaluate_labelled_images",
    "evaluate_linear_probe",
    "evaluate_retrieval",
    "evaluate_tfds",
    "evaluate_zero_shot",
    "extract_image_features",
    "fit_logistic_regression",
    "image_folder",
    "labelled_dataset",
    "linear_probe",
    "recall_at_k",
    "tfds_split",
    "zero_shot_classifier",
]
