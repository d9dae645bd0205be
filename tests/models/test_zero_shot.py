"""ZeroShotClassifier against OpenAI's zero-shot recipe run on OpenAI's reference model and tokenizer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
import keras_clip.models.zero_shot as zero_shot_module
from keras_clip.checkpoints.openai_state_dict import build_model
from keras_clip.models.zero_shot import ZeroShotClassifier
from keras_clip.text.imagenet_classnames import IMAGENET_CLASSNAMES
from keras_clip.text.templates import IMAGENET_TEMPLATES, SIMPLE_TEMPLATES
from tests.helpers import images
from tests.helpers.checkpoint_files import SMALL_VIT
from tests.helpers.model_inputs import random_images
from tests.helpers.openai_reference import random_reference_model
from tests.helpers.tiny_models import tiny_clip
from tests.helpers import siglip_reference
from tests.helpers.sentencepiece_models import write_siglip_like_model
from tests.helpers.zero_shot_reference import reference_class_embeddings, reference_probabilities

# Class embeddings: float32 text towers, ensembling in float64 (ours) vs float32 (reference).
EMBEDDING_TOLERANCE = 1e-5
# Probabilities (full-size ViT-B/32 or SMALL_VIT): float32 towers on photographs.
PROBABILITY_TOLERANCE = 1e-4
CLASSES = ["golden retriever", "kite (bird of prey)", "Geoffroy's spider monkey", "T-shirt"]


@pytest.fixture(scope="module")
def small_pair():
    reference, state_dict = random_reference_model(SMALL_VIT, seed=3)
    return reference, build_model(state_dict)


@pytest.fixture(scope="module")
def tiny_classifier():
    return ZeroShotClassifier(tiny_clip(seed=1), ["cat", "dog", "car"], templates="simple", verbose=False)


def photographs(resolution, names=("chelsea_odd_size", "coffee_landscape", "astronaut_square")):
    photos = dict(images.varied_photographs())
    return np.stack([images.reference_preprocess(images.encode(photos[name], "png"), resolution) for name in names])


def test_class_embeddings_match_openai_ensembling_with_all_80_templates(small_pair):
    reference, model = small_pair
    # A batch size that splits classes across batches and batches across classes.
    classifier = ZeroShotClassifier(model, CLASSES, templates="imagenet", batch_size=37, verbose=False)
    expected = reference_class_embeddings(reference, CLASSES, IMAGENET_TEMPLATES)
    ours = classifier.class_embeddings.numpy()
    assert ours.shape == (len(CLASSES), SMALL_VIT["embed_dim"]) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=EMBEDDING_TOLERANCE, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=-1), 1.0, atol=1e-6)
    assert not classifier.class_embeddings.trainable
    assert classifier.class_embeddings in classifier.non_trainable_weights


def assert_embeddings_and_probabilities_match_reference(reference, model):
    classnames, templates = CLASSES[:3], ["a photo of a {}.", "itap of my {}.", "a {} in a video game."]
    classifier = ZeroShotClassifier(model, classnames, templates=templates, batch_size=4, verbose=False)
    expected_embeddings = reference_class_embeddings(reference, classnames, templates)
    np.testing.assert_allclose(classifier.class_embeddings.numpy(), expected_embeddings, atol=EMBEDDING_TOLERANCE)

    batch = photographs(model.image_resolution)
    ours = classifier(batch)
    expected = reference_probabilities(reference, batch, expected_embeddings)
    assert ours.dtype == tf.float32 and ours.shape == (len(batch), len(classnames))
    np.testing.assert_allclose(ours.numpy(), expected, atol=PROBABILITY_TOLERANCE, rtol=0)
    # The check can fail: other class embeddings give other probabilities.
    shuffled = reference_probabilities(reference, batch, expected_embeddings[::-1].copy())
    assert np.abs(shuffled[:, ::-1] - expected).max() < PROBABILITY_TOLERANCE
    assert np.abs(shuffled - expected).max() > 100 * PROBABILITY_TOLERANCE


def test_small_vit_embeddings_and_probabilities_match_reference(small_pair):
    assert_embeddings_and_probabilities_match_reference(*small_pair)


@pytest.mark.full_size
def test_full_size_vit_b32_embeddings_and_probabilities_match_reference(vit_b32_reference, vit_b32_model):
    assert_embeddings_and_probabilities_match_reference(vit_b32_reference[0], vit_b32_model)


def test_probabilities_are_softmax_of_scaled_cosines(tiny_classifier):
    clip_model = tiny_classifier.clip_model
    batch = photographs(32)
    features = clip_model.encode_image(batch).numpy().astype(np.float64)
    features /= np.linalg.norm(features, axis=-1, keepdims=True)
    logits = np.exp(clip_model.logit_scale.numpy()) * features @ tiny_classifier.class_embeddings.numpy().T
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(tiny_classifier(batch).numpy(), expected, atol=1e-6)
    # Eagerly, in tf.function and in a Keras functional graph: the same numbers.
    traced = tf.function(lambda x: tiny_classifier(x))(tf.constant(batch))
    np.testing.assert_allclose(traced.numpy(), expected, atol=1e-6)
    inputs = keras.Input((32, 32, 3))
    functional = keras.Model(inputs, tiny_classifier(inputs))
    np.testing.assert_allclose(functional.predict(batch, verbose=0), expected, atol=1e-6)


def test_predict_labels(tiny_classifier):
    batch = photographs(32)
    probabilities = tiny_classifier(batch).numpy()
    labels = tiny_classifier.predict_labels(batch, top_k=2)
    assert len(labels) == len(batch)
    for row, predicted in zip(probabilities, labels):
        order = np.argsort(-row)[:2]
        assert [name for name, _ in predicted] == [tiny_classifier.classnames[i] for i in order]
        np.testing.assert_allclose([p for _, p in predicted], row[order], rtol=1e-6)
        assert all(isinstance(name, str) and isinstance(p, float) for name, p in predicted)
    assert all(len(row) == 3 for row in tiny_classifier.predict_labels(batch, top_k=50))


def test_attributes_and_config(tiny_classifier):
    assert tiny_classifier.classnames == ["cat", "dog", "car"] and type(tiny_classifier.classnames) is list
    assert tiny_classifier.templates == SIMPLE_TEMPLATES and type(tiny_classifier.templates) is list
    assert tiny_classifier.image_resolution == 32
    assert tiny_classifier.clip_model.embed_dim == tiny_classifier.class_embeddings.shape[1]
    config = tiny_classifier.get_config()
    assert config["classnames"] == ["cat", "dog", "car"] and config["templates"] == SIMPLE_TEMPLATES


def test_saves_and_loads_keras_without_recomputing_embeddings(tiny_classifier, tmp_path, monkeypatch):
    path = str(tmp_path / "classifier.keras")
    tiny_classifier.save(path)

    def fail(*args, **kwargs):
        raise AssertionError("loading a saved classifier must not embed the prompts again")

    monkeypatch.setattr(zero_shot_module, "ensemble_class_embeddings", fail)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, ZeroShotClassifier)
    assert restored.classnames == tiny_classifier.classnames and restored.templates == tiny_classifier.templates
    np.testing.assert_array_equal(restored.class_embeddings.numpy(), tiny_classifier.class_embeddings.numpy())
    batch = photographs(32)
    np.testing.assert_array_equal(restored(batch).numpy(), tiny_classifier(batch).numpy())


@pytest.mark.parametrize(
    "templates, expected",
    [
        ("imagenet", IMAGENET_TEMPLATES),
        ("simple", SIMPLE_TEMPLATES),
        ("a photo of a {}.", ["a photo of a {}."]),
        (("a {}.", "the {}!"), ["a {}.", "the {}!"]),
    ],
)
def test_template_forms(templates, expected, monkeypatch):
    def zeros(model, names, *_):
        return np.zeros((len(names), model.embed_dim))

    monkeypatch.setattr(zero_shot_module, "ensemble_class_embeddings", zeros)
    assert ZeroShotClassifier(tiny_clip(), ["cat"], templates=templates).templates == expected


@pytest.mark.parametrize(
    "templates, message",
    [
        ("a photo of a cat", "exactly one '{}'"),
        ("imagenett", "exactly one '{}'"),
        (["a {} and a {}"], "exactly one '{}'"),
        (["a {0}."], "exactly one '{}'"),
        ([], "At least one template"),
    ],
)
def test_bad_templates(templates, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        ZeroShotClassifier(tiny_clip(), ["cat"], templates=templates)


def test_bad_class_names_and_models():
    with pytest.raises(ValueError, match="at least one class name"):
        ZeroShotClassifier(tiny_clip(), [])
    with pytest.raises(TypeError, match="Class names must be strings"):
        ZeroShotClassifier(tiny_clip(), ["cat", 3])
    with pytest.raises(TypeError, match="keras_clip.CLIP"):
        ZeroShotClassifier(keras.Sequential([keras.layers.Dense(2)]), ["cat"])
    with pytest.raises(ValueError, match="more than the context length 77"):
        ZeroShotClassifier(tiny_clip(), ["cat " * 80], templates="a {}", verbose=False)


def test_published_data():
    # Counts and landmarks of OpenAI's notebook "Prompt Engineering for ImageNet".
    assert len(IMAGENET_TEMPLATES) == len(set(IMAGENET_TEMPLATES)) == 80
    assert SIMPLE_TEMPLATES[0] == "itap of a {}." and len(SIMPLE_TEMPLATES) == 7
    assert set(SIMPLE_TEMPLATES) <= set(IMAGENET_TEMPLATES)
    assert all(template.count("{}") == 1 for template in IMAGENET_TEMPLATES)
    assert len(IMAGENET_CLASSNAMES) == 1000 and len(set(IMAGENET_CLASSNAMES)) == 998
    assert IMAGENET_CLASSNAMES[0] == "tench" and IMAGENET_CLASSNAMES[999] == "toilet paper"
    assert IMAGENET_CLASSNAMES[21] == "kite (bird of prey)" and IMAGENET_CLASSNAMES[134] == "crane bird"
    assert IMAGENET_CLASSNAMES[517] == "construction crane" and IMAGENET_CLASSNAMES[677] == "metal nail"


def test_siglip_probabilities_are_transformers_sigmoids(tmp_path):
    """A SigLIP folder (transformers' SiglipModel, random weights) with its SentencePiece model: one template per
    class gives transformers' sigmoid(logits_per_image) from SiglipTokenizer's ids, within 1e-5."""
    import torch
    from transformers import SiglipTokenizer

    reference = siglip_reference.reference_model(siglip_reference.siglip_config("siglip_b16"), seed=4)
    folder = siglip_reference.write_transformers_folder(tmp_path / "siglip", reference)
    spiece = write_siglip_like_model(tmp_path / "siglip" / "spiece.model")
    model, _ = keras_clip.load(folder, cache_dir=str(tmp_path / "cache"), verbose=False)
    with pytest.raises(ValueError, match="need its tokenizer"):
        ZeroShotClassifier(model, ["cat"], verbose=False)
    classnames = ["cat", "dog", "large red table"]
    classifier = ZeroShotClassifier(model, classnames, templates=["a photo of a {}."], verbose=False,
                                    tokenizer=keras_clip.get_tokenizer(folder))  # fmt: skip
    images = random_images(3, siglip_reference.RESOLUTION, seed=8)
    ids = SiglipTokenizer(spiece)([f"a photo of a {name}." for name in classnames], padding="max_length",
                                  max_length=siglip_reference.CONTEXT_LENGTH, truncation=True)["input_ids"]  # fmt: skip
    with torch.no_grad():
        pixels = torch.from_numpy(np.ascontiguousarray(np.transpose(images, (0, 3, 1, 2))))
        logits = reference(input_ids=torch.tensor(ids), pixel_values=pixels).logits_per_image
    expected = torch.sigmoid(logits).numpy()
    probabilities = np.asarray(classifier(images))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5, rtol=0)
    assert np.abs(probabilities.sum(axis=1) - 1).max() > 1e-3  # independent per class, not a softmax
