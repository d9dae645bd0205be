"""Collections embedded in shards: reading one back, losing shards as a kill would, and a Ray run to check.

`read_collection(out, shards)` gives a collection's image embeddings and metadata; `lose_shards(out, numbers)`
leaves what a kill during their writing leaves.

    python -m tests.helpers.embedding_collections FOLDER

writes FOLDER/images (200 small crops of real photographs) and FOLDER/tiny.keras (a tiny CLIP), then runs
`keras-clip embed FOLDER/images --out FOLDER/out --engine ray --shard-size 50` (4 shards, a local Ray instance,
its session files under FOLDER) and writes its exit status and output to FOLDER/run.json. A subprocess: Ray's
local instance and its workers are processes of their own.
"""

import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARDS = 4
IMAGES = 200
# float16 rows of L2-normalised float32 embeddings: within float16's rounding (2^-11 relative) of them.
FLOAT16_TOLERANCE = 1e-3


def read_collection(out, shard_count):
    """(image embeddings, metadata columns) of every shard, in shard order."""
    import pyarrow
    import pyarrow.parquet

    embeddings = [np.load(os.path.join(out, "img_emb", f"img_emb_{i}.npy")) for i in range(shard_count)]
    tables = [pyarrow.parquet.read_table(os.path.join(out, "metadata", f"metadata_{i}.parquet"))
              for i in range(shard_count)]  # fmt: skip
    return np.concatenate(embeddings), pyarrow.concat_tables(tables).to_pydict()


def embed_command(folder):
    return [sys.executable, "-m", "keras_clip.cli", "embed", os.path.join(folder, "images"), "--out",
            os.path.join(folder, "out"), "--engine", "ray", "--workers", "1", "--shard-size", str(IMAGES // SHARDS),
            "--model", os.path.join(folder, "tiny.keras")]  # fmt: skip


def lose_shards(out, numbers):
    """What a kill while these shards were written leaves: no metadata, maybe their embeddings, a temporary."""
    for number in numbers:
        os.remove(os.path.join(out, "metadata", f"metadata_{number}.parquet"))
    from keras_clip.utils.atomic_files import HOST

    dead_writer = os.path.join(out, "metadata", f".metadata_{numbers[0]}.parquet.999999999-{HOST}.0badc0de.tmp")
    with open(dead_writer, "wb") as file:
        file.write(b"half a parquet file")


def main(folder):
    sys.path.insert(0, ROOT)
    from tests.helpers.caption_files import captioned_photos
    from tests.helpers.cli import saved_tiny_clip

    os.makedirs(os.path.join(folder, "images"))
    for sample in captioned_photos(IMAGES, seed=5):
        with open(os.path.join(folder, "images", sample.filename), "wb") as file:
            file.write(sample.data)
    import pathlib

    saved_tiny_clip(pathlib.Path(folder), seed=6)
    # Ray's session files (logs, sockets) in the job's folder, removed with it, instead of /tmp/ray.
    environment = dict(os.environ, PYTHONPATH=ROOT, RAY_DISABLE_USAGE_STATS="1", RAY_TMPDIR=os.path.join(folder, "r"))
    process = subprocess.run(embed_command(folder), capture_output=True, text=True, env=environment, cwd=ROOT)
    with open(os.path.join(folder, "run.json"), "w", encoding="utf-8") as file:
        json.dump({"returncode": process.returncode, "stdout": process.stdout, "stderr": process.stderr[-3000:]}, file)


if __name__ == "__main__":
    main(sys.argv[1])
