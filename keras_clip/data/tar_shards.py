"""WebDataset-style tar shards read with core TensorFlow ops: members, samples, tf.data.

A shard is a tar archive whose members are grouped into samples by key: `abc.jpg` and `abc.txt` (in
any folder inside the archive) are the image and the captions of sample `abc`, and the members of one
sample are stored next to each other, as WebDataset writes them. The key is everything before the
first dot of the file name (WebDataset's rule), the extension everything after it.

Each shard is read whole (`tf.io.read_file`, so local files and any filesystem TensorFlow knows,
e.g. gs://) and its headers are walked in a `tf.while_loop`: no Python runs per sample, the pipeline
stays a graph (parallel, serializable, deterministic). The cost is memory: a shard in use is held
whole, so keep shards around 1 GB or smaller (WebDataset's own advice; TensorFlow strings hold at
most 2 GB) and few of them open at once (`cycle_length`). `.tar.gz` / `.tgz` shards are
decompressed in memory. Walking the headers costs about 0.15 ms per member on one CPU core.

Formats: ustar/POSIX headers, GNU long names (typeflag "L") and POSIX pax `path=` records (what
Python's `tarfile` writes); regular files become members, directories and links are skipped. The
parse never fails: a truncated archive gives truncated members, whose images then fail to decode
(and are skipped and counted by the caption pipeline).
"""

import tensorflow as tf

from keras_clip.image.files import IMAGE_SUFFIXES

# Member extensions are compared without their dot (everything after the key's first dot).
IMAGE_EXTENSIONS = tuple(suffix[1:] for suffix in IMAGE_SUFFIXES)
CAPTION_EXTENSION = "txt"
_BLOCK = 512
# Everything from the first NUL on: tar's fixed-width text fields are NUL-terminated or NUL-padded.
_FROM_FIRST_NUL = "(?s)\\x00.*"
_PAX_PATH = "(?s)(?:.*\\n)?[0-9]+ path=([^\\n]*)\\n.*"
_KEY_AND_EXTENSION = "^((?:.*/)?[^./]+)[.]([^/]*)$"


def _field(header, start, length):
    return tf.strings.regex_replace(tf.strings.substr(header, start, length), _FROM_FIRST_NUL, "")


def _octal(header, start, length):
    """An octal number field (digits, then NUL or space padding; leading spaces allowed) as int64."""
    digits = tf.cast(tf.io.decode_raw(tf.strings.substr(header, start, length), tf.uint8), tf.int64) - 48
    is_digit = (digits >= 0) & (digits <= 7)
    # Only the first run of digits counts: stop at the first non-digit after a digit.
    seen_digit = tf.cumsum(tf.cast(is_digit, tf.int64)) > 0
    ended = tf.cumsum(tf.cast(seen_digit & ~is_digit, tf.int64)) > 0
    kept = is_digit & ~ended
    digits_after = tf.cumsum(tf.cast(kept, tf.int64), reverse=True, exclusive=True)
    powers = tf.bitwise.left_shift(tf.ones_like(digits_after), 3 * digits_after)
    return tf.reduce_sum(tf.where(kept, digits * powers, 0))


def tar_members(archive):
    """The regular files of a tar archive held in a string.

    Args:
        archive: scalar `tf.string`, the bytes of a tar archive.

    Returns:
        (names, offsets, sizes): `tf.string` [M] member paths, int64 [M] positions of their data in
        `archive` and int64 [M] sizes, in archive order. A member cut short by the end of the archive
        keeps the bytes that are there.

    Example:
    >>> archive = tf.io.read_file("shard-000.tar")
    >>> names, offsets, sizes = tar_members(archive)
    >>> names[:2].numpy()
    array([b'0001.jpg', b'0001.txt'], dtype=object)
    >>> first = tf.strings.substr(archive, offsets[0], sizes[0])
    """
    archive = tf.convert_to_tensor(archive, tf.string)
    total = tf.cast(tf.strings.length(archive), tf.int64)

    def growing(dtype):
        return tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=[])

    def not_done(position, done, *_):
        return tf.logical_and(tf.logical_not(done), position + _BLOCK <= total)

    def read_header(position, done, index, pending, has_pending, names, offsets, sizes, files):
        header = tf.strings.substr(archive, position, _BLOCK)
        name = _field(header, 0, 100)
        at_end = tf.equal(name, "")  # an all-zero block ends the archive
        # POSIX ustar headers split long paths into a prefix; GNU headers ("ustar  ") use those bytes otherwise.
        ustar = tf.equal(tf.strings.substr(header, 257, 6), "ustar\0")
        prefix = tf.where(ustar, _field(header, 345, 155), "")
        name = tf.where(tf.equal(prefix, ""), name, tf.strings.join([prefix, "/", name]))
        size = _octal(header, 124, 12)
        kind = tf.strings.substr(header, 156, 1)
        data_position = position + _BLOCK
        available = tf.clip_by_value(total - data_position, 0, size)
        long_name = tf.equal(kind, "L")
        pax = tf.equal(kind, "x")
        metadata = tf.cond(
            long_name | pax,
            lambda: tf.strings.substr(archive, data_position, available),
            lambda: tf.constant(""),
        )
        pax_path = tf.strings.regex_full_match(metadata, _PAX_PATH) & pax
        next_name = tf.where(
            long_name,
            tf.strings.regex_replace(metadata, _FROM_FIRST_NUL, ""),
            tf.strings.regex_replace(metadata, _PAX_PATH, "\\1"),
        )
        # "0" and NUL: regular files; "7": contiguous files (regular for every reader).
        is_file = (tf.equal(kind, "0") | tf.equal(kind, "\0") | tf.equal(kind, "7")) & ~at_end
        names = names.write(index, tf.where(has_pending, pending, name))
        offsets = offsets.write(index, data_position)
        sizes = sizes.write(index, available)
        files = files.write(index, is_file)
        # A long name or pax path applies to the next header only.
        carried = long_name | pax_path
        next_position = data_position + (size + _BLOCK - 1) // _BLOCK * _BLOCK
        pending = tf.where(carried, next_name, "")
        return next_position, at_end, index + 1, pending, carried, names, offsets, sizes, files

    # Every header is recorded (whether it is a file, too); the files are picked out at the end.
    start = (tf.constant(0, tf.int64), tf.constant(False), tf.constant(0), tf.constant(""), tf.constant(False))
    headers = (growing(tf.string), growing(tf.int64), growing(tf.int64), growing(tf.bool))
    *_, names, offsets, sizes, files = tf.while_loop(not_done, read_header, start + headers)
    files = files.stack()
    return tuple(tf.boolean_mask(column.stack(), files) for column in (names, offsets, sizes))


def group_samples(names):
    """Groups consecutive members by key and finds each sample's image and caption file.

    Args:
        names: `tf.string` [M], member paths in archive order.

    Returns:
        (keys, image_members, caption_members): `tf.string` [S] sample keys and int32 [S] positions in
        `names` of each sample's first image (`IMAGE_EXTENSIONS`, any case) and first `.txt` file; -1
        where a sample has none. Members without an extension belong to no sample.
    """
    names = tf.convert_to_tensor(names, tf.string)
    keyed = tf.where(tf.strings.regex_full_match(names, _KEY_AND_EXTENSION))[:, 0]
    member = tf.cast(keyed, tf.int32)
    names = tf.gather(names, keyed)
    keys = tf.strings.regex_replace(names, _KEY_AND_EXTENSION, "\\1")
    extensions = tf.strings.lower(tf.strings.regex_replace(names, _KEY_AND_EXTENSION, "\\2"))
    starts = tf.concat([tf.ones_like(keys[:1], tf.bool), tf.not_equal(keys[1:], keys[:-1])], axis=0)
    sample = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    count = tf.reduce_sum(tf.cast(starts, tf.int32))
    is_image = tf.reduce_any(tf.equal(extensions[:, None], tf.constant(IMAGE_EXTENSIONS)), axis=1)
    is_caption = tf.equal(extensions, CAPTION_EXTENSION)
    none = tf.int32.max

    def first(found):
        position = tf.math.unsorted_segment_min(tf.where(found, member, none), sample, count)
        return tf.where(tf.equal(position, none), -1, position)

    return tf.boolean_mask(keys, starts), first(is_image), first(is_caption)


def caption_lines(text):
    """The captions in a caption file's text: its non-empty lines, stripped of surrounding whitespace."""
    lines = tf.strings.strip(tf.strings.split(tf.convert_to_tensor(text, tf.string), "\n"))
    return tf.boolean_mask(lines, tf.not_equal(lines, ""))


def read_shard(path):
    """A tar shard's bytes, decompressed when the name ends in .tar.gz or .tgz."""
    archive = tf.io.read_file(path)
    compressed = tf.strings.regex_full_match(tf.strings.lower(path), ".*[.](tar[.]gz|tgz)")
    return tf.cond(compressed, lambda: tf.io.decode_compressed(archive, "GZIP"), lambda: archive)


def shard_samples(path, shard_index, seed):
    """The samples of one tar shard, as a `tf.data.Dataset` of dicts, in archive order.

    Args:
        path: scalar `tf.string`, the shard's path.
        shard_index: int64 scalar, the shard's position in the shard list (part of each sample's seed).
        seed: int64 [2], the epoch's sample seed.

    Returns:
        A dataset of {"image": encoded bytes ("" when the sample has no image), "captions": `tf.string`
        [None] (empty when it has no `.txt` file), "name": "<path>:<key>" for error messages,
        "seed": int64 [2] for this sample}.
    """
    archive = read_shard(path)
    names, offsets, sizes = tar_members(archive)
    keys, image_members, caption_members = group_samples(names)
    shard_seed = tf.random.experimental.stateless_fold_in(seed, shard_index)

    def member_bytes(member):
        return tf.cond(
            member >= 0,
            lambda: tf.strings.substr(archive, offsets[tf.maximum(member, 0)], sizes[tf.maximum(member, 0)]),
            lambda: tf.constant(""),
        )

    @tf.autograph.experimental.do_not_convert
    def sample(index, key, image_member, caption_member):
        return {
            "image": member_bytes(image_member),
            "captions": caption_lines(member_bytes(caption_member)),
            "name": tf.strings.join([path, ":", key]),
            "seed": tf.random.experimental.stateless_fold_in(shard_seed, index),
        }

    indices = tf.range(tf.size(keys, out_type=tf.int64))
    return tf.data.Dataset.from_tensor_slices((indices, keys, image_members, caption_members)).map(sample)
