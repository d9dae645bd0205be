"""ImagePreprocessor / preprocess_image against OpenAI's pipeline (torchvision on PIL, reproduced in
tests/helpers/images.py) on real photographs, in every execution mode, and with bad input."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_clip.checkpoints.openai_state_dict import build_model
from keras_clip.errors import CorruptImageError, ImageTooLargeError
from keras_clip.image.preprocessing import ImagePreprocessor, normalize_image, preprocess_image
from tests.helpers import image_bombs, images
from tests.helpers.memory import capped_job, capped_result
from tests.helpers.checkpoint_files import SMALL_VIT
from tests.helpers.openai_reference import random_reference_model

# One grey level after normalisation, in the channel with the smallest standard deviation.
ONE_GREY_LEVEL = 1.0 / 255.0 / min(images.OPENAI_STD) + 1e-6


def encoded_photographs(fmt):
    return [(name, images.encode(pixels, fmt)) for name, pixels in images.varied_photographs()]


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_matches_openai_pipeline_on_photographs(fmt):
    preprocess = ImagePreprocessor(224)
    for name, data in encoded_photographs(fmt):
        ours = preprocess(tf.constant([data])).numpy()[0]
        # Stricter than the mean difference of 0.01: PIL's fixed-point resampling is reproduced.
        np.testing.assert_array_equal(ours, images.reference_preprocess(data, 224), err_msg=name)


def test_matches_openai_pipeline_at_336_pixels_and_in_one_batch():
    photos = images.varied_photographs()[::3]
    batch = tf.constant([images.encode(pixels, "jpeg") for _, pixels in photos])
    ours = ImagePreprocessor(336)(batch).numpy()
    assert ours.shape == (len(photos), 336, 336, 3) and ours.dtype == np.float32
    for (name, _), data, processed in zip(photos, batch.numpy(), ours):
        np.testing.assert_array_equal(processed, images.reference_preprocess(data, 336), err_msg=name)


# Settings open_clip's checkpoints use (model_configs / pretrained.py): SigLIP's and CLIPA's, a bilinear
# "shortest" one (MobileCLIP), and "longest" padding.
OTHER_SETTINGS = {
    "siglip": dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic", resize_mode="squash"),
    "clipa": dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation="bilinear",
                  resize_mode="squash"),
    "bilinear_shortest": dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear"),
    "longest": dict(interpolation="bicubic", resize_mode="longest"),
}  # fmt: skip


@pytest.mark.parametrize("settings", sorted(OTHER_SETTINGS))
def test_other_checkpoint_settings_match_open_clips_pipeline_bit_for_bit(settings):
    kwargs = OTHER_SETTINGS[settings]
    preprocess = ImagePreprocessor(224, **kwargs)
    photos = encoded_photographs("png")[::2]
    ours = preprocess(tf.constant([data for _, data in photos])).numpy()
    for (name, data), processed in zip(photos, ours):
        np.testing.assert_array_equal(processed, images.reference_preprocess(data, 224, **kwargs), err_msg=name)
    assert ImagePreprocessor.from_config(preprocess.get_config()).settings == preprocess.settings


def test_a_6000_by_4000_jpeg():
    data = images.large_jpeg(6000, 4000)
    np.testing.assert_array_equal(preprocess_image(data, 224).numpy(), images.reference_preprocess(data, 224))


def assert_embeddings_match_reference_pipeline_and_model(reference, model):
    import torch

    encoded = [data for _, data in encoded_photographs("jpeg")[:8]]
    ours = model.encode_image(ImagePreprocessor(224)(tf.constant(encoded))).numpy()
    reference_images = np.stack([images.reference_preprocess(data, 224) for data in encoded])
    with torch.no_grad():
        expected = reference.encode_image(torch.from_numpy(reference_images).permute(0, 3, 1, 2)).numpy()
    cosine = np.sum(ours * expected, axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.999, cosine


def test_small_vit_embeddings_match_reference_pipeline_and_model():
    reference, state_dict = random_reference_model(dict(SMALL_VIT, image_resolution=224, vision_patch_size=32))
    assert_embeddings_match_reference_pipeline_and_model(reference, build_model(state_dict))


@pytest.mark.full_size
def test_vit_b32_embeddings_match_reference_pipeline_and_model(vit_b32_reference, vit_b32_model):
    assert_embeddings_match_reference_pipeline_and_model(vit_b32_reference[0], vit_b32_model)


def mixed_size_batch():
    photos = images.varied_photographs()
    return [images.encode(pixels, fmt) for (_, pixels), fmt in zip(photos[:6], ["jpeg", "png", "gif", "bmp"] * 2)]


def test_eager_tf_function_and_tf_data_are_identical():
    encoded = mixed_size_batch()
    preprocess = ImagePreprocessor(224)
    eager = preprocess(tf.constant(encoded)).numpy()
    graph = tf.function(preprocess)(tf.constant(encoded)).numpy()
    batched = next(iter(tf.data.Dataset.from_tensor_slices(encoded).batch(len(encoded)).map(preprocess))).numpy()
    per_element = tf.data.Dataset.from_tensor_slices(encoded).map(
        lambda data: preprocess_image(data, 224), num_parallel_calls=2
    )
    np.testing.assert_array_equal(graph, eager)
    np.testing.assert_array_equal(batched, eager)
    np.testing.assert_array_equal(np.stack(list(per_element.as_numpy_iterator())), eager)


def test_saved_model_serves_encoded_images_with_core_ops_only(tmp_path):
    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.preprocessor = ImagePreprocessor(224)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, encoded):
            return {"images": self.preprocessor(encoded)}

    encoded = tf.constant(mixed_size_batch())
    path = os.path.join(tmp_path, "preprocessor")
    module = Serving()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    np.testing.assert_array_equal(loaded(encoded=encoded)["images"].numpy(), ImagePreprocessor(224)(encoded).numpy())

    graph = loaded.graph.as_graph_def()
    op_types = {node.op for node in graph.node}
    op_types |= {node.op for function in graph.library.function for node in function.node_def}
    not_core = {op for op in op_types if not op.startswith("_") and not hasattr(tf.raw_ops, op)}
    assert not not_core, f"ops outside core TensorFlow (TF Serving may lack them): {not_core}"
    assert not op_types & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


def test_keras_model_with_string_input_saves_and_loads(tmp_path):
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, ImagePreprocessor(64)(inputs))
    encoded = np.array(mixed_size_batch()[:3], dtype=object)
    before = model(encoded).numpy()
    assert before.shape == (3, 64, 64, 3)
    path = os.path.join(tmp_path, "preprocessor.keras")
    model.save(path)
    np.testing.assert_array_equal(keras.saving.load_model(path)(encoded).numpy(), before)
    # Keras' own SavedModel export (it traces with AutoGraph off) serves the same.
    model.export(os.path.join(tmp_path, "exported"), format="tf_saved_model", verbose=False)
    exported = tf.saved_model.load(os.path.join(tmp_path, "exported"))
    np.testing.assert_array_equal(exported.serve(tf.constant(list(encoded))).numpy(), before)


def test_uint8_pixels_equal_their_lossless_encoding():
    photo = images.photographs()["rocket"][:300, :400]
    pixels = np.stack([photo, photo[::-1], photo[:, ::-1]])
    encoded = tf.constant([images.encode(image, "png") for image in pixels])
    np.testing.assert_array_equal(preprocess_image(pixels, 224).numpy(), preprocess_image(encoded, 224).numpy())


def test_float_pixels_in_0_255_match_uint8_within_rounding():
    pixels = images.photographs()["chelsea"][None]
    from_uint8 = preprocess_image(pixels, 224).numpy()
    from_float = preprocess_image(pixels.astype(np.float32), 224).numpy()
    assert from_float.dtype == np.float32
    assert np.abs(from_float - from_uint8).mean() < 0.5 * ONE_GREY_LEVEL
    assert np.abs(from_float - from_uint8).max() < 2 * ONE_GREY_LEVEL


def test_grayscale_and_rgba_pixels_become_rgb():
    rgb = images.photographs()["astronaut"][None]
    gray = rgb[..., :1]
    np.testing.assert_array_equal(
        preprocess_image(gray, 224).numpy(), preprocess_image(np.repeat(gray, 3, axis=-1), 224).numpy()
    )
    rgba = np.concatenate([rgb, np.full_like(rgb[..., :1], 7)], axis=-1)
    np.testing.assert_array_equal(preprocess_image(rgba, 224).numpy(), preprocess_image(rgb, 224).numpy())


def test_single_images_give_single_outputs():
    photo = images.photographs()["coffee"]
    data = images.encode(photo, "png")
    assert preprocess_image(data, 224).shape == (224, 224, 3)
    assert ImagePreprocessor(224)(photo).shape == (224, 224, 3)
    np.testing.assert_array_equal(ImagePreprocessor(224)(data).numpy(), preprocess_image(photo[None], 224)[0])


def test_normalisation_is_pytorchs_float32_arithmetic_eagerly_in_graphs_and_in_tf_data():
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    import torch  # the reference: ToTensor + Normalize in float32
    expected = (torch.from_numpy(values).float().div(255) - torch.tensor(images.OPENAI_MEAN)) / torch.tensor(
        images.OPENAI_STD
    )
    expected = expected.numpy()
    np.testing.assert_array_equal(normalize_image(values).numpy(), expected)
    np.testing.assert_array_equal(tf.function(normalize_image)(values).numpy(), expected)
    in_tf_data = tf.data.Dataset.from_tensors(values[0]).map(normalize_image)
    np.testing.assert_array_equal(next(iter(in_tf_data)).numpy(), expected[0])
    np.testing.assert_array_equal(normalize_image(values.astype(np.float32)).numpy(), expected)


def test_corrupt_element_is_named_eagerly_and_in_graphs():
    good = images.encode(images.photographs()["coffee"], "jpeg")
    truncated = good[: len(good) // 3]
    preprocess = ImagePreprocessor(224)
    with pytest.raises(CorruptImageError, match="the image at index 1: .*Invalid JPEG data") as error:
        preprocess(tf.constant([good, truncated, good]))
    assert error.value.index == 1 and error.value.path is None
    with pytest.raises(CorruptImageError, match="Could not decode cat.jpg: .*Invalid JPEG data"):
        preprocess_image(truncated, 224, path="cat.jpg")
    with pytest.raises(tf.errors.InvalidArgumentError, match="the image at index 2: its 9 bytes are not a JPEG"):
        tf.function(preprocess)(tf.constant([good, good, b"not image"]))
    # The decoders' own errors are caught in graphs too: the message names the image.
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"the image at index 1: its {len(truncated)} bytes are not a valid JPEG file"):
        tf.function(preprocess)(tf.constant([good, truncated]))
    dataset = tf.data.Dataset.from_tensor_slices([good, truncated]).batch(2).map(preprocess)
    with pytest.raises(tf.errors.InvalidArgumentError, match="the image at index 1: .* not a valid JPEG file"):
        next(iter(dataset))


# A 1.2 MB PNG of 20000 x 20000 black pixels, preprocessed after a small image, eagerly then in tf.function.
# Before the pixel limit it took 5.4 GB eagerly and over 6 GB in a graph; the child ends itself past 3 GB.
_BOMB_SCRIPT = """
import tensorflow as tf
from keras_clip.image.preprocessing import ImagePreprocessor
from tests.helpers import image_bombs

batch = tf.constant([image_bombs.png_bomb(600, 400), image_bombs.png_bomb(20000, 20000)])
preprocess = ImagePreprocessor(224)
for mode, call in (("eager", preprocess), ("tf.function", tf.function(preprocess))):
    call(batch[:1])  # traces the graph, fills the allocator's caches
    before, _ = memory_mb()
    reset_peak()
    try:
        call(batch)
        message = None
    except tf.errors.InvalidArgumentError as error:
        message = str(error)
    print(json.dumps({"mode": mode, "growth_mb": memory_mb()[1] - before, "message": message}), flush=True)
"""


BOMB = capped_job(_BOMB_SCRIPT, cap_mb=3000)


@pytest.mark.background(BOMB)
def test_decompression_bomb_is_refused_from_its_header_in_bounded_memory():
    run = capped_result(BOMB)
    assert not run.killed and run.returncode == 0, run
    assert [result["mode"] for result in run.results] == ["eager", "tf.function"], run
    for result in run.results:
        assert "Could not decode the image at index 1: its 20000 x 20000 pixels exceed max_pixels (178956970)" in (
            result["message"] or ""), result
        # The small image is decoded and resized; the large one never is.
        assert result["growth_mb"] < 50, result
    print("\n20000 x 20000 PNG refused; peak memory growth: "
          + ", ".join(f"{result['mode']} {result['growth_mb']:.0f} MB" for result in run.results))


def test_max_pixels_is_configurable_and_travels_in_the_config():
    image = image_bombs.png_bomb(300, 200)
    with pytest.raises(ImageTooLargeError, match="index 0: its 300 x 200 pixels exceed max_pixels \\(59999\\)"):
        ImagePreprocessor(32, max_pixels=59999)(tf.constant([image]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="index 0: its 300 x 200 pixels exceed"):
        tf.function(ImagePreprocessor(32, max_pixels=59999))(tf.constant([image]))
    expected = ImagePreprocessor(32)(tf.constant([image])).numpy()
    for max_pixels in (60000, None):
        preprocess = ImagePreprocessor.from_config(ImagePreprocessor(32, max_pixels=max_pixels).get_config())
        assert preprocess.settings.max_pixels == max_pixels
        np.testing.assert_array_equal(preprocess(tf.constant([image])).numpy(), expected)
    with pytest.raises(ImageTooLargeError, match="cat.png: its 300 x 200 pixels"):
        preprocess_image(image, 32, path="cat.png", max_pixels=1000)
    for bad in (0, -1, 1.5, "many", True):
        with pytest.raises(ValueError, match="max_pixels must be a positive int or None"):
            ImagePreprocessor(32, max_pixels=bad)


@pytest.mark.parametrize(
    "bad_input, message",
    [
        (np.zeros((2, 8, 8, 3), np.int32), "uint8 .* or float"),
        (np.zeros((2, 8, 8, 2), np.uint8), "1 \\(grayscale\\), 3 \\(RGB\\) or 4 \\(RGBA\\) channels"),
        (np.zeros((8, 8), np.uint8), "Expected images"),
        (np.array([[b"a", b"b"]]), "scalar or a vector of strings"),
        (np.zeros((0, 0, 3), np.uint8), "Images of 0 x 0 pixels .* have nothing to resize"),
        (np.zeros((2, 5, 0, 3), np.float32), "Images of 5 x 0 pixels .* have nothing to resize"),
    ],
)
def test_bad_inputs_are_named(bad_input, message):
    with pytest.raises(ValueError, match=message):
        ImagePreprocessor(224)(bad_input)


def test_empty_batch():
    empty = tf.constant([], tf.string)
    assert ImagePreprocessor(32)(empty).shape == (0, 32, 32, 3)
    assert tf.function(ImagePreprocessor(32))(empty).shape == (0, 32, 32, 3)
    assert ImagePreprocessor(32)(np.zeros((0, 0, 0, 3), np.uint8)).shape == (0, 32, 32, 3)


def test_images_without_pixels_are_named_in_graphs_and_tf_data():
    """Empty images gave "Integer division by zero"."""
    unknown_size = tf.function(ImagePreprocessor(32), input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="Images of 0 x 7 pixels have nothing to resize"):
        unknown_size(np.zeros((0, 7, 3), np.uint8))
    dataset = tf.data.Dataset.from_generator(lambda: [np.zeros((4, 0, 3), np.uint8)],
                                             output_signature=tf.TensorSpec([None, None, 3], tf.uint8))  # fmt: skip
    with pytest.raises(tf.errors.InvalidArgumentError, match="Images of 4 x 0 pixels have nothing to resize"):
        next(iter(dataset.map(ImagePreprocessor(32))))
