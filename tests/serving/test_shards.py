"""Collections embedded in shards: clip-retrieval's files, equal to `embed_images` row for row, resumable."""

import json
import os

import numpy as np
import pytest

from keras_clip.serving import shards as shards_module
from keras_clip.serving.embedding import embed_images, embed_texts
from keras_clip.serving.shards import embed_collection, plan_shards
from tests.helpers.caption_files import captioned_photos, corrupt_image, write_caption_dataset, write_tar_shards
from tests.helpers.embedding_collections import FLOAT16_TOLERANCE, read_collection
from tests.helpers.tiny_models import tiny_clip

@pytest.fixture(scope="module")
def model():
    return tiny_clip(seed=3)


def photo_folder(folder, count, corrupt=()):
    """`count` photographs as files under `folder/images` (and corrupt files named in `corrupt`); sorted paths."""
    write_caption_dataset(folder, "csv", captioned_photos(count))
    for name in corrupt:
        (folder / "images" / name).write_bytes(corrupt_image("truncated"))
    return sorted(str(path) for path in (folder / "images").iterdir())


def test_a_folder_in_shards_is_embed_images_row_for_row(model, tmp_path):
    paths = photo_folder(tmp_path, 11, corrupt=["broken.jpg"])
    summary = embed_collection(model, str(tmp_path / "images"), str(tmp_path / "out"), shard_size=5, verbose=False)
    assert summary == {"shards": 3, "embedded": 3, "rows": 11}
    embeddings, metadata = read_collection(tmp_path / "out", 3)
    expected, kept = embed_images(model, paths, skip_errors=True, verbose=False, return_paths=True)
    assert metadata == {"image_path": kept} and str(tmp_path / "images" / "broken.jpg") not in kept
    assert embeddings.dtype == np.float16
    np.testing.assert_allclose(embeddings.astype(np.float32), expected, atol=FLOAT16_TOLERANCE)
    assert sorted(os.listdir(tmp_path / "out")) == ["img_emb", "keras_clip.json", "metadata"]


def test_a_rerun_embeds_only_the_shards_not_done(model, tmp_path, monkeypatch):
    photo_folder(tmp_path, 9)
    out = str(tmp_path / "out")
    embed_shard = shards_module.embed_shard

    def killed_at_the_third_shard(model, shard, *args):
        if shard.number == 2:
            raise KeyboardInterrupt
        return embed_shard(model, shard, *args)

    monkeypatch.setattr(shards_module, "embed_shard", killed_at_the_third_shard)
    with pytest.raises(KeyboardInterrupt):
        embed_collection(model, str(tmp_path / "images"), out, shard_size=3, verbose=False)
    assert sorted(os.listdir(os.path.join(out, "metadata"))) == ["metadata_0.parquet", "metadata_1.parquet"]
    monkeypatch.undo()
    summary = embed_collection(model, str(tmp_path / "images"), out, shard_size=3, verbose=False)
    assert summary == {"shards": 3, "embedded": 1, "rows": 3}
    assert embed_collection(model, str(tmp_path / "images"), out, shard_size=3, verbose=False)["embedded"] == 0
    assert len(read_collection(out, 3)[1]["image_path"]) == 9
    with pytest.raises(ValueError, match="holds the embeddings of other images"):
        embed_collection(model, str(tmp_path / "images"), out, shard_size=4, verbose=False)


def written_files(folder, samples):
    """The samples' images as files (the same bytes as in the tar shards); their paths in order."""
    folder.mkdir()
    for sample in samples:
        (folder / sample.filename).write_bytes(sample.data)
    return [str(folder / sample.filename) for sample in samples]


def test_tar_shards_give_caption_embeddings_too(model, tmp_path):
    samples = captioned_photos(7)
    pattern = write_tar_shards(str(tmp_path / "shards"), samples, shards=2)
    assert [shard.kind for shard in plan_shards(pattern)] == ["tar", "tar"]
    summary = embed_collection(model, pattern, str(tmp_path / "out"), verbose=False)
    assert summary == {"shards": 2, "embedded": 2, "rows": 7}
    embeddings, metadata = read_collection(tmp_path / "out", 2)
    assert metadata["image_path"] == [f"{tmp_path / 'shards' / f'shard-00{i // 4}.tar'}:{s.name}"
                                      for i, s in enumerate(samples)]  # fmt: skip
    assert metadata["caption"] == [sample.captions[0] for sample in samples]
    expected = embed_images(model, written_files(tmp_path / "files", samples), verbose=False)
    np.testing.assert_allclose(embeddings.astype(np.float32), expected, atol=FLOAT16_TOLERANCE)
    texts = np.concatenate([np.load(tmp_path / "out" / "text_emb" / f"text_emb_{i}.npy") for i in range(2)])
    np.testing.assert_allclose(texts.astype(np.float32), embed_texts(model, metadata["caption"], verbose=False),
                               atol=FLOAT16_TOLERANCE)  # fmt: skip


def test_the_plan_names_the_model_and_every_shard(model, tmp_path):
    paths = photo_folder(tmp_path, 4)
    (tmp_path / "list.txt").write_text("\n".join(os.path.relpath(path, tmp_path) for path in paths) + "\n\n")
    shards = plan_shards(str(tmp_path / "list.txt"), shard_size=3)
    assert [list(shard.inputs) for shard in shards] == [paths[:3], paths[3:]]
    embed_collection(model, str(tmp_path / "list.txt"), str(tmp_path / "out"), shard_size=3, verbose=False)
    plan = json.loads((tmp_path / "out" / "keras_clip.json").read_text())
    assert plan == {"model": None, "dtype": None, "shards": [["files", paths[:3]], ["files", paths[3:]]]}
    with pytest.raises(ValueError, match="engine must be one of"):
        embed_collection(model, paths, str(tmp_path / "other"), engine="spark")
    with pytest.raises(ValueError, match="pass its name or path, not a loaded model"):
        embed_collection(model, paths, str(tmp_path / "other"), engine="ray")


def test_a_shard_of_unreadable_images_is_written_empty_and_done(model, tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a.jpg", "b.png"):
        (tmp_path / "images" / name).write_bytes(corrupt_image("text"))
    summary = embed_collection(model, str(tmp_path / "images"), str(tmp_path / "out"), verbose=False)
    assert summary == {"shards": 1, "embedded": 1, "rows": 0}
    embeddings, metadata = read_collection(tmp_path / "out", 1)
    assert embeddings.shape == (0, model.embed_dim) and metadata == {"image_path": []}
    assert embed_collection(model, str(tmp_path / "images"), str(tmp_path / "out"), verbose=False)["embedded"] == 0
