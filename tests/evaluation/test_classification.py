"""Zero-shot evaluation end to end on an image folder, a local TFDS dataset and tf.data datasets of real
photographs; expected numbers come from OpenAI's preprocessing (PIL, tests/helpers/images.py) and the
classifier's own probabilities, counted here with numpy."""

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.evaluation import (
    CorruptImageError,
    evaluate_image_folder,
    evaluate_tfds,
    evaluate_zero_shot,
    zero_shot_classifier,
)
from tests.helpers import images
from tests.helpers.evaluation_data import CORRUPT_JPEG, FOLDER_LAYOUT, write_image_folder


def expected_predictions(classifier, encoded_images):
    """Each image's classes by decreasing probability, with OpenAI's preprocessing."""
    batch = np.stack([images.reference_preprocess(data, classifier.image_resolution) for data in encoded_images])
    probabilities = classifier(batch).numpy()
    return np.argsort(-probabilities, axis=-1, kind="stable"), probabilities


def check_results(results, classifier, encoded_images, labels):
    order, probabilities = expected_predictions(classifier, encoded_images)
    labels = np.asarray(labels)
    # A prediction may only differ where two classes are within the preprocessing's rounding of each other.
    top = np.take_along_axis(probabilities, order[:, :2], axis=1)
    decided = top[:, 0] - top[:, 1] > 1e-4
    assert decided.mean() >= 0.5
    np.testing.assert_array_equal(results.labels, labels)
    np.testing.assert_array_equal(results.predictions[decided, 0], order[decided, 0])
    k = min(5, classifier.num_classes)
    assert results.predictions.shape == (len(labels), k)
    assert results.top1 == pytest.approx(np.mean(order[:, 0] == labels))
    assert results.top5 == pytest.approx(np.mean([label in row[:5] for label, row in zip(labels, order)]))
    confusion = np.zeros((classifier.num_classes,) * 2, int)
    for label, predicted in zip(labels, order[:, 0]):
        confusion[label, predicted] += 1
    np.testing.assert_array_equal(results.confusion_matrix(), confusion)
    per_class = [np.mean(order[labels == c, 0] == c) if (labels == c).any() else np.nan for c in range(len(confusion))]
    np.testing.assert_allclose(results.per_class_accuracy(), per_class)


def test_image_folder(tmp_path, folder_classifier):
    entries = write_image_folder(tmp_path)
    results = evaluate_image_folder(folder_classifier, tmp_path, batch_size=3, verbose=False)
    assert results.classnames == ["astronaut", "cat", "coffee cup", "rocket"]
    assert results.num_examples == sum(len(files) for files in FOLDER_LAYOUT.values()) and results.num_skipped == 0
    check_results(results, folder_classifier, [data for _, _, data in entries], [label for _, label, _ in entries])


def test_image_folder_builds_the_classifier_from_folder_names(tmp_path, clip_model, folder_classifier):
    write_image_folder(tmp_path)
    results = evaluate_image_folder(clip_model, tmp_path, templates="simple", verbose=False)
    reference = evaluate_image_folder(folder_classifier, tmp_path, verbose=False)
    assert results.classnames == folder_classifier.classnames
    np.testing.assert_array_equal(results.predictions, reference.predictions)


def test_corrupt_image_in_folder_is_named_or_skipped(tmp_path, folder_classifier):
    entries = write_image_folder(tmp_path, corrupt_files=[("cat", "01_broken.jpg"), ("rocket", "99_last.png")])
    with pytest.raises(CorruptImageError, match=r"cat/01_broken\.jpg.*skip_errors=True"):
        evaluate_image_folder(folder_classifier, tmp_path, batch_size=2, verbose=False)
    results = evaluate_image_folder(folder_classifier, tmp_path, batch_size=2, skip_errors=True, verbose=False)
    skipped = [path.replace(str(tmp_path), "") for path in results.skipped]
    assert skipped == ["/cat/01_broken.jpg", "/rocket/99_last.png"]
    assert results.num_skipped == 2 and "2 unreadable images skipped" in results.summary()
    check_results(results, folder_classifier, [data for _, _, data in entries], [label for _, label, _ in entries])


def test_tfds_dataset_built_locally(tfds_dir, clip_model):
    import tensorflow_datasets as tfds

    results = evaluate_tfds(clip_model, "tiny_photos", split="test", data_dir=tfds_dir, templates="simple",
                            batch_size=2, verbose=False)  # fmt: skip
    assert results.classnames == ["tabby cat", "coffee cup", "rocket"]  # from the ClassLabel, underscores as spaces
    stored = tfds.load("tiny_photos", split="test", data_dir=tfds_dir, download=False,
                       decoders={"image": tfds.decode.SkipDecoding()})  # fmt: skip
    pairs = [(example["image"].numpy(), int(example["label"])) for example in stored]
    classifier = zero_shot_classifier(clip_model, results.classnames, "simple", verbose=False)
    check_results(results, classifier, [data for data, _ in pairs], [label for _, label in pairs])
    assert results.description == "tiny_photos test"


def test_tfds_class_names_can_be_given_and_missing_data_is_an_error(tfds_dir, clip_model, tmp_path):
    results = evaluate_tfds(clip_model, "tiny_photos", split="test[:2]", data_dir=tfds_dir, templates="simple",
                            classnames=["cat", "mug", "spaceship"], verbose=False)  # fmt: skip
    assert results.classnames == ["cat", "mug", "spaceship"] and results.num_examples == 2
    with pytest.raises(ValueError, match="3 class names given, but TFDS tiny_photos has 3|2 class names given"):
        evaluate_tfds(clip_model, "tiny_photos", data_dir=tfds_dir, classnames=["cat", "mug"], verbose=False)
    with pytest.raises(ValueError, match="not prepared in .*download=True"):
        evaluate_tfds(clip_model, "tiny_photos", data_dir=str(tmp_path / "empty"), verbose=False)


def test_tf_data_dataset_of_bytes_pixels_and_batches(folder_classifier):
    photos = dict(images.varied_photographs())
    names = ["astronaut_square", "chelsea_odd_size", "coffee_landscape", "rocket_portrait", "hubble_near_square"]
    labels = [0, 1, 2, 3, 1]
    encoded = [images.encode(photos[name], "png") for name in names]
    by_bytes = tf.data.Dataset.from_tensor_slices((encoded, labels))
    results = evaluate_zero_shot(folder_classifier, by_bytes.batch(2), batch_size=4, verbose=False)
    check_results(results, folder_classifier, encoded, labels)

    def pixels():
        for name, label in zip(names, labels):
            yield {"image": photos[name], "label": label}

    spec = {"image": tf.TensorSpec([None, None, 3], tf.uint8), "label": tf.TensorSpec([], tf.int32)}
    by_pixels = tf.data.Dataset.from_generator(pixels, output_signature=spec)
    from_pixels = evaluate_zero_shot(folder_classifier, by_pixels, verbose=False)
    np.testing.assert_array_equal(from_pixels.predictions, results.predictions)

    preprocessed = np.stack([images.reference_preprocess(data, 32) for data in encoded])
    ready = tf.data.Dataset.from_tensor_slices((preprocessed, labels))
    from_ready = evaluate_zero_shot(folder_classifier, ready, preprocessed=True, verbose=False)
    np.testing.assert_array_equal(from_ready.predictions, expected_predictions(folder_classifier, encoded)[0][:, :4])


def test_corrupt_bytes_in_a_dataset_are_named_by_position(folder_classifier):
    good = images.encode(images.photographs()["coffee"], "jpeg")
    dataset = tf.data.Dataset.from_tensor_slices(([good, good, CORRUPT_JPEG, good, b""], [2, 2, 1, 2, 0]))
    with pytest.raises(CorruptImageError, match="the image at index 2: .*(JPEG|jpeg)"):
        evaluate_zero_shot(folder_classifier, dataset, batch_size=2, verbose=False)
    results = evaluate_zero_shot(folder_classifier, dataset, batch_size=2, skip_errors=True, verbose=False)
    assert results.skipped == ["the image at index 2", "the image at index 4"] and results.num_examples == 3


def test_bad_labels_and_inputs(folder_classifier, clip_model):
    good = images.encode(images.photographs()["coffee"], "jpeg")
    with pytest.raises(ValueError, match="the image at index 1 has label 7, outside 0..3"):
        evaluate_zero_shot(folder_classifier, tf.data.Dataset.from_tensor_slices(([good, good], [0, 7])), verbose=False)
    with pytest.raises(ValueError, match="needs classnames"):
        evaluate_zero_shot(clip_model, tf.data.Dataset.from_tensor_slices(([good], [0])), verbose=False)
    with pytest.raises(ValueError, match="classifier has 4 classes but the data has 2"):
        evaluate_zero_shot(folder_classifier, tf.data.Dataset.from_tensor_slices(([good], [0])), classnames=["a", "b"])
    with pytest.raises(FileNotFoundError, match="does not exist or is not a folder"):
        evaluate_image_folder(clip_model, "/nonexistent/folder")
