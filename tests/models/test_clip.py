"""The Keras CLIP against OpenAI's reference implementation, for all nine architectures."""

import keras
import numpy as np
import pytest

import keras_clip
from tests.helpers.checkpoint_files import SMALL_RESNET
from tests.helpers.model_configs import architecture, reduced_architecture
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.openai_reference import random_reference_model, reference_outputs
from tests.helpers.tiny_models import TINY_VIT

# encode_image / encode_text: max |ours - reference| <= 1e-4 * max |reference| (issue 2).
FEATURE_TOLERANCE = 1e-4
# model({...}) logits: max |ours - reference| <= 1e-3 * max |reference| (relative to the largest logit,
# since single logits can be arbitrarily close to zero).
LOGIT_TOLERANCE = 1e-3

# Full size in tests of their own (ViT-B/32 with the session fixtures).
OWN_FULL_SIZE_TEST = ("ViT-B/32", "RN50")


def trainable_parameter_count(model):
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def assert_matches_reference(config, batch=2, seed=0, reference=None, model=None):
    """Our model against OpenAI's on random weights and inputs; `reference` and `model` when already built."""
    if reference is None:
        reference, state_dict = random_reference_model(config, seed=seed)
        model = keras_clip.build_model(state_dict)
    images = random_images(batch, config["image_resolution"], seed=seed)
    tokens = random_tokens(batch, config["context_length"], seed=seed)
    expected = reference_outputs(reference, images, tokens)

    for name, ours in (("image_features", model.encode_image(images)), ("text_features", model.encode_text(tokens))):
        ours, theirs = np.asarray(ours), expected[name]
        assert ours.shape == theirs.shape
        error = np.abs(ours - theirs).max() / np.abs(theirs).max()
        assert error <= FEATURE_TOLERANCE, f"{name}: relative max error {error:.2e}"

    logits_per_image, logits_per_text = model({"images": images, "tokens": tokens})
    for ours, theirs in ((logits_per_image, expected["logits_per_image"]),
                         (logits_per_text, expected["logits_per_text"])):
        ours = np.asarray(ours)
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= LOGIT_TOLERANCE * np.abs(theirs).max()

    reference_count = sum(parameter.numel() for parameter in reference.parameters())
    assert trainable_parameter_count(model) == reference_count
    return model


# RN101, RN50x16, RN50x64 and ViT-L/14@336px differ from the others only in their numbers (depths, widths,
# resolution), so they run with `full_size`; RN50, RN50x4 and the ViTs cover every code path by default.
NUMBERS_ONLY = ("RN101", "RN50x16", "RN50x64", "ViT-L/14@336px")


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.full_size) if name in NUMBERS_ONLY else name
                                  for name in keras_clip.available_models()])  # fmt: skip
def test_reduced_width_architecture_matches_reference(name):
    assert_matches_reference(reduced_architecture(name))


@pytest.mark.full_size
def test_full_size_vit_b32_matches_reference(vit_b32_reference, vit_b32_model):
    assert_matches_reference(architecture("ViT-B/32"), reference=vit_b32_reference[0], model=vit_b32_model)


@pytest.mark.full_size
def test_full_size_rn50_matches_reference():
    assert_matches_reference(architecture("RN50"))


@pytest.mark.full_size
@pytest.mark.parametrize("name", [n for n in keras_clip.available_models() if n not in OWN_FULL_SIZE_TEST])
def test_every_full_size_architecture_matches_reference(name):
    assert_matches_reference(architecture(name), seed=1)


@pytest.mark.parametrize("config", [TINY_VIT, SMALL_RESNET], ids=["ViT", "ModifiedResNet"])
@pytest.mark.parametrize("batch", [1, 33])
def test_batch_sizes(config, batch):
    assert_matches_reference(config, batch=batch, seed=batch)


@pytest.mark.full_size
@pytest.mark.parametrize("name", ["ViT-B/32", "RN50"])
@pytest.mark.parametrize("batch", [1, 33])
def test_batch_sizes_at_full_depth_and_resolution(name, batch):
    assert_matches_reference(reduced_architecture(name), batch=batch, seed=batch)


# OpenAI's parameter counts (sum of numel over model.parameters(), logit_scale included).
OPENAI_PARAMETER_COUNTS = {"RN101": 119_688_033, "RN50x4": 178_300_601, "ViT-B/16": 149_620_737}


@pytest.mark.full_size
@pytest.mark.parametrize("name", sorted(OPENAI_PARAMETER_COUNTS))
def test_create_model_has_openai_parameter_count(name):
    assert trainable_parameter_count(keras_clip.create_model(name)) == OPENAI_PARAMETER_COUNTS[name]


def test_available_models_are_openais_names():
    assert keras_clip.available_models() == [
        "RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px",
    ]
    with pytest.raises(ValueError, match="Unknown CLIP model 'ViT-H/14'.*ViT-B/32"):
        keras_clip.create_model("ViT-H/14")


@pytest.mark.parametrize("name", ["ViT-B/32", "RN50"])
def test_wrong_image_shape_names_the_expected_shape(name):
    model = keras_clip.CLIP(**reduced_architecture(name))
    with pytest.raises(ValueError, match=r"\(batch, 224, 224, 3\).*got shape \(1, 256, 256, 3\)"):
        model.encode_image(np.zeros((1, 256, 256, 3), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 224, 224, 3\).*got shape \(1, 224, 224, 1\)"):
        model.encode_image(np.zeros((1, 224, 224, 1), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 224, 224, 3\).*NHWC.*got shape \(1, 3, 224, 224\)"):
        model.encode_image(np.zeros((1, 3, 224, 224), "float32"))


def test_wrong_token_length_names_the_context_length():
    model = keras_clip.CLIP(**reduced_architecture("ViT-B/32"))
    with pytest.raises(ValueError, match=r"tokens of shape \(batch, 77\); got shape \(2, 50\)"):
        model.encode_text(np.zeros((2, 50), "int32"))


@pytest.mark.parametrize("config", [TINY_VIT, SMALL_RESNET], ids=["ViT", "ModifiedResNet"])
def test_keras_and_weights_h5_round_trip_exactly(config, tmp_path):
    model = keras_clip.CLIP(**config)
    images, tokens = random_images(2, config["image_resolution"]), random_tokens(2)
    # Move BatchNorm statistics and logit_scale off their initial values so that losing them would show.
    for weight in model.weights:
        if "moving" in weight.path or weight.path.endswith("logit_scale"):
            weight.assign(weight.numpy() + np.random.default_rng(0).uniform(0.1, 0.5, weight.shape))
    expected = [np.asarray(x) for x in model({"images": images, "tokens": tokens})]

    model.save(tmp_path / "clip.keras")
    reloaded = keras.saving.load_model(tmp_path / "clip.keras")
    assert isinstance(reloaded, keras_clip.CLIP) and reloaded.get_config() == model.get_config()
    for ours, theirs in zip(reloaded({"images": images, "tokens": tokens}), expected):
        np.testing.assert_array_equal(np.asarray(ours), theirs)

    model.save_weights(tmp_path / "clip.weights.h5")
    fresh = keras_clip.CLIP(**config)
    fresh.load_weights(tmp_path / "clip.weights.h5")
    for ours, theirs in zip(fresh({"images": images, "tokens": tokens}), expected):
        np.testing.assert_array_equal(np.asarray(ours), theirs)


def assert_mixed_bfloat16_stays_close_to_float32(state_dict, full):
    """A mixed_bfloat16 build of `state_dict`: float32 embeddings within cosine 0.99 of `full`'s."""
    mixed = keras_clip.build_model(state_dict, dtype="mixed_bfloat16")
    assert mixed.visual.transformer.resblocks[0].c_fc.compute_dtype == "bfloat16"
    images, tokens = random_images(4, full.image_resolution, seed=3), random_tokens(4, seed=3)
    for encode in ("encode_image", "encode_text"):
        reference = np.asarray(getattr(full, encode)(images if encode == "encode_image" else tokens))
        reduced = getattr(mixed, encode)(images if encode == "encode_image" else tokens)
        assert reduced.dtype == "float32"
        reduced = np.asarray(reduced)
        cosine = np.sum(reference * reduced, -1) / np.linalg.norm(reference, axis=-1) / np.linalg.norm(reduced, axis=-1)
        assert cosine.min() >= 0.99, (encode, cosine)
    logits, _ = mixed({"images": images, "tokens": tokens})
    assert logits.dtype == "float32" and np.isfinite(np.asarray(logits)).all()


def test_mixed_bfloat16_embeddings_stay_close_to_float32_reduced_width():
    _, state_dict = random_reference_model(reduced_architecture("ViT-B/32"), seed=0)
    assert_mixed_bfloat16_stays_close_to_float32(state_dict, keras_clip.build_model(state_dict))


@pytest.mark.full_size
def test_mixed_bfloat16_embeddings_stay_close_to_float32(vit_b32_reference, vit_b32_model):
    assert_mixed_bfloat16_stays_close_to_float32(vit_b32_reference[1], vit_b32_model)


def test_preprocessing_travels_with_the_model_through_keras_files(tmp_path):
    from keras_clip.image.settings import Preprocessing

    model = keras_clip.CLIP(**TINY_VIT)
    assert model.preprocessing == Preprocessing(TINY_VIT["image_resolution"])  # OpenAI's by default
    model.preprocessing = Preprocessing(TINY_VIT["image_resolution"], mean=(0.5,) * 3, std=(0.5,) * 3,
                                        resize_mode="squash")  # fmt: skip
    model.save(tmp_path / "model.keras")
    assert keras.saving.load_model(tmp_path / "model.keras").preprocessing == model.preprocessing
    with pytest.raises(ValueError, match="Preprocessing for 224-pixel images does not fit a model of 32-pixel"):
        model.preprocessing = Preprocessing(224)
