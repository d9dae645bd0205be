"""Reading caption files and folders into an index; shard patterns; clear errors for bad sources."""

import logging
import os

import pytest

from keras_clip.data import read_caption_index
from keras_clip.data.sources import expand_braces, expand_shards, infer_format
from tests.helpers.caption_files import captioned_photos, write_caption_dataset, write_file


@pytest.mark.parametrize("layout", ["csv", "tsv", "jsonl", "folder"])
def test_every_layout_lists_images_with_their_captions(tmp_path, layout):
    photos = captioned_photos(5, captions_per_photo=2)
    photos[1].captions = ['one caption, with a comma and "quotes"']
    source = write_caption_dataset(str(tmp_path), layout, photos)
    index = read_caption_index(source)
    folder = os.path.join(str(tmp_path), "photos" if layout == "folder" else "images")
    assert index.image_paths == [os.path.join(folder, photo.filename) for photo in photos]
    assert all(os.path.isabs(path) or path.startswith(str(tmp_path)) for path in index.image_paths)
    if layout == "folder":
        assert index.captions is None
        assert index.caption_files == [os.path.join(folder, photo.name + ".txt") for photo in photos]
    else:
        assert index.caption_files is None
        assert index.captions == [photo.captions for photo in photos]  # repeated rows merged, in order


def test_columns_by_name_and_image_root(tmp_path):
    photos = captioned_photos(2)
    source = write_caption_dataset(str(tmp_path), "csv", photos, columns=("url", "alt text"))
    with pytest.raises(ValueError, match=r"no image path column: looked for \['filepath', 'image'"):
        read_caption_index(source)
    with pytest.raises(ValueError, match=r"has no caption column 'caption'; its columns are \['alt text', 'url'\]"):
        read_caption_index(source, image_column="url", caption_column="caption")
    index = read_caption_index(source, image_column="url", caption_column="alt text", image_root="/data")
    assert index.image_paths == [f"/data/images/{photo.filename}" for photo in photos]
    assert index.captions == [photo.captions for photo in photos]


def test_openclip_style_tsv_and_absolute_paths(tmp_path):
    rows = ["filepath\ttitle", "/abs/a.jpg\ta cat", "gs://bucket/b.png\ta dog", "c.jpg\ta cow"]
    write_file(str(tmp_path / "train.tsv"), "\n".join(rows) + "\n")
    index = read_caption_index(str(tmp_path / "train.tsv"))
    assert index.image_paths == ["/abs/a.jpg", "gs://bucket/b.png", str(tmp_path / "c.jpg")]
    assert index.captions == [["a cat"], ["a dog"], ["a cow"]]


def test_empty_captions_are_left_out_with_a_warning(tmp_path, caplog):
    write_file(str(tmp_path / "c.csv"), "\ufeffimage,caption\na.jpg,a cat\nb.jpg,\nb.jpg,   \na.jpg,\n")
    with caplog.at_level(logging.WARNING, logger="keras_clip.data"):
        index = read_caption_index(str(tmp_path / "c.csv"))
    assert index.image_paths == [str(tmp_path / "a.jpg")] and index.captions == [["a cat"]]
    assert "3 empty caption(s) left out" in caplog.text
    assert "1 image(s) have no caption and are left out" in caplog.text


def test_jsonl_errors_name_the_line(tmp_path):
    path = str(tmp_path / "c.jsonl")
    write_file(path, '{"image": "a.jpg", "caption": "a cat"}\n\n{"image": "b.jpg", "caption": "a dog"\n')
    with pytest.raises(ValueError, match=r"line 3: not valid JSON"):
        read_caption_index(path)
    write_file(path, '{"image": "a.jpg", "caption": "a cat"}\n{"image": "b.jpg", "text": "a dog"}\n')
    with pytest.raises(ValueError, match=r"line 2: the record has no key 'caption'"):
        read_caption_index(path)
    write_file(path, '{"image": "a.jpg", "caption": 3}\n')
    with pytest.raises(ValueError, match=r"line 1: 'image' must be a string and 'caption' a string or a list"):
        read_caption_index(path)
    write_file(path, '["a.jpg", "a cat"]\n')
    with pytest.raises(ValueError, match=r"line 1: expected a JSON object, got list"):
        read_caption_index(path)


def test_bad_tables(tmp_path):
    write_file(str(tmp_path / "empty.csv"), "")
    with pytest.raises(ValueError, match="is empty: it needs a header row"):
        read_caption_index(str(tmp_path / "empty.csv"))
    write_file(str(tmp_path / "header.csv"), "filepath,caption\n")
    with pytest.raises(ValueError, match="has no image with a non-empty caption"):
        read_caption_index(str(tmp_path / "header.csv"))
    write_file(str(tmp_path / "tabs.csv"), "filepath,caption\na.jpg\tcat\n")
    with pytest.raises(ValueError, match=r"line 2: the row has fewer fields than the header"):
        read_caption_index(str(tmp_path / "tabs.csv"))
    write_file(str(tmp_path / "nopath.csv"), "filepath,caption\n,a cat\n")
    with pytest.raises(ValueError, match=r"line 2: the image path is empty"):
        read_caption_index(str(tmp_path / "nopath.csv"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_caption_index(str(tmp_path / "missing.csv"))


def test_bad_folders(tmp_path, caplog):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no image \(looked for .jpg, .jpeg"):
        read_caption_index(str(tmp_path / "empty"))
    photos = captioned_photos(3)
    for photo in photos:
        write_file(str(tmp_path / "uncaptioned" / photo.filename), photo.data)
    with pytest.raises(ValueError, match=r"None of the 3 images .* has a caption file"):
        read_caption_index(str(tmp_path / "uncaptioned"))
    write_file(str(tmp_path / "uncaptioned" / "nested" / "x.png"), photos[0].data)
    write_file(str(tmp_path / "uncaptioned" / "nested" / "x.txt"), "a nested photo\n")
    with caplog.at_level(logging.WARNING, logger="keras_clip.data"):
        index = read_caption_index(str(tmp_path / "uncaptioned"))
    assert index.image_paths == [str(tmp_path / "uncaptioned" / "nested" / "x.png")]
    assert "3 of 4 images have no .txt caption file and are left out" in caplog.text
    with pytest.raises(FileNotFoundError, match="does not exist or is not a folder"):
        read_caption_index(str(tmp_path / "nowhere"), format="folder")


def test_infer_format(tmp_path):
    assert infer_format(str(tmp_path)) == "folder"
    assert [infer_format(name) for name in ("a.CSV", "a.tsv", "a.jsonl", "s-{0..3}.tar", "x.tgz")] == [
        "csv", "tsv", "jsonl", "tar", "tar",
    ]
    assert infer_format(["a.tar", "b.tar.gz"]) == "tar"
    with pytest.raises(ValueError, match="A list of sources must be tar shards"):
        infer_format(["a.csv"])
    write_file(str(tmp_path / "captions.txt"), "a.jpg a cat\n")
    with pytest.raises(ValueError, match="Cannot tell the format .* pass format="):
        infer_format(str(tmp_path / "captions.txt"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        infer_format(str(tmp_path / "nothing"))


def test_shard_patterns(tmp_path):
    assert expand_braces("s-{008..011}.tar") == ["s-008.tar", "s-009.tar", "s-010.tar", "s-011.tar"]
    assert expand_braces("{a,b}/s-{0..1}.tar") == ["a/s-0.tar", "a/s-1.tar", "b/s-0.tar", "b/s-1.tar"]
    with pytest.raises(ValueError, match="ends before it starts"):
        expand_braces("s-{3..1}.tar")
    names = ("s-000.tar", "s-001.tar", "s-002.tar.gz")
    for name in names:
        write_file(str(tmp_path / name), b"")
    assert expand_shards(str(tmp_path / "s-{000..001}.tar")) == [str(tmp_path / name) for name in names[:2]]
    assert expand_shards(str(tmp_path / "s-*")) == [str(tmp_path / name) for name in names]
    assert expand_shards([str(tmp_path / "s-002.tar.gz"), str(tmp_path / "s-000.tar")])[0].endswith("s-002.tar.gz")
    with pytest.raises(FileNotFoundError, match=r"1 of 3 tar shards do not exist, e.g. '.*s-002.tar'"):
        expand_shards(str(tmp_path / "s-{000..002}.tar"))
    with pytest.raises(FileNotFoundError, match="No tar shard matches"):
        expand_shards(str(tmp_path / "t-*.tar"))
    with pytest.raises(ValueError, match="must be .tar, .tar.gz or .tgz files"):
        expand_shards(str(tmp_path / "s-000.csv"))
    with pytest.raises(ValueError, match="No tar shard given"):
        expand_shards([])
