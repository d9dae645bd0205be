"""Validation callbacks: the numbers they log are keras_clip.evaluation's, and Keras' other callbacks see them."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.evaluation import CorruptImageError, evaluate_retrieval, evaluate_zero_shot
from keras_clip.image.settings import Preprocessing
from keras_clip.models.zero_shot import ZeroShotClassifier
from keras_clip.training import RetrievalRecall, ZeroShotAccuracy
from tests.helpers.background import Job
from tests.helpers.caption_files import captioned_photos, corrupt_image, write_caption_dataset
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.tiny_models import tiny_clip

CLASSNAMES = ["cat", "temple", "flower", "cup of coffee", "astronaut", "rocket"]


def training_batches(count=16, batch=8):
    data = {"images": random_images(count, 32, seed=4), "tokens": random_tokens(count, seed=4)}
    return tf.data.Dataset.from_tensor_slices(data).batch(batch, drop_remainder=True)


def compiled_model(seed=0):
    model = tiny_clip(seed=seed)
    model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3))
    return model


@pytest.fixture(scope="module")
def photos():
    return captioned_photos(10, seed=1, captions_per_photo=2)


def test_zero_shot_accuracy_logs_what_the_evaluation_computes(photos):
    images = [photo.data for photo in photos]  # encoded PNG and JPEG bytes of varied sizes
    labels = np.arange(len(photos)) % len(CLASSNAMES)
    callback = ZeroShotAccuracy(images, labels, CLASSNAMES, templates=["a photo of a {}.", "a {}"], top_k=(1, 2, 5))
    model = compiled_model()
    history = model.fit(training_batches(), epochs=2, verbose=0, callbacks=[callback]).history

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    expected = evaluate_zero_shot(model, dataset, CLASSNAMES, templates=["a photo of a {}.", "a {}"], verbose=False)
    assert set(history) >= {"val_zero_shot_top1", "val_zero_shot_top2", "val_zero_shot_top5", "loss"}
    assert len(history["val_zero_shot_top1"]) == 2
    for k in (1, 2, 5):
        assert history[f"val_zero_shot_top{k}"][-1] == pytest.approx(expected.accuracy(k), abs=1e-12)
    assert callback.results.top1 == pytest.approx(expected.top1) and callback.results.num_examples == len(photos)


def test_zero_shot_accuracy_on_a_hand_checked_case(photos):
    """Half the images labelled with the class a classifier built independently predicts, half with the
    least probable class: top-1 and top-5 accuracy (6 classes) are exactly 0.5."""
    model = compiled_model(seed=3)
    images = [photo.data for photo in photos]
    # The classifier's own path: ImagePreprocessor on the encoded bytes (the callback decodes in tf.data).
    classifier = ZeroShotClassifier(model, CLASSNAMES, templates="simple", verbose=False)
    probabilities = np.asarray(classifier(keras_clip.ImagePreprocessor(model.image_resolution)(tf.constant(images))))
    ordered = np.sort(probabilities, axis=1)
    assert (ordered[:, -1] - ordered[:, -2] > 1e-5).all() and (ordered[:, 1] - ordered[:, 0] > 1e-5).all()
    best, worst = probabilities.argmax(axis=1), probabilities.argmin(axis=1)
    labels = np.where(np.arange(len(images)) % 2 == 0, best, worst)

    callback = ZeroShotAccuracy(images, labels, CLASSNAMES, templates="simple", prefix="photos_")
    callback.set_model(model)
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0, "photos_zero_shot_top1": 0.5, "photos_zero_shot_top5": 0.5}

    callback = ZeroShotAccuracy(images, best, CLASSNAMES, templates="simple", top_k=1)
    callback.set_model(model)
    assert callback.evaluate(model) == {"val_zero_shot_top1": 1.0}


class Recorder(keras.callbacks.Callback):
    """Records the logs each epoch's later callbacks see."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(dict(logs))


def test_other_callbacks_see_the_numbers(tmp_path, photos):
    """EarlyStopping stops on them, CSVLogger writes them, each epoch's number is its own weights'."""
    images = np.stack([np.asarray(tf.image.resize(photo.pixels, (40, 48))).astype(np.uint8) for photo in photos])
    labels = np.arange(len(photos)) % len(CLASSNAMES)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)  # batched pixels [N, H, W, 3]
    zero_shot = ZeroShotAccuracy(dataset, classnames=CLASSNAMES, templates="a photo of a {}.", top_k=1)

    class EvaluateHere(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values = []

        def on_epoch_end(self, epoch, logs=None):
            results = evaluate_zero_shot(self.model, dataset, CLASSNAMES, "a photo of a {}.", verbose=False)
            self.values.append(results.top1)

    here, recorder = EvaluateHere(), Recorder()
    # No epoch can improve on the first by 2: EarlyStopping stops after the second, if it finds the number.
    stop = keras.callbacks.EarlyStopping("val_zero_shot_top1", mode="max", patience=1, min_delta=2.0)
    csv_path = str(tmp_path / "log.csv")
    model = compiled_model(seed=1)
    history = model.fit(training_batches(), epochs=6, verbose=0,
                        callbacks=[zero_shot, here, recorder, stop, keras.callbacks.CSVLogger(csv_path)])  # fmt: skip
    assert len(history.history["loss"]) == 2  # stopped by EarlyStopping
    assert [logs["val_zero_shot_top1"] for logs in recorder.seen] == pytest.approx(here.values, abs=1e-12)
    with open(csv_path) as file:
        header = file.readline().strip().split(",")
    assert "val_zero_shot_top1" in header


def test_frequency_and_image_folder(tmp_path):
    for label, name in enumerate(["cat", "rocket"]):
        os.makedirs(tmp_path / name)
        for index, photo in enumerate(captioned_photos(3, seed=label, formats=("png",))):
            (tmp_path / name / f"{index}.png").write_bytes(photo.data)
    callback = ZeroShotAccuracy(str(tmp_path), templates="a photo of a {}.", top_k=1, frequency=2)
    recorder = Recorder()
    history = compiled_model().fit(training_batches(), epochs=3, verbose=0, callbacks=[callback, recorder]).history
    assert ["val_zero_shot_top1" in logs for logs in recorder.seen] == [False, True, False]
    assert history["val_zero_shot_top1"] == [callback.latest["val_zero_shot_top1"]]
    assert callback.results.classnames == ["cat", "rocket"] and callback.results.num_examples == 6


def test_retrieval_recall_from_a_caption_file_logs_what_the_evaluation_computes(tmp_path, photos):
    source = write_caption_dataset(str(tmp_path), "csv", photos)  # two rows (captions) per image
    callback = RetrievalRecall(source, ks=(1, 3))
    recorder = Recorder()
    model = compiled_model(seed=2)
    history = model.fit(training_batches(), epochs=1, verbose=0, callbacks=[callback, recorder]).history

    pairs = tf.data.Dataset.from_tensor_slices(([p.data for p in photos], [p.captions for p in photos]))
    expected = evaluate_retrieval(model, pairs, ks=(1, 3), verbose=False)
    assert expected.num_captions == 20 and callback.results.num_captions == 20
    for k in (1, 3):
        assert history[f"val_image_to_text_recall_at_{k}"] == [pytest.approx(expected.image_to_text[k], abs=1e-12)]
        assert history[f"val_text_to_image_recall_at_{k}"] == [pytest.approx(expected.text_to_image[k], abs=1e-12)]
    assert "val_text_to_image_recall_at_3" in recorder.seen[0]


class ColourModel:
    """A stand-in CLIP whose embeddings are colours: an image's is its mean RGB in [0, 1], a caption's the
    colour its first word names. Cosine similarities are then known by hand."""

    image_resolution, context_length, embed_dim = 8, 77, 3
    preprocessing = Preprocessing(8)
    COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1)}

    def __init__(self):
        ids = keras_clip.tokenize(list(self.COLOURS))[:, 1]
        self.by_token = dict(zip(ids.tolist(), self.COLOURS.values()))

    def encode_image(self, images):  # undo OpenAI's normalisation
        pixels = np.asarray(images) * keras_clip.OPENAI_IMAGE_STD + keras_clip.OPENAI_IMAGE_MEAN
        return np.round(pixels.mean(axis=(1, 2)), 3)

    def encode_text(self, tokens):
        return np.array([self.by_token[int(token)] for token in np.asarray(tokens)[:, 1]], np.float32)


def test_retrieval_recall_on_a_hand_checked_case():
    """Red, green and yellow squares captioned "red", "green" and "blue" (wrong). Image -> text: the yellow
    square ranks "red" and "green" (cosine 0.71) above "blue" (0): found at K=3 only. Text -> image: "blue"
    is equally far (cosine 0) from every image, a tie counted in its favour, so every caption is found at 1."""
    squares = np.zeros((3, 8, 8, 3), np.uint8)
    squares[0, ..., 0] = squares[1, ..., 1] = squares[2, ..., :2] = 255
    callback = RetrievalRecall(squares, ["red", "green", ["blue"]], ks=(1, 2, 3), prefix="colours_")
    callback.set_model(ColourModel())
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs == pytest.approx({
        "colours_image_to_text_recall_at_1": 2 / 3, "colours_image_to_text_recall_at_2": 2 / 3,
        "colours_image_to_text_recall_at_3": 1.0, "colours_text_to_image_recall_at_1": 1.0,
        "colours_text_to_image_recall_at_2": 1.0, "colours_text_to_image_recall_at_3": 1.0,
    }, abs=1e-12)  # fmt: skip


def test_missing_and_corrupt_validation_images(tmp_path, photos):
    source = write_caption_dataset(str(tmp_path), "csv", photos[:4], missing=[photos[1].name])
    with pytest.raises(FileNotFoundError, match=photos[1].filename):
        RetrievalRecall(source)
    callback = RetrievalRecall(source, skip_errors=True, ks=(1,))
    callback.evaluate(tiny_clip())
    assert callback.results.num_images == 3 and callback.results.num_captions == 6
    assert [os.path.basename(name) for name in callback.results.skipped] == [photos[1].filename]

    images = [photos[0].data, corrupt_image("truncated"), photos[2].data]
    with pytest.raises(CorruptImageError, match="the image at index 1"):
        ZeroShotAccuracy(images, [0, 1, 2], CLASSNAMES).evaluate(tiny_clip())
    callback = ZeroShotAccuracy(images, [0, 1, 2], CLASSNAMES, skip_errors=True)
    callback.evaluate(tiny_clip())
    assert callback.results.skipped == ["the image at index 1"] and callback.results.num_examples == 2


def test_argument_errors(photos):
    images = [photo.data for photo in photos[:2]]
    dataset = tf.data.Dataset.from_tensor_slices((images, [0, 1]))
    with pytest.raises(ValueError, match="classnames"):
        ZeroShotAccuracy(dataset)
    with pytest.raises(ValueError, match="carries its own labels"):
        ZeroShotAccuracy(dataset, [0, 1], CLASSNAMES)
    with pytest.raises(ValueError, match="need labels"):
        ZeroShotAccuracy(images, classnames=CLASSNAMES)
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        ZeroShotAccuracy(images, [0, 1, 2], CLASSNAMES)
    with pytest.raises(ValueError, match="at most 5"):
        ZeroShotAccuracy(images, [0, 1], CLASSNAMES, top_k=(1, 10))
    with pytest.raises(ValueError, match="frequency"):
        ZeroShotAccuracy(images, [0, 1], CLASSNAMES, frequency=0)
    with pytest.raises(ValueError, match="not a folder"):
        ZeroShotAccuracy("/no/such/folder", classnames=CLASSNAMES)
    with pytest.raises(ValueError, match="need captions"):
        RetrievalRecall(images)
    with pytest.raises(ValueError, match="Image 1 needs one caption"):
        RetrievalRecall(images, ["a cat", []])
    with pytest.raises(ValueError, match="2 images but 1 caption"):
        RetrievalRecall(images, ["a cat"])
    with pytest.raises(ValueError, match="ks must be positive"):
        RetrievalRecall(images, ["a", "b"], ks=(0,))


MIRRORED_SCRIPT = """
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras_clip
from keras_clip.evaluation import evaluate_retrieval, evaluate_zero_shot
from tests.helpers.caption_files import captioned_photos
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.tiny_models import TINY_VIT

photos = captioned_photos(6, seed=1)
images, labels, captions = [p.data for p in photos], [0, 1, 2, 0, 1, 2], [p.captions[0] for p in photos]
zero_shot = keras_clip.training.ZeroShotAccuracy(images, labels, ["cat", "temple", "flower"], top_k=(1, 2))
recall = keras_clip.training.RetrievalRecall(images, captions, ks=(1, 2))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
with strategy.scope():
    model = keras_clip.CLIP(**TINY_VIT)
    model.compile(optimizer=keras_clip.training.optimizer(model, 1e-3))
data = {"images": random_images(16, 32, seed=4), "tokens": random_tokens(16, seed=4)}
history = model.fit(tf.data.Dataset.from_tensor_slices(data).batch(8), epochs=1, verbose=0,
                    callbacks=[zero_shot, recall]).history
expected_zero_shot = evaluate_zero_shot(model, tf.data.Dataset.from_tensor_slices((images, labels)),
                                        ["cat", "temple", "flower"], templates="simple", verbose=False)
expected_recall = evaluate_retrieval(model, tf.data.Dataset.from_tensor_slices((images, captions)), ks=(1, 2),
                                     verbose=False)
print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                  "logged": {key: values[-1] for key, values in history.items() if key.startswith("val_")},
                  "expected": {"val_zero_shot_top1": expected_zero_shot.accuracy(1),
                               "val_zero_shot_top2": expected_zero_shot.accuracy(2),
                               "val_image_to_text_recall_at_1": expected_recall.image_to_text[1],
                               "val_image_to_text_recall_at_2": expected_recall.image_to_text[2],
                               "val_text_to_image_recall_at_1": expected_recall.text_to_image[1],
                               "val_text_to_image_recall_at_2": expected_recall.text_to_image[2]}}))
"""


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Two replicas need logical CPUs, set before TensorFlow starts: a subprocess, run in the background.
MIRRORED = Job([sys.executable, "-c", MIRRORED_SCRIPT], cwd=ROOT,
               env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))


@pytest.mark.full_size  # training under MirroredStrategy itself: tests/training/test_distributed.py
@pytest.mark.background(MIRRORED)
def test_callbacks_under_mirrored_strategy():
    """Two replicas (logical CPUs): the numbers of a direct evaluation."""
    process = MIRRORED.result()
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["logged"] == pytest.approx(result["expected"], abs=1e-12)
