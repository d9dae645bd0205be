"""`keras-clip embed --engine ray`: Ray workers write what `embed_images` computes; after a kill, a rerun
embeds only the lost shards (here with the local engine: the plan and its resumption are the same for both)."""

import json
import os
import sys

import numpy as np
import pytest

from keras_clip.checkpoints.keras_files import load_model_file
from keras_clip.serving.embedding import embed_images
from keras_clip.serving.shards import embed_collection
from tests.helpers.background import Job
from tests.helpers.embedding_collections import (
    FLOAT16_TOLERANCE,
    IMAGES,
    ROOT,
    SHARDS,
    lose_shards,
    read_collection,
)

RAY_COLLECTION = Job([sys.executable, "-m", "tests.helpers.embedding_collections", "{folder}"], cwd=ROOT)


@pytest.mark.background(RAY_COLLECTION)
def test_ray_workers_embed_like_embed_images_and_a_rerun_resumes():
    process = RAY_COLLECTION.result()
    assert process.returncode == 0, process.stderr[-3000:]
    folder = RAY_COLLECTION.folder
    out, images = os.path.join(folder, "out"), os.path.join(folder, "images")
    with open(os.path.join(folder, "run.json"), encoding="utf-8") as file:
        run = json.load(file)
    assert run["returncode"] == 0, run["stderr"]
    assert run["stdout"].strip() == f"Embedded {IMAGES} images in {SHARDS} shards into {out}"

    embeddings, metadata = read_collection(out, SHARDS)
    paths = sorted(os.path.join(images, name) for name in os.listdir(images))
    assert metadata == {"image_path": paths}
    model_path = os.path.join(folder, "tiny.keras")
    expected = embed_images(load_model_file(model_path), paths, verbose=False)
    np.testing.assert_allclose(embeddings.astype(np.float32), expected, atol=FLOAT16_TOLERANCE)

    lose_shards(out, [1, 3])
    summary = embed_collection(model_path, images, out, shard_size=IMAGES // SHARDS, verbose=False)
    assert summary == {"shards": SHARDS, "embedded": 2, "rows": IMAGES // 2}
    assert sorted(os.listdir(os.path.join(out, "metadata"))) == [f"metadata_{i}.parquet" for i in range(SHARDS)]
    np.testing.assert_allclose(read_collection(out, SHARDS)[0].astype(np.float32), expected, atol=FLOAT16_TOLERANCE)
