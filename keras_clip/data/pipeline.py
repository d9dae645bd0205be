"""`caption_dataset`: (image, caption) data -> batches of {"images", "tokens"} for `CLIP.fit`.

The pipeline, per epoch:
1. each pass over the dataset takes the next epoch number from a variable and derives its seed
   from (`seed`, epoch number) with stateless random ops;
2. the source's samples in a shuffled order derived from it (a permutation of the index for caption
   files and folders; for tar shards a permutation of the shards, `cycle_length` shards interleaved
   and blocks of `shuffle_buffer` samples permuted), each with a seed derived from the epoch seed
   and the sample's identity (not its position), so its crop and caption do not depend on parallelism;
3. in parallel: read the image (and caption file), decode, random resized crop (or OpenAI's resize
   and centre crop with `augment=False`), normalise, and pick one caption at random;
4. samples whose image is missing or corrupt, or that have no caption, are dropped and counted
   (`ignore_errors`; `CaptionDatasetState`), and their places taken by samples of further passes, so
   that every epoch has the number of batches the dataset announces (`full_epochs.py`);
5. batches are tokenised in graph and prefetched.
"""

import dataclasses
import os
import random

import tensorflow as tf

from keras_clip.data import full_epochs, sources
from keras_clip.data.state import CaptionDatasetState
from keras_clip.data.tar_shards import caption_lines, shard_samples
from keras_clip.image.augmentation import augment_image
from keras_clip.image.preprocessing import normalize_image, preprocess_image
from keras_clip.image.settings import Preprocessing
from keras_clip.text.tokenizer import Tokenizer

DEFAULT_SHUFFLE_BUFFER = 1000  # tar samples (encoded) held for shuffling; caption files shuffle fully


def prepare_example(image, captions, seed, image_resolution, augment=True, path=None, preprocessing=None):
    """One training example: a decoded, cropped, normalised image and one of its captions.

    Args:
        image: scalar `tf.string`, the encoded image (JPEG, PNG, GIF, BMP or WebP).
        captions: `tf.string` [C], the image's captions (C >= 1); one is picked at random.
        seed: int32/int64 [2], a stateless seed: the same seed picks the same crop and caption.
        image_resolution: side of the square output.
        augment: random resized crop (True) or the model's evaluation preprocessing (False).
        path: the image's file, named in error messages.
        preprocessing: the model's `Preprocessing` (`model.preprocessing`): its mean and std normalise the
            image, and without `augment` it is the whole pipeline. None: OpenAI's at `image_resolution`.

    Returns:
        (float32 [R, R, 3] image, scalar `tf.string` caption).

    Raises:
        tf.errors.InvalidArgumentError: undecodable image, or no caption.

    Example:
    >>> image, caption = prepare_example(tf.io.read_file("cat.jpg"), ["a cat", "a pet"], [1, 2], 224)
    >>> image.shape
    TensorShape([224, 224, 3])
    """
    captions = tf.reshape(tf.convert_to_tensor(captions, tf.string), [-1])
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    caption_seed, image_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    count = tf.size(captions)
    described = "the image" if path is None else path
    has_caption = tf.debugging.Assert(count > 0, [tf.strings.join(["No caption for ", described])])
    with tf.control_dependencies([has_caption]):
        choice = tf.random.stateless_uniform([], caption_seed, 0, tf.maximum(count, 1), dtype=tf.int32)
    settings = preprocessing or Preprocessing(image_resolution)
    if settings.image_resolution != image_resolution:
        raise ValueError(f"image_resolution {image_resolution} differs from the preprocessing's "
                         f"{settings.image_resolution}")  # fmt: skip
    if augment:
        pixels = augment_image(image, image_resolution, image_seed, normalize=False, path=path,
                               max_pixels=settings.max_pixels)
        image = normalize_image(pixels, settings.mean, settings.std)
    else:
        image = preprocess_image(image, **dataclasses.asdict(settings), path=path)
    return image, tf.gather(captions, choice)


class _IndexedSamples:
    """Samples of a `CaptionIndex` (caption file or folder): shuffled indices; images read when decoded."""

    def __init__(self, index):
        self.size = len(index)
        self.image_paths = tf.constant(index.image_paths, tf.string)
        if index.captions is not None:
            flat = [caption for captions in index.captions for caption in captions]
            lengths = [len(captions) for captions in index.captions]
            self.captions = tf.RaggedTensor.from_row_lengths(
                tf.constant(flat, tf.string), tf.constant(lengths, tf.int64)
            )
            self.caption_files = None
        else:
            self.captions = None
            self.caption_files = tf.constant(index.caption_files, tf.string)

    def epoch(self, epoch_seed, shuffle):
        order_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(epoch_seed, 2))
        order = tf.range(self.size, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, order_seed)

        def sample(index):
            return {"index": index, "seed": tf.random.experimental.stateless_fold_in(sample_seed, index)}

        return tf.data.Dataset.from_tensor_slices(order).map(sample)

    def marker(self):
        """An element of the shape of `epoch`'s, standing for no sample."""
        return {"index": tf.constant(0, tf.int64), "seed": tf.zeros([2], tf.int64)}

    def load(self, element):
        """(encoded image, captions, path): reads the files; a missing one fails (and is skipped)."""
        path = tf.gather(self.image_paths, element["index"])
        if self.captions is not None:
            captions = self.captions[element["index"]]
        else:
            captions = caption_lines(tf.io.read_file(tf.gather(self.caption_files, element["index"])))
        return tf.io.read_file(path), captions, path


def _shuffle_blocks(samples, block_size, seed):
    """Reads `block_size` samples at a time and passes them on in a random order (stateless).

    `Dataset.shuffle` takes its seed through the global seed when one is set, so its order would
    depend on `tf.random.set_seed`; this depends on `seed` only.
    """

    @tf.autograph.experimental.do_not_convert
    def permute(block_index, block):
        count = tf.shape(block["seed"], out_type=tf.int64)[0]
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count), tf.random.experimental.stateless_fold_in(seed, block_index)
        )
        return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda part: tf.gather(part, order), block))

    return samples.ragged_batch(block_size).enumerate().flat_map(permute)


class _TarSamples:
    """Samples of tar shards: shard order shuffled, shards interleaved, blocks of samples shuffled."""

    def __init__(self, shards, cycle_length, shuffle_buffer):
        self.shards = tf.constant(shards, tf.string)
        self.size = len(shards)
        self.cycle_length = min(int(cycle_length), len(shards))
        self.shuffle_buffer = int(shuffle_buffer)

    def epoch(self, epoch_seed, shuffle):
        order_seed, sample_seed, block_seed = tf.unstack(tf.random.experimental.stateless_split(epoch_seed, 3))
        order = tf.range(self.size, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, order_seed)
        samples = tf.data.Dataset.from_tensor_slices(order).interleave(
            lambda shard: shard_samples(tf.gather(self.shards, shard), shard, sample_seed),
            cycle_length=self.cycle_length,
            block_length=1,
            num_parallel_calls=self.cycle_length,
            deterministic=True,
        )
        if shuffle and self.shuffle_buffer > 1:
            samples = _shuffle_blocks(samples, self.shuffle_buffer, block_seed)
        return samples

    def marker(self):
        """An element of the shape of `epoch`'s, standing for no sample."""
        return {"image": tf.constant(""), "captions": tf.zeros([0], tf.string), "name": tf.constant(""),
                "seed": tf.zeros([2], tf.int64)}  # fmt: skip

    def load(self, element):
        return element["image"], element["captions"], element["name"]


def caption_dataset(
    source,
    image_resolution,
    batch_size,
    *,
    format=None,
    image_column=None,
    caption_column=None,
    image_root=None,
    augment=True,
    shuffle=True,
    seed=None,
    drop_remainder=True,
    context_length=77,
    shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
    cycle_length=4,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
    num_input_pipelines=1,
    input_pipeline_id=0,
    state=None,
    tokenizer=None,
    preprocessing=None,
    steps_per_epoch=None,
):
    """Batches of (image, caption) pairs for `CLIP.fit`, from caption files, folders or tar shards.

    Sources (`format` is inferred from the name when None):
    - "csv" / "tsv": a table with a header row, one row per (image, caption); image paths relative to
      the file's folder (or `image_root`). Rows naming the same image give it several captions.
    - "jsonl": one JSON object per line, e.g. {"image": "a.jpg", "caption": "a dog"}; the caption may
      be a list of captions.
    - "folder": images (.jpg, .jpeg, .png, .webp, .bmp, .gif; searched recursively) with a side-car
      .txt of the same name; each non-empty line is one caption.
    - "tar": WebDataset-style shards: a list of paths or a pattern such as "data/shard-{000..099}.tar"
      (also globs and .tar.gz); `key.jpg` (or another image extension) + `key.txt` make one sample.

    An image with several captions is paired with one of them, drawn anew each epoch. A sample whose
    image is missing or corrupt, or that has no caption, is skipped and counted, never an error: pass
    a `CaptionDatasetState` as `state` to read the count (`state.skipped_images.count`), and
    `SkippedImagesReport(state)` reports it each epoch in `fit`.

    Every epoch has a known number of batches, so Keras' epoch logs are the exact means over the
    epoch's steps and a learning-rate schedule takes one step per batch (on a dataset of unknown length
    Keras 3 runs one extra, empty step per epoch): caption files and folders have
    `len(images) // batch_size` batches (`ceil` without `drop_remainder`), tar shards `steps_per_epoch`.
    A skipped sample's place is taken by a sample of a further pass over the data (its own order and
    crops), so skipped images never shorten an epoch. Tar shards without `steps_per_epoch` give one pass
    per epoch, of unknown length: pass `steps_per_epoch` for exact logs. `len(dataset)` is the number.

    With a `seed`, every epoch's batches
    are reproducible (the first epoch of two runs gives the same batches, the second epoch too, and so
    on) whatever the parallelism and the global random seed: pass `k` over the dataset (counted from 0
    in `state.epoch`, a variable) draws its order, crops and captions from `seed` and `k` only;
    `state.epoch.assign(k)` replays pass `k`, e.g. to resume an interrupted run with the data it would
    have seen.

    Args:
        source: a file, folder, shard pattern or list of shards (see above).
        image_resolution: side of the square images (the model's `image_resolution`).
        batch_size: samples per batch.
        format: "csv", "tsv", "jsonl", "folder" or "tar"; None infers it.
        image_column, caption_column: CSV/TSV columns or JSON keys; None takes the first present of
            `sources.IMAGE_COLUMNS` ("filepath", "image", ...) / `sources.CAPTION_COLUMNS` ("caption",
            "captions", "title", "text").
        image_root: folder that relative image paths of a caption file start from (default: its folder).
        augment: OpenCLIP's random resized crop (True, for training) or OpenAI's evaluation
            preprocessing (False: bicubic resize of the shorter side, centre crop).
        shuffle: shuffle every epoch (caption files and folders: a full permutation; tar shards: the
            shard order, then each block of `shuffle_buffer` samples).
        seed: int; None draws one at random.
        drop_remainder: drop the last, smaller batch (keeps every batch the same shape for `fit`).
        context_length: token sequence length (77 for every CLIP model); longer captions are truncated
            with EOT kept last, as `clip.tokenize(..., truncate=True)`.
        tokenizer: the model's tokenizer instead of CLIP's (a SigLIP's: `keras_clip.get_tokenizer(name)`,
            which has its own context length).
        preprocessing: the model's `Preprocessing` (`model.preprocessing`, e.g. SigLIP's mean and std 0.5);
            None: OpenAI's.
        shuffle_buffer: tar samples shuffled together (held encoded in memory).
        cycle_length: tar shards read at once; each is held whole in memory while read.
        num_parallel_calls: parallelism of decoding and tokenising.
        prefetch: batches prepared ahead (None: no prefetch).
        num_input_pipelines, input_pipeline_id: read only this pipeline's share of the data: every
            `num_input_pipelines`-th image (or tar shard) from `input_pipeline_id` on. For
            multi-worker training, pass a `tf.distribute.InputContext`'s values (and its per-replica
            batch size) from `strategy.distribute_datasets_from_function`; the dataset is then not
            split again by tf.distribute's auto-sharding.
        state: a `CaptionDatasetState` that counts the passes started and the samples skipped
            (None: a new one nobody reads).
        steps_per_epoch: batches per epoch, all full; None: as many as one pass over caption files or a
            folder fills (tar shards: one pass, of unknown length). With several input pipelines, the
            default is the smallest pipeline's, the same for all, as tf.distribute needs.

    Returns:
        A `tf.data.Dataset` of {"images": float32 [B, R, R, 3], "tokens": int32 [B, context_length]}.

    Raises:
        FileNotFoundError, ValueError: a missing source, column or shard, an empty folder, fewer images
            than one batch (with `drop_remainder`), bad arguments. While iterating,
            `tf.errors.InvalidArgumentError` when a whole pass yields no readable sample.

    Example:
    >>> state = keras_clip.data.CaptionDatasetState()
    >>> dataset = keras_clip.data.caption_dataset("photos/captions.csv", 224, batch_size=64, seed=0, state=state)
    >>> history = model.fit(dataset, epochs=1, callbacks=[keras_clip.data.SkippedImagesReport(state)])
    """
    image_resolution = _positive_int(image_resolution, "image_resolution")
    batch_size = _positive_int(batch_size, "batch_size")
    num_input_pipelines = _positive_int(num_input_pipelines, "num_input_pipelines")
    if not isinstance(input_pipeline_id, int) or not 0 <= input_pipeline_id < num_input_pipelines:
        raise ValueError(f"input_pipeline_id must be an int in [0, {num_input_pipelines}), got {input_pipeline_id!r}")
    format = format or sources.infer_format(source)
    if format not in sources.FORMATS:
        raise ValueError(f"format must be one of {sources.FORMATS}, got {format!r}")
    pipelines = (num_input_pipelines, input_pipeline_id)
    if format == "tar":
        shards = _part(sources.expand_shards(source), *pipelines, "tar shards")
        samples = _TarSamples(shards, _positive_int(cycle_length, "cycle_length"), shuffle_buffer)
        pass_size = None
    else:
        if isinstance(source, (list, tuple)):
            raise ValueError(f"A {format} source is one path, got a list of {len(source)}")
        index = sources.read_caption_index(os.fspath(source), format, image_column, caption_column, image_root)
        samples = _IndexedSamples(_index_part(index, *pipelines))
        pass_size = len(index) // num_input_pipelines  # the smallest pipeline's share
    batches, epoch_size = _epoch_length(pass_size, batch_size, drop_remainder, steps_per_epoch, source)

    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    elif isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    state = CaptionDatasetState() if state is None else state
    skipped = state.skipped_images
    if tokenizer is None:
        tokenizer = Tokenizer(context_length=context_length, truncate=True)

    def start_epoch(_):
        return state.epoch.assign_add(1) - 1

    def epoch(number):
        epoch_seed = tf.random.experimental.stateless_fold_in(tf.constant([int(seed), 0], tf.int64), number)
        return full_epochs.sample_stream(samples, epoch_seed, shuffle, refill=batches is not None)

    def decode(element):
        image, captions, path = samples.load(element)
        return prepare_example(image, captions, element["seed"], image_resolution, augment, path, preprocessing)

    def tokenize(batch):
        return {"images": batch["images"], "tokens": tokenizer(batch["captions"])}

    # One element per pass over the dataset: the pass's number, which seeds everything random in it.
    dataset = tf.data.Dataset.range(1).map(_without_autograph(start_epoch))
    dataset = dataset.flat_map(_without_autograph(epoch))
    decode = full_epochs.decode_unless_marker(_without_autograph(decode), image_resolution)
    dataset = dataset.map(decode, num_parallel_calls=num_parallel_calls, deterministic=True)
    dataset = dataset.ignore_errors(log_warning=True)
    dataset = full_epochs.count_and_drop_markers(dataset, skipped, _describe(source))
    if batches is not None:
        dataset = dataset.take(epoch_size)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if batches is not None:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    dataset = dataset.map(_without_autograph(tokenize), num_parallel_calls=num_parallel_calls, deterministic=True)
    if prefetch is not None:
        dataset = dataset.prefetch(prefetch)
    if num_input_pipelines > 1:
        options = tf.data.Options()
        # Already split: tf.distribute must not split it again.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
    return dataset


def _epoch_length(pass_size, batch_size, drop_remainder, steps_per_epoch, source):
    """(batches per epoch, samples per epoch), or (None, None) when unknown (tar shards, no steps_per_epoch)."""
    if steps_per_epoch is not None:
        steps = _positive_int(steps_per_epoch, "steps_per_epoch")
        return steps, steps * batch_size
    if pass_size is None:
        return None, None
    if not drop_remainder:
        return -(-pass_size // batch_size), pass_size
    if pass_size < batch_size:
        raise ValueError(
            f"{_describe(source)} has {pass_size} images (per input pipeline), fewer than one batch of {batch_size}: "
            "lower batch_size or pass drop_remainder=False"
        )
    return pass_size // batch_size, pass_size // batch_size * batch_size


def _describe(source):
    if isinstance(source, (list, tuple)):
        return f"{len(source)} tar shards ({os.fspath(source[0])}, ...)" if source else "no tar shard"
    return os.fspath(source)


def _part(items, count, index, what):
    """Every `count`-th item from `index` on: one input pipeline's share."""
    if len(items) < count:
        raise ValueError(f"{len(items)} {what} cannot feed {count} input pipelines: each needs at least one")
    return items[index::count]


def _index_part(index, count, position):
    return sources.CaptionIndex(
        image_paths=_part(index.image_paths, count, position, "images"),
        captions=None if index.captions is None else index.captions[position::count],
        caption_files=None if index.caption_files is None else index.caption_files[position::count],
    )


def _without_autograph(function):
    # The map functions have no tensor-dependent Python control flow: skipping AutoGraph saves tracing time.
    return tf.autograph.experimental.do_not_convert(function)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value
