"""Epochs of a known number of batches, though some samples cannot be read: their places are refilled.

Keras 3 runs one extra, empty step per epoch on a dataset of unknown length: the epoch's logged means
are then diluted (steps / (steps + 1)) and a learning-rate schedule advances one step too many. A
caption dataset knows how many samples a pass has, but not how many of them will decode. So each pass
is followed by further passes (their own order and crops) that only refill: the batches take samples
in stream order, skipping the unreadable ones, until the epoch's fixed number of samples is reached.
Every epoch then has exactly the batches it announces (`len(dataset)`), each full.

Counting: every element of the stream carries its position. After `ignore_errors` the positions that
are missing are the samples that failed; those of the first pass are counted as skipped (a refill
retries samples of the same data, which are not counted twice). Each pass ends with a marker element
that always comes through, so failures at the end of a pass are counted too, and a pass that delivers
nothing at all stops the pipeline with an error instead of refilling forever.
"""

import tensorflow as tf


def sample_stream(samples, epoch_seed, shuffle, refill):
    """The first pass's samples, then (with `refill`) endless further passes, each pass closed by a marker.

    Args:
        samples: `_IndexedSamples` or `_TarSamples` (with `epoch(seed, shuffle)` and `marker()`).
        epoch_seed: int64 [2]; the first pass uses it as is, refill pass k its fold-in with k.
        shuffle: shuffle each pass.
        refill: follow the first pass with further passes.

    Returns:
        A dataset of {"position": int64, "sample": the source's element, "copy": int64 pass number
        (0 first), "end": bool, True for the marker closing a pass}.
    """

    @tf.autograph.experimental.do_not_convert
    def one_pass(copy):
        seed = tf.where(tf.equal(copy, 0), epoch_seed, tf.random.experimental.stateless_fold_in(epoch_seed, copy))
        elements = samples.epoch(seed, shuffle).map(lambda sample: {"sample": sample, "copy": copy, "end": False})
        marker = tf.data.Dataset.from_tensors({"sample": samples.marker(), "copy": copy, "end": True})
        return elements.concatenate(marker)

    copies = tf.data.Dataset.counter() if refill else tf.data.Dataset.range(1)
    stream = copies.flat_map(one_pass).enumerate()
    return stream.map(lambda position, element: dict(element, position=position))


def decode_unless_marker(decode, image_resolution):
    """`decode` (sample -> (image, caption)) for stream elements; markers get a blank image and no caption."""

    @tf.autograph.experimental.do_not_convert
    def apply(element):
        blank = (tf.zeros([image_resolution, image_resolution, 3], tf.float32), tf.constant("", tf.string))
        image, caption = tf.cond(element["end"], lambda: blank, lambda: decode(element["sample"]))
        return {"images": image, "captions": caption, "position": element["position"], "copy": element["copy"],
                "end": element["end"]}  # fmt: skip

    return apply


def count_and_drop_markers(decoded, skipped, source_name):
    """After `ignore_errors`: counts the first pass's failed samples in `skipped`, checks each pass
    delivered something, and drops the markers. Returns a dataset of {"images", "captions"}."""

    @tf.autograph.experimental.do_not_convert
    def track(state, element):
        last_position, delivered_in_pass = state
        failed = element["position"] - last_position - 1  # the positions ignore_errors dropped
        empty_pass = element["end"] & tf.logical_not(delivered_in_pass)
        return (element["position"], tf.logical_not(element["end"])), dict(element, failed=failed, empty=empty_pass)

    @tf.autograph.experimental.do_not_convert
    def count(element):
        first_pass = tf.equal(element["copy"], 0)
        counted = skipped.add(tf.where(first_pass, element["failed"], tf.zeros_like(element["failed"])))
        usable = tf.debugging.Assert(
            tf.logical_not(element["empty"]),
            [f"caption_dataset: no sample of {source_name} could be read in this pass (every image missing, "
             "corrupt or without a caption); TensorFlow's log names the failures"],
        )  # fmt: skip
        with tf.control_dependencies([counted, usable]):
            return {"images": tf.identity(element["images"]), "captions": tf.identity(element["captions"]),
                    "end": tf.identity(element["end"])}  # fmt: skip

    initial = (tf.constant(-1, tf.int64), tf.constant(False))
    counted = decoded.scan(initial, track).map(count)
    samples = counted.filter(lambda element: tf.logical_not(element["end"]))
    return samples.map(lambda element: {"images": element["images"], "captions": element["captions"]})
