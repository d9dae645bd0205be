"""The in-graph tar reader against Python's `tarfile`, and WebDataset's grouping of members into samples."""

import io
import shutil
import subprocess
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from keras_clip.data.tar_shards import caption_lines, group_samples, read_shard, shard_samples, tar_members
from tests.helpers.caption_files import captioned_photos, sample_members, tar_bytes, write_file

LONG_NAME = "a" * 150 + ".jpg"  # longer than the 100-byte name field, no folder to split off
LONG_PATH = "/".join(["folder"] * 20) + "/photo.png"  # > 100 bytes: ustar prefix, GNU "L" or pax path
MEMBERS = [
    ("x/one.jpg", b"\xff\xd8\xff" + bytes(range(256)) * 3),
    ("x/one.txt", b"a caption\n"),
    ("empty.txt", b""),
    ("exactly_512.bin", b"\x07" * 512),
    ("caf\u00e9/\u732b.json", '{"caption": "\u732b"}'.encode()),  # non-ASCII: a pax record in PAX format
    (LONG_PATH, b"P" * 1000),
]


def reference_members(data):
    """(name, data offset, size) of the regular files, as Python's tarfile reads them."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return [(member.name, member.offset_data, member.size) for member in archive if member.isfile()]


def with_folders_and_links(format):
    """An archive with a folder entry and a symbolic link between files (neither is a member)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format) as archive:
        folder = tarfile.TarInfo("x")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        for index, (name, data) in enumerate(MEMBERS):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
            if index == 1:
                link = tarfile.TarInfo("x/link.jpg")
                link.type = tarfile.SYMTYPE
                link.linkname = "one.jpg"
                archive.addfile(link)
    return buffer.getvalue()


def members_of(data):
    names, offsets, sizes = tar_members(tf.constant(data))
    columns = zip(names.numpy(), offsets.numpy(), sizes.numpy())
    return [(name.decode("utf-8"), int(offset), int(size)) for name, offset, size in columns]


@pytest.mark.parametrize("format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_members_match_pythons_tarfile(format):
    data = with_folders_and_links(format)
    expected = reference_members(data)
    assert [name for name, _, _ in expected] == [name for name, _ in MEMBERS]
    assert members_of(data) == expected
    for (name, offset, size), (_, content) in zip(members_of(data), MEMBERS):
        assert data[offset : offset + size] == content


def test_ustar_prefix_and_long_names():
    ustar = tar_bytes([(LONG_PATH, b"p"), ("short.txt", b"s")], format=tarfile.USTAR_FORMAT)
    assert members_of(ustar) == reference_members(ustar)
    gnu_long = tar_bytes([(LONG_NAME, b"a")], format=tarfile.GNU_FORMAT)
    pax_long = tar_bytes([(LONG_NAME, b"a")], format=tarfile.PAX_FORMAT)
    assert members_of(gnu_long) == reference_members(gnu_long)
    assert members_of(pax_long) == reference_members(pax_long)
    assert members_of(pax_long)[0][0] == LONG_NAME


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs the tar command")
@pytest.mark.parametrize("format", ["gnu", "posix", "ustar"])
def test_archives_written_by_the_tar_command(tmp_path, format):
    for name, data in MEMBERS[:4] + [(LONG_PATH, b"long")]:
        write_file(str(tmp_path / "files" / name), data)
    names = [name for name, _ in MEMBERS[:4]] + [LONG_PATH]
    archive = tmp_path / "shard.tar"
    command = ["tar", f"--format={format}", "-cf", str(archive), "-C", str(tmp_path / "files")]
    subprocess.run(command + ["--", *names], check=True, capture_output=True)
    data = archive.read_bytes()
    assert members_of(data) == reference_members(data)
    assert [name for name, _, _ in members_of(data)] == names


def test_in_tf_function_and_tf_data_as_eagerly():
    data = with_folders_and_links(tarfile.PAX_FORMAT)
    eager = tar_members(tf.constant(data))
    traced = tf.function(tar_members)(tf.constant(data))
    in_data = next(iter(tf.data.Dataset.from_tensors(tf.constant(data)).map(tar_members)))
    for a, b, c in zip(eager, traced, in_data):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a.numpy(), c.numpy())


def test_truncated_empty_and_garbage_archives_never_fail():
    data = tar_bytes(MEMBERS[:2])
    (_, first_offset, first_size), (_, second_offset, _) = reference_members(data)
    cut = second_offset + 4  # inside the second member's data
    assert members_of(data[:cut]) == [("x/one.jpg", first_offset, first_size), ("x/one.txt", second_offset, 4)]
    assert members_of(data[: first_offset + 10]) == [("x/one.jpg", first_offset, 10)]
    assert members_of(b"") == []
    assert members_of(b"not a tar archive" * 100) == []


def test_group_samples_by_key_in_order():
    names = [
        "a.jpg", "a.txt", "a.json",  # image + caption + other
        "dir/b.seg.PNG", "dir/b.txt",  # key "dir/b", extension "seg.png": not an image
        "c.txt",  # caption only
        "d.webp",  # image only
        "README",  # no extension: no sample
        "e.JPEG", "e.TXT",  # extensions in any case
        "a.txt",  # the same key again later: a new sample
    ]
    keys, images, captions = group_samples(tf.constant(names))
    assert [key.decode() for key in keys.numpy()] == ["a", "dir/b", "c", "d", "e", "a"]
    assert images.numpy().tolist() == [0, -1, -1, 6, 8, -1]
    assert captions.numpy().tolist() == [1, 4, 5, -1, 9, 10]


def test_caption_lines():
    lines = caption_lines(tf.constant(" first caption \r\n\nsecond\n  \nthird"))
    assert lines.numpy().tolist() == [b"first caption", b"second", b"third"]
    assert caption_lines(tf.constant("")).numpy().tolist() == []


@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
def test_shard_samples(tmp_path, compress):
    photos = captioned_photos(3, captions_per_photo=2)
    members = [member for photo in photos for member in sample_members(photo)]
    path = str(tmp_path / ("shard.tar.gz" if compress else "shard.tar"))
    write_file(path, tar_bytes(members, compress=compress))
    samples = list(shard_samples(tf.constant(path), tf.constant(7, tf.int64), tf.constant([1, 2], tf.int64)))
    assert len(samples) == 3
    for index, (sample, photo) in enumerate(zip(samples, photos)):
        assert sample["image"].numpy() == photo.data
        assert [caption.decode() for caption in sample["captions"].numpy()] == photo.captions
        assert sample["name"].numpy().decode() == f"{path}:{photo.name}"
        shard_seed = tf.random.experimental.stateless_fold_in(tf.constant([1, 2], tf.int64), tf.constant(7, tf.int64))
        expected_seed = tf.random.experimental.stateless_fold_in(shard_seed, tf.constant(index, tf.int64))
        np.testing.assert_array_equal(sample["seed"].numpy(), expected_seed.numpy())
    assert read_shard(tf.constant(path)).numpy() == tar_bytes(members)
