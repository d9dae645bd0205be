"""Labelled image sources for evaluation: a tf.data dataset, an image folder, or a TFDS dataset split."""

import dataclasses
import os
from typing import Callable, Optional

import tensorflow as tf

from keras_clip.image.files import IMAGE_SUFFIXES, is_hidden, list_image_files


@dataclasses.dataclass
class LabelledImages:
    """Images with integer labels, and what is needed to evaluate on them.

    Attributes:
        dataset: unbatched `tf.data.Dataset` of `(image, label)`: encoded bytes, pixels, or (with `read`) paths.
        classnames: the name of each label, label i at index i.
        read: function applied to an element's image first (e.g. `tf.io.read_file`), or None.
        path_of: `position -> path or None`, the file of the element at a position (for messages).
        total: the number of elements, if known.
        description: a short description (progress bars, reports).
    """

    dataset: tf.data.Dataset
    classnames: list
    read: Optional[Callable] = None
    path_of: Optional[Callable] = None
    total: Optional[int] = None
    description: str = "dataset"


def readable_classname(name):
    """A class name as prompts should say it: underscores become spaces ("golden_retriever" -> "golden retriever")."""
    return " ".join(name.replace("_", " ").split())


def labelled_dataset(dataset, classnames, description="dataset"):
    """`LabelledImages` from a tf.data dataset of `(image, label)` tuples or `{"image", "label"}` dicts.

    Batched datasets are unbatched (the evaluation batches by itself).
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"Expected a tf.data.Dataset, got {type(dataset).__name__}")
    spec = dataset.element_spec
    if isinstance(spec, dict):
        if not {"image", "label"} <= set(spec):
            raise ValueError(f"Dataset dict elements need 'image' and 'label' keys, got {sorted(spec)}")
        dataset = dataset.map(lambda element: (element["image"], element["label"]))
    elif not (isinstance(spec, tuple) and len(spec) == 2):
        raise ValueError(f"Dataset elements must be (image, label) pairs or dicts with 'image' and 'label', got {spec}")
    image_spec = dataset.element_spec[0]
    if (image_spec.dtype == tf.string and image_spec.shape.rank == 1) or image_spec.shape.rank == 4:
        dataset = dataset.unbatch()
    return LabelledImages(dataset, list(classnames), description=description)


def image_folder(directory):
    """`LabelledImages` of a folder with one subfolder per class (`directory/<class name>/**/<image>`).

    Classes are the subfolders in sorted order (label i = i-th name); their names, with underscores
    as spaces, are the class names. Images are the files (in sub-subfolders too) with an image suffix
    (`keras_clip.image.files`); hidden files and folders are skipped. Any filesystem TensorFlow
    reads works (e.g. gs://).

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it has no class subfolders, or no images.
    """
    directory = os.fspath(directory)
    if not tf.io.gfile.isdir(directory):
        raise FileNotFoundError(f"{directory} does not exist or is not a folder")
    folders = sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(directory)
        if not is_hidden(name.rstrip("/")) and tf.io.gfile.isdir(os.path.join(directory, name))
    )
    if not folders:
        raise ValueError(f"{directory} has no class subfolders (expected {directory}/<class name>/<images>)")
    paths, labels = [], []
    for label, folder in enumerate(folders):
        try:
            images = list_image_files(os.path.join(directory, folder))
        except ValueError:
            continue  # a class without images: its label stays, it just has no examples
        paths.extend(images)
        labels.extend([label] * len(images))
    if not paths:
        raise ValueError(f"{directory} has no images ({', '.join(IMAGE_SUFFIXES)}) in its class subfolders")
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string), tf.constant(labels, tf.int64)))
    return LabelledImages(
        dataset,
        [readable_classname(folder) for folder in folders],
        read=tf.io.read_file,
        path_of=lambda position: paths[position],
        total=len(paths),
        description=directory,
    )


def tfds_split(name, split="test", data_dir=None, download=False, image_key="image", label_key="label"):
    """`LabelledImages` of a TensorFlow Datasets split; class names from its `label_key` ClassLabel feature.

    Images are read as their stored bytes (TFDS' own decoding skipped) and decoded like OpenAI's
    pipeline. Class names get underscores as spaces.

    Args:
        name: a TFDS dataset name, e.g. "imagenet_v2", "oxford_iiit_pet" or "my_dataset:1.0.0".
        split: the split, with TFDS slicing allowed ("test", "validation[:10%]").
        data_dir: where the prepared dataset lives (TFDS' default if None).
        download: download and prepare it if missing (off by default: evaluation reads what is there).

    Raises:
        ValueError: the dataset is not prepared in `data_dir` (and `download` is False), or lacks the features.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    features = builder.info.features
    for key in (image_key, label_key):
        if key not in features:
            raise ValueError(f"TFDS dataset {name!r} has no {key!r} feature (it has {', '.join(features.keys())})")
    if not hasattr(features[label_key], "names"):
        raise ValueError(f"TFDS feature {name}/{label_key} is not a ClassLabel with class names")
    try:
        dataset = builder.as_dataset(
            split=split, shuffle_files=False, decoders={image_key: tfds.decode.SkipDecoding()}
        )
    except AssertionError as error:  # TFDS' "Dataset ... not found" when nothing is prepared
        raise ValueError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir}: prepare it first or pass download=True "
            f"({error})"
        ) from None
    try:
        total = builder.info.splits[split].num_examples
    except (KeyError, ValueError):
        total = None
    return LabelledImages(
        dataset.map(lambda example: (example[image_key], example[label_key])),
        [readable_classname(classname) for classname in features[label_key].names],
        total=total,
        description=f"{name} {split}",
    )
