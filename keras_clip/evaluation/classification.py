"""Zero-shot top-1 / top-5 accuracy over a tf.data dataset, an image folder or a TFDS split."""

import numpy as np

from keras_clip.evaluation.image_stream import ImageStream
from keras_clip.evaluation.results import ZeroShotResults
from keras_clip.evaluation.sources import image_folder, labelled_dataset, tfds_split
from keras_clip.models.zero_shot import ZeroShotClassifier
from keras_clip.text.templates import IMAGENET_TEMPLATES

TOP_K = 5


def zero_shot_classifier(model, classnames, templates=IMAGENET_TEMPLATES, verbose=True):
    """`model` itself if it is a ZeroShotClassifier for as many classes, else one built on the CLIP `model`."""
    if isinstance(model, ZeroShotClassifier):
        if len(model.classnames) != len(classnames):
            raise ValueError(
                f"The classifier has {len(model.classnames)} classes but the data has {len(classnames)}: "
                "pass the CLIP model instead to build a classifier for the data's classes"
            )
        return model
    return ZeroShotClassifier(model, classnames, templates=templates, verbose=verbose)


def evaluate_labelled_images(classifier, source, batch_size=64, skip_errors=False, preprocessed=False, verbose=True):
    """Zero-shot evaluation of a classifier on `LabelledImages` (see `sources`); returns `ZeroShotResults`."""
    num_classes = len(classifier.classnames)
    stream = ImageStream(
        source.dataset,
        classifier.clip_model.preprocessing,
        batch_size=batch_size,
        skip_errors=skip_errors,
        read=source.read,
        path_of=source.path_of,
        preprocessed=preprocessed,
        total=source.total,
        description=f"Zero-shot {source.description}",
        verbose=verbose,
    )
    k = min(TOP_K, num_classes)
    labels, predictions = [], []
    for images, (batch_labels,), positions in stream:
        batch_labels = np.asarray(batch_labels, np.int64)
        invalid = np.flatnonzero((batch_labels < 0) | (batch_labels >= num_classes))
        if invalid.size:
            raise ValueError(
                f"{stream.describe(int(positions[invalid[0]]))} has label {batch_labels[invalid[0]]}, "
                f"outside 0..{num_classes - 1} ({num_classes} classes)"
            )
        probabilities = np.asarray(classifier(images))
        predictions.append(np.argsort(-probabilities, axis=-1, kind="stable")[:, :k])
        labels.append(batch_labels)
    return ZeroShotResults(
        classnames=list(classifier.classnames),
        labels=np.concatenate(labels) if labels else np.zeros([0], np.int64),
        predictions=np.concatenate(predictions) if predictions else np.zeros([0, k], np.int64),
        skipped=stream.skipped,
        description=source.description,
    )


def evaluate_zero_shot(model, dataset, classnames=None, templates=IMAGENET_TEMPLATES, batch_size=64,
                       skip_errors=False, preprocessed=False, verbose=True):  # fmt: skip
    """Zero-shot top-1 / top-5 accuracy on a tf.data dataset of labelled images.

    Args:
        model: a `ZeroShotClassifier` (its class i is label i), or a `keras_clip.CLIP` with `classnames`.
        dataset: `tf.data.Dataset` of `(image, label)` or `{"image": ..., "label": ...}`, batched or not.
            Images: encoded bytes (JPEG, PNG, GIF, BMP, WebP) as `tf.string`, or pixels [H, W, C]
            (uint8, or float in [0, 255]) of any size; with `preprocessed=True`, model inputs [R, R, 3].
        classnames: the name of each label (required with a CLIP model).
        templates: prompt templates when a classifier is built (see `ZeroShotClassifier`).
        batch_size: images per forward pass.
        skip_errors: skip images that cannot be decoded and count them (`results.skipped`);
            otherwise the first one raises `CorruptImageError` (its index, and path for a folder).
        preprocessed: the dataset's images are already preprocessed.
        verbose: show progress bars.

    Returns:
        `ZeroShotResults` (`top1`, `top5`, `per_class_table()`, `confusion_matrix()`, ...).

    Example:
    >>> dataset = tf.data.Dataset.from_tensor_slices((jpeg_bytes, labels))  # label 0: cat, 1: dog
    >>> results = evaluate_zero_shot(model, dataset, classnames=["cat", "dog"], templates="simple")
    >>> print(results.summary())
    dataset: top-1 ...%, top-5 100.00% over 8 images, 2 classes
    """
    if classnames is None:
        if not isinstance(model, ZeroShotClassifier):
            raise ValueError("evaluate_zero_shot needs classnames=[...] to build a classifier from a CLIP model")
        classnames = model.classnames
    source = labelled_dataset(dataset, classnames)
    classifier = zero_shot_classifier(model, source.classnames, templates, verbose)
    return evaluate_labelled_images(classifier, source, batch_size, skip_errors, preprocessed, verbose)


def evaluate_image_folder(model, directory, classnames=None, templates=IMAGENET_TEMPLATES, batch_size=64,
                          skip_errors=False, verbose=True):  # fmt: skip
    """Zero-shot top-1 / top-5 accuracy on a folder with one subfolder of images per class.

    Class i is the i-th subfolder in sorted order; its name (underscores as spaces) is the class
    name, unless `classnames` gives them. Unreadable images raise `CorruptImageError` naming the
    file, or are skipped and listed in `results.skipped` with `skip_errors=True`.

    Args:
        model: a `keras_clip.CLIP` (a classifier is built from the class names) or a `ZeroShotClassifier`.
        directory: the folder (`directory/<class>/**/<image>`; see `sources.image_folder`).
        classnames, templates, batch_size, skip_errors, verbose: as in `evaluate_zero_shot`.

    Example:
    >>> results = evaluate_image_folder(model, "pets/", templates="a photo of a {}, a type of pet.")
    >>> print(results.per_class_table(sort_by="accuracy"))
    class       images    top-1    top-5  most confused with
    ...
    """
    source = image_folder(directory)
    if classnames is not None:
        source.classnames = _checked_classnames(classnames, source.classnames, directory)
    classifier = zero_shot_classifier(model, source.classnames, templates, verbose)
    return evaluate_labelled_images(classifier, source, batch_size, skip_errors, False, verbose)


def evaluate_tfds(model, name, split="test", data_dir=None, download=False, classnames=None,
                  templates=IMAGENET_TEMPLATES, batch_size=64, skip_errors=False, image_key="image",
                  label_key="label", verbose=True):  # fmt: skip
    """Zero-shot top-1 / top-5 accuracy on a TensorFlow Datasets split.

    Class names come from the split's `label` ClassLabel feature (underscores as spaces) unless
    `classnames` gives them: for "imagenet2012" or "imagenet_v2", whose labels are WordNet ids, pass
    `keras_clip.IMAGENET_CLASSNAMES`. Nothing is downloaded unless `download=True`.

    Args:
        model: a `keras_clip.CLIP` or a `ZeroShotClassifier`.
        name: TFDS dataset name; split: TFDS split (slicing allowed); data_dir: TFDS data folder.
        download: let TFDS download and prepare the dataset if it is missing.
        image_key, label_key: the features holding the image and its label.
        classnames, templates, batch_size, skip_errors, verbose: as in `evaluate_zero_shot`.

    Example:
    >>> results = evaluate_tfds(model, "imagenet_v2", split="test",  # needs ImageNet-V2 prepared (download=True)
    ...                         classnames=keras_clip.IMAGENET_CLASSNAMES)  # doctest: +SKIP
    >>> results = evaluate_tfds(model, "tiny_photos", data_dir="tensorflow_datasets/")  # a dataset prepared in data_dir
    >>> print(results.summary())
    tiny_photos test: top-1 ...%, top-5 100.00% over 5 images, 3 classes
    """
    source = tfds_split(name, split, data_dir, download, image_key, label_key)
    if classnames is not None:
        source.classnames = _checked_classnames(classnames, source.classnames, f"TFDS {name}")
    classifier = zero_shot_classifier(model, source.classnames, templates, verbose)
    return evaluate_labelled_images(classifier, source, batch_size, skip_errors, False, verbose)


def _checked_classnames(classnames, found, where):
    classnames = list(classnames)
    if len(classnames) != len(found):
        raise ValueError(f"{len(classnames)} class names given, but {where} has {len(found)} classes")
    return classnames
