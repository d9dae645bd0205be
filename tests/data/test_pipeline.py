"""caption_dataset: the right (image, caption) pairs from every layout, sampling, determinism, errors."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_clip.data import CaptionDatasetState, caption_dataset, prepare_example
from keras_clip.text.tokenizer import tokenize
from tests.helpers.caption_files import LAYOUTS, captioned_photos, write_caption_dataset
from tests.helpers.images import reference_preprocess

RESOLUTION = 32
# OpenAI's preprocessing in PIL against ours: PIL-exact but for rare one-grey-level differences.
ONE_GREY_LEVEL = 1.0 / 255.0 / 0.26130258 + 1e-6


def read_epoch(dataset):
    batches = list(dataset)
    images = np.concatenate([batch["images"].numpy() for batch in batches])
    tokens = np.concatenate([batch["tokens"].numpy() for batch in batches])
    return images, tokens


def caption_finder(photos):
    """A function: row of tokens -> the (photo, caption) whose tokenisation (OpenAI's ids) it is."""
    pairs = [(photo, caption) for photo in photos for caption in photo.captions]
    table = {row.tobytes(): pair for row, pair in zip(tokenize([c for _, c in pairs], truncate=True), pairs)}
    assert len(table) == len(pairs), "captions must tokenise differently"

    def caption_of(tokens):
        assert tokens.tobytes() in table, "each row of tokens is one caption of the data set"
        return table[tokens.tobytes()]

    return caption_of


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_yields_its_image_caption_pairs(tmp_path, layout):
    photos = captioned_photos(7, seed=1)
    photos[2].captions = ["Ünïcödé & <b>HTML</b> &amp; emoji 🐱 — a caption with quotes \"here\", commas"]
    photos[5].captions = ["a very long caption " + " ".join(f"word{i}" for i in range(120))]
    source = write_caption_dataset(str(tmp_path), layout, photos, shards=3)
    dataset = caption_dataset(source, RESOLUTION, 3, augment=False, shuffle=False, drop_remainder=False, seed=0)
    assert dataset.element_spec["images"] == tf.TensorSpec([None, RESOLUTION, RESOLUTION, 3], tf.float32)
    assert dataset.element_spec["tokens"] == tf.TensorSpec([None, 77], tf.int32)
    images, tokens = read_epoch(dataset)
    assert len(images) == len(photos)
    caption_of = caption_finder(photos)
    seen = []
    for image, row in zip(images, tokens):
        photo, caption = caption_of(row)
        seen.append(photo.name)
        difference = np.abs(image - reference_preprocess(photo.data, RESOLUTION))
        assert difference.max() <= ONE_GREY_LEVEL, photo.name
        assert np.mean(difference > 0) < 0.01, photo.name
    assert sorted(seen) == sorted(photo.name for photo in photos)
    if layout != "tar":  # shards are interleaved; files and folders keep their order without shuffling
        assert seen == [photo.name for photo in photos]
    long_row = tokens[seen.index(photos[5].name)]
    assert long_row[-1] == 49407 and np.count_nonzero(long_row) == 77  # truncated, EOT kept last


def picked_captions(source, photos, epochs):
    """{photo name: [the caption it was paired with in each epoch]}; checks each epoch has every image once."""
    dataset = caption_dataset(source, RESOLUTION, len(photos), augment=False, seed=3)
    caption_of = caption_finder(photos)
    picked = collections.defaultdict(list)
    for _ in range(epochs):
        pairs = [caption_of(row) for row in read_epoch(dataset)[1]]
        assert sorted(photo.name for photo, _ in pairs) == [photo.name for photo in photos]
        for photo, caption in pairs:
            picked[photo.name].append(caption)
    return picked


def test_each_image_gets_one_of_its_captions_each_epoch_and_all_over_epochs(tmp_path):
    photos = captioned_photos(4, seed=2, captions_per_photo=2)
    picked = picked_captions(write_caption_dataset(str(tmp_path), "jsonl", photos), photos, epochs=8)
    for photo in photos:
        assert set(picked[photo.name]) == set(photo.captions)
    all_picks = [caption for photo in photos for caption in picked[photo.name]]
    assert 8 <= sum(caption.endswith("take 0") for caption in all_picks) <= 24  # 32 fair coin flips


def test_tar_samples_with_several_captions_sample_them(tmp_path):
    photos = captioned_photos(4, seed=2, captions_per_photo=3)
    picked = picked_captions(write_caption_dataset(str(tmp_path), "tar", photos, shards=2), photos, epochs=3)
    assert any(len(set(captions)) > 1 for captions in picked.values())


# The tar layout's reading order is checked by the other tar tests; its seeded run is a full_size check.
@pytest.mark.parametrize("layout", ["csv", pytest.param("tar", marks=pytest.mark.full_size)])
def test_same_seed_same_batches_every_epoch(tmp_path, layout):
    photos = captioned_photos(8, seed=3, captions_per_photo=2)
    source = write_caption_dataset(str(tmp_path), layout, photos, shards=3)

    def epochs(seed, global_seed, count=2):
        keras.utils.set_random_seed(global_seed)  # the global seed must not matter
        state = CaptionDatasetState()
        dataset = caption_dataset(source, RESOLUTION, 8, seed=seed, shuffle_buffer=3, num_parallel_calls=3, state=state)
        return dataset, state, [read_epoch(dataset) for _ in range(count)]

    dataset, state, first = epochs(seed=11, global_seed=0)
    _, _, second = epochs(seed=11, global_seed=1)
    for (images_a, tokens_a), (images_b, tokens_b) in zip(first, second):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(tokens_a, tokens_b)
    assert not np.array_equal(first[0][1], first[1][1])  # a new order and captions in the next epoch
    assert not np.array_equal(first[0][0], first[1][0])
    if layout == "csv":
        _, _, other = epochs(seed=12, global_seed=0, count=1)
        assert not np.array_equal(first[0][0], other[0][0])
        assert int(state.epoch.numpy()) == 2
        state.epoch.assign(1)  # replays the second epoch, e.g. when resuming a run
        np.testing.assert_array_equal(read_epoch(dataset)[0], first[1][0])


def test_augmented_images_are_random_crops_of_their_own_image(tmp_path):
    photos = captioned_photos(8, seed=4, min_side=48, max_side=96)
    source = write_caption_dataset(str(tmp_path), "folder", photos)
    images, tokens = read_epoch(caption_dataset(source, RESOLUTION, 8, shuffle=False, seed=5))
    references = np.stack([reference_preprocess(photo.data, RESOLUTION) for photo in photos])
    assert not np.allclose(images, references, atol=0.1)  # augmented, not the evaluation crop
    caption_of = caption_finder(photos)
    for row, (image, token_row) in enumerate(zip(images, tokens)):
        assert caption_of(token_row)[0] is photos[row]
        distances = np.abs(references - image).mean(axis=(1, 2, 3))
        assert np.argmin(distances) == row  # OpenCLIP's crops keep 90-100% of the image


@pytest.mark.parametrize("augment", [True, False])
def test_prepare_example_eagerly_in_tf_function_and_in_tf_data_agree(augment):
    seeds = tf.constant([[1, 2], [3, 4], [5, 6]], tf.int64)
    for photo in captioned_photos(2, seed=6, captions_per_photo=4, min_side=50, max_side=80, formats=("jpeg", "png")):

        def prepare(seed):
            return prepare_example(tf.constant(photo.data), tf.constant(photo.captions), seed, RESOLUTION, augment)

        eager = [prepare(seed) for seed in seeds]
        traced_prepare = tf.function(prepare)
        traced = [traced_prepare(seed) for seed in seeds]
        in_data = list(tf.data.Dataset.from_tensor_slices(seeds).map(prepare, num_parallel_calls=3))
        for (image, caption), (image_traced, caption_traced), (image_data, caption_data) in zip(eager, traced, in_data):
            np.testing.assert_array_equal(image.numpy(), image_traced.numpy())
            np.testing.assert_array_equal(image.numpy(), image_data.numpy())
            assert caption.numpy() == caption_traced.numpy() == caption_data.numpy()
            assert caption.numpy().decode() in photo.captions
        if not augment:
            reference = reference_preprocess(photo.data, RESOLUTION)
            np.testing.assert_allclose(eager[0][0].numpy(), reference, atol=ONE_GREY_LEVEL)
        else:
            assert not np.array_equal(eager[0][0].numpy(), eager[1][0].numpy())  # seeds give different crops
    with pytest.raises(tf.errors.InvalidArgumentError, match="No caption for photo.png"):
        prepare_example(tf.constant(photo.data), tf.constant([], tf.string), seeds[0], RESOLUTION, path="photo.png")


def test_batches_and_remainder(tmp_path):
    photos = captioned_photos(7, seed=7)
    source = write_caption_dataset(str(tmp_path), "csv", photos)
    dropped = caption_dataset(source, RESOLUTION, 3, seed=0)
    assert dropped.element_spec["images"].shape.as_list() == [3, RESOLUTION, RESOLUTION, 3]
    assert [len(batch["tokens"]) for batch in dropped] == [3, 3]
    kept = caption_dataset(source, RESOLUTION, 3, seed=0, drop_remainder=False, prefetch=None)
    assert [len(batch["tokens"]) for batch in kept] == [3, 3, 1]


def test_a_siglip_tokenizer_tokenizes_the_captions(tmp_path):
    from keras_clip.text.sentencepiece_tokenizer import SentencePieceTokenizer
    from tests.helpers.sentencepiece_models import siglip_like_model

    photos = captioned_photos(6, seed=9)
    source = write_caption_dataset(str(tmp_path), "csv", photos)
    tokenizer = SentencePieceTokenizer(siglip_like_model(), context_length=16)
    expected = {row.tobytes() for row in tokenizer([photo.captions[0] for photo in photos]).numpy()}
    batches = list(caption_dataset(source, RESOLUTION, 3, seed=0, tokenizer=tokenizer, augment=False))
    tokens = np.concatenate([batch["tokens"].numpy() for batch in batches])
    assert tokens.shape == (6, 16) and {row.tobytes() for row in tokens} == expected


def test_the_models_preprocessing_normalises_the_images(tmp_path):
    from keras_clip.image.preprocessing import preprocess_image
    from keras_clip.image.settings import OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, Preprocessing

    photos = captioned_photos(4, seed=5)
    source = write_caption_dataset(str(tmp_path), "csv", photos)
    siglip = Preprocessing(RESOLUTION, mean=(0.5,) * 3, std=(0.5,) * 3, resize_mode="squash")
    # Evaluation pipeline: exactly preprocess_image with the model's settings.
    batch = next(iter(caption_dataset(source, RESOLUTION, 4, seed=1, augment=False, preprocessing=siglip)))
    caption_of = caption_finder(photos)
    for image, tokens in zip(batch["images"].numpy(), batch["tokens"].numpy()):
        photo, _ = caption_of(tokens)
        expected = preprocess_image(photo.data, RESOLUTION, mean=siglip.mean, std=siglip.std, resize_mode="squash")
        np.testing.assert_allclose(image, expected.numpy(), atol=1e-6)
    # Augmented: the same crops as with OpenAI's statistics, normalised with the model's.
    openai, ours = (next(iter(caption_dataset(source, RESOLUTION, 4, seed=1, preprocessing=settings)))["images"]
                    for settings in (None, siglip))  # fmt: skip
    pixels = openai.numpy() * np.array(OPENAI_IMAGE_STD) + np.array(OPENAI_IMAGE_MEAN)
    np.testing.assert_allclose(ours.numpy(), (pixels - 0.5) / 0.5, atol=1e-5)


def test_bad_inputs_raise_clear_errors(tmp_path):
    photos = captioned_photos(2, seed=8)
    source = write_caption_dataset(str(tmp_path), "csv", photos, columns=("filepath", "alt"))
    with pytest.raises(ValueError, match=r"no caption column: looked for \['caption'.* pass caption_column="):
        caption_dataset(source, RESOLUTION, 2)
    with pytest.raises(ValueError, match=r"has no caption column 'text'; its columns are \['alt', 'filepath'\]"):
        caption_dataset(source, RESOLUTION, 2, caption_column="text")
    assert caption_dataset(source, RESOLUTION, 2, caption_column="alt").element_spec["tokens"].shape[1] == 77
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image"):
        caption_dataset(str(tmp_path / "empty"), RESOLUTION, 2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        caption_dataset(str(tmp_path / "missing.csv"), RESOLUTION, 2)
    with pytest.raises(FileNotFoundError, match="tar shards do not exist"):
        caption_dataset(str(tmp_path / "shard-{0..3}.tar"), RESOLUTION, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        caption_dataset(source, RESOLUTION, 0, caption_column="alt")
    with pytest.raises(ValueError, match="image_resolution must be a positive int, got '32'"):
        caption_dataset(source, "32", 2, caption_column="alt")
    with pytest.raises(ValueError, match="format must be one of"):
        caption_dataset(source, RESOLUTION, 2, format="parquet")
    with pytest.raises(ValueError, match="seed must be an int or None"):
        caption_dataset(source, RESOLUTION, 2, caption_column="alt", seed=1.5)


@pytest.mark.parametrize("layout", ["folder", "tar"])
def test_input_pipelines_split_the_data(tmp_path, layout):
    photos = captioned_photos(6, seed=9)
    source = write_caption_dataset(str(tmp_path), layout, photos, shards=3)
    caption_of = caption_finder(photos)
    parts = []
    for pipeline in (0, 2):
        dataset = caption_dataset(source, RESOLUTION, 2, seed=0, num_input_pipelines=3, input_pipeline_id=pipeline)
        policy = dataset.options().experimental_distribute.auto_shard_policy
        assert policy == tf.data.experimental.AutoShardPolicy.OFF
        parts.append({caption_of(row)[0].name for row in read_epoch(dataset)[1]})
    # Every third image (or shard of two images) from the pipeline's position on.
    expected = [{photo.name for photo in photos[start::3]} for start in (0, 2)]
    if layout == "tar":
        expected = [{photo.name for photo in photos[2 * shard : 2 * shard + 2]} for shard in (0, 2)]
    assert parts == expected
    too_many, message = (4, "3 tar shards cannot feed 4") if layout == "tar" else (7, "6 images cannot feed 7")
    with pytest.raises(ValueError, match=message + " input pipelines: each needs at least one"):
        caption_dataset(source, RESOLUTION, 1, num_input_pipelines=too_many, input_pipeline_id=0)
    with pytest.raises(ValueError, match=r"input_pipeline_id must be an int in \[0, 3\), got 3"):
        caption_dataset(source, RESOLUTION, 1, num_input_pipelines=3, input_pipeline_id=3)
