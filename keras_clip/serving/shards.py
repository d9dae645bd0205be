"""A large image collection embedded shard by shard into clip-retrieval's layout: resumable, on any engine.

    OUT/img_emb/img_emb_{i}.npy          float16 [rows of shard i, D], L2-normalised
    OUT/text_emb/text_emb_{i}.npy        the same for the captions (tar shards with .txt captions)
    OUT/metadata/metadata_{i}.parquet    one row per embedding: image_path (and caption)
    OUT/keras_clip.json                  the model and the shards (what a rerun checks before resuming)

The files of clip-retrieval's `inference` (and so what its `index` and back end, and autofaiss, read). A
shard is a run of `shard_size` image files (from a folder or a file list), or one WebDataset tar shard.
Each shard's files are written under temporary names and renamed, the metadata last: a shard is done
exactly when its metadata file exists, so a rerun after a kill embeds only the shards not done. Images
that cannot be read or decoded are skipped (their rows simply absent from the metadata).
The shards are independent: `embed_collection(..., engine="ray")` hands them to Ray workers
(keras_clip.serving.ray_engine), each loading the model once.
"""

import dataclasses
import json
import os

import numpy as np

from keras_clip.utils.atomic_files import atomic_path, save_json, save_npy

DEFAULT_SHARD_SIZE = 10_000
PLAN_FILE = "keras_clip.json"
ENGINES = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class Shard:
    """One unit of work: `number` (its files' index), `kind` ("files" or "tar") and its `inputs` (image
    paths, or the one tar shard's path)."""

    number: int
    kind: str
    inputs: tuple


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError('Writing embedding shards needs pyarrow: pip install "keras-clip[distributed]"') from None
    return pyarrow


def plan_shards(source, shard_size=DEFAULT_SHARD_SIZE):
    """The shards of a collection, in a fixed order (the same on every machine and every rerun).

    Args:
        source: a folder of images (searched recursively), a `.txt` file listing image paths (one per line,
            relative to the file's folder unless absolute), a list of image paths, or tar shards (a
            `.tar` path or pattern such as "data/{000..099}.tar", or a list of them).
        shard_size: image files per shard (tar shards are taken as they are).

    Returns:
        A list of `Shard`s.
    """
    from keras_clip.data.sources import expand_shards
    from keras_clip.image.files import list_image_files

    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive int, got {shard_size!r}")
    named = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if named and all(_is_tar(path) for path in named):
        return [Shard(number, "tar", (path,)) for number, path in enumerate(expand_shards(source))]
    if isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
        paths = _listed_files(source) if source.endswith(".txt") else list_image_files(source)
    else:
        paths = [os.fspath(path) for path in source]
    if not paths:
        raise ValueError("No image files to embed")
    return [Shard(number, "files", tuple(paths[start : start + shard_size]))
            for number, start in enumerate(range(0, len(paths), shard_size))]  # fmt: skip


def _is_tar(path):
    return os.fspath(path).lower().endswith((".tar", ".tar.gz", ".tgz"))  # patterns too: "{000..009}.tar"


def _listed_files(list_path):
    if not os.path.isfile(list_path):
        raise FileNotFoundError(f"{list_path} does not exist")
    folder = os.path.dirname(os.path.abspath(list_path))
    with open(list_path, encoding="utf-8") as file:
        lines = [line.strip() for line in file]
    return [line if os.path.isabs(line) else os.path.join(folder, line) for line in lines if line]


def _shard_file(out, folder, number, suffix):
    return os.path.join(out, folder, f"{folder}_{number}{suffix}")


def shard_done(out, shard):
    """True when the shard's files are all written (its metadata, written last, exists)."""
    return os.path.isfile(_shard_file(out, "metadata", shard.number, ".parquet"))


def start_collection(out, model_source, shards, dtype=None):
    """Writes (or, resuming, checks) `OUT/keras_clip.json`; returns the shards not done yet.

    Raises:
        ValueError: `out` holds the shards of another model (or dtype) or collection.
    """
    plan = {"model": model_source, "dtype": dtype, "shards": [[shard.kind, list(shard.inputs)] for shard in shards]}
    plan_path = os.path.join(out, PLAN_FILE)
    if os.path.isfile(plan_path):
        with open(plan_path, encoding="utf-8") as file:
            earlier = json.load(file)
        if earlier != plan:
            same_model = [earlier.get("model"), earlier.get("dtype")] == [model_source, dtype]
            what = "images" if same_model else "model"
            raise ValueError(f"{out} holds the embeddings of other {what} ({PLAN_FILE} differs): choose a new folder")
    else:
        os.makedirs(out, exist_ok=True)
        save_json(plan_path, plan)
    return [shard for shard in shards if not shard_done(out, shard)]


def _tar_samples(path):
    """(names, encoded images, captions) of a tar shard's samples that have an image ("" caption if none)."""
    import tensorflow as tf

    from keras_clip.data.tar_shards import caption_lines, group_samples, read_shard, tar_members

    archive = read_shard(tf.constant(path))
    names, offsets, sizes = tar_members(archive)
    keys, image_members, caption_members = group_samples(names)
    samples = []
    for key, image, caption in zip(keys.numpy(), image_members.numpy(), caption_members.numpy()):
        if image < 0:
            continue
        encoded = tf.strings.substr(archive, offsets[image], sizes[image])
        lines = caption_lines(tf.strings.substr(archive, offsets[caption], sizes[caption])) if caption >= 0 else []
        text = lines[0].numpy().decode("utf-8", "replace") if len(lines) else ""
        samples.append((f"{path}:{key.decode('utf-8', 'replace')}", encoded, text))
    return samples


def embed_shard(model, shard, out, batch_size=32, max_pixels="model"):
    """Embeds one shard's images (and captions) and writes its files; returns the rows written.

    Args:
        model: a `keras_clip.CLIP`.
        shard: a `Shard` of `plan_shards`.
        out: the collection's folder.
        batch_size: images per model call.
        max_pixels: images of more pixels are skipped, as `embed_images` takes it.
    """
    import tensorflow as tf

    from keras_clip.serving.embedding import embed_images, embed_texts

    captions = None
    if shard.kind == "files":
        embeddings, kept = embed_images(model, list(shard.inputs), batch_size=batch_size, skip_errors=True,
                                        verbose=False, return_paths=True, max_pixels=max_pixels)  # fmt: skip
    else:
        samples = _tar_samples(shard.inputs[0])
        names = tf.constant([name for name, _, _ in samples], tf.string)
        encoded = tf.stack([image for _, image, _ in samples]) if samples else tf.zeros([0], tf.string)
        embeddings, kept = embed_images(model, tf.data.Dataset.from_tensor_slices((names, encoded)),
                                        batch_size=batch_size, skip_errors=True, verbose=False,
                                        return_paths=True, max_pixels=max_pixels)  # fmt: skip
        caption_of = {name: caption for name, _, caption in samples}
        captions = [caption_of[name] for name in kept]
    save_npy(_shard_file(out, "img_emb", shard.number, ".npy"), embeddings.astype(np.float16))
    columns = {"image_path": kept}
    if captions is not None:
        text_embeddings = embed_texts(model, captions, verbose=False) if captions else embeddings[:0]
        save_npy(_shard_file(out, "text_emb", shard.number, ".npy"), text_embeddings.astype(np.float16))
        columns["caption"] = captions
    pyarrow = _pyarrow()
    table = pyarrow.table({name: pyarrow.array(values, pyarrow.string()) for name, values in columns.items()})
    metadata_path = _shard_file(out, "metadata", shard.number, ".parquet")
    with atomic_path(metadata_path, suffix=".parquet") as temporary:
        pyarrow.parquet.write_table(table, temporary)
    return len(kept)


def embed_collection(model, source, out, engine="local", shard_size=DEFAULT_SHARD_SIZE, batch_size=32,
                     workers=None, verbose=True, cache_dir=None, dtype=None, max_pixels="model"):  # fmt: skip
    """Embeds a collection shard by shard into clip-retrieval's layout under `out`; resumes where it stopped.

    Args:
        model: a released model's name or a checkpoint path (what `keras_clip.load` takes; each Ray
            worker loads it once), or, for the local engine, a loaded `keras_clip.CLIP`.
        source: images as `plan_shards` takes them (a folder, a `.txt` file list, paths, tar shards).
        out: the collection's folder (created; a rerun with the same model and images resumes).
        engine: "local" (this process) or "ray" (Ray actors; `ray.init` is called if no Ray
            instance is connected yet: set RAY_ADDRESS to use a cluster).
        shard_size: image files per shard.
        batch_size: images per model call.
        workers: Ray workers (None: one per 2 CPUs of the Ray cluster).
        verbose: show progress.
        cache_dir, dtype: how a named model is loaded (as `keras_clip.load` takes them; the dtype is
            recorded with the model: a rerun must pass the same).
        max_pixels: images of more pixels are skipped, as `embed_images` takes it.

    Returns:
        `{"shards": shards in the collection, "embedded": shards embedded by this call, "rows": rows written
        by this call}`.

    Example:
    >>> keras_clip.serving.shards.embed_collection("ViT-B/32", "photos/", "photos_embeddings/")
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    # A loaded model has no name to record: the plan then says None, and a rerun must pass a loaded model too.
    model_source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    if engine == "ray" and model_source is None:
        raise ValueError("engine='ray' loads the model on each worker: pass its name or path, not a loaded model")
    _pyarrow()
    shards = plan_shards(source, shard_size)
    todo = start_collection(os.fspath(out), model_source, shards, dtype)
    settings = ShardSettings(os.fspath(out), batch_size, max_pixels, cache_dir, dtype)
    if engine == "ray":
        from keras_clip.serving.ray_engine import embed_shards_on_ray

        rows = embed_shards_on_ray(model_source, todo, settings, workers, verbose)
    else:
        rows = _embed_shards_here(model, todo, settings, verbose)
    return {"shards": len(shards), "embedded": len(todo), "rows": rows}


@dataclasses.dataclass(frozen=True)
class ShardSettings:
    """What every shard of a collection is embedded with: where (`out`), how (`batch_size`, `max_pixels`),
    and how a named model is loaded (`cache_dir`, `dtype`)."""

    out: str
    batch_size: int = 32
    max_pixels: object = "model"
    cache_dir: str = None
    dtype: str = None

    def load_model(self, model_source, verbose=False):
        from keras_clip.checkpoints.load import load_model

        return load_model(model_source, cache_dir=self.cache_dir, dtype=self.dtype, verbose=verbose)

    def embed(self, model, shard):
        return embed_shard(model, shard, self.out, self.batch_size, self.max_pixels)


def _embed_shards_here(model, shards, settings, verbose):
    from tqdm.auto import tqdm

    if shards and isinstance(model, (str, os.PathLike)):
        model = settings.load_model(os.fspath(model), verbose)
    rows = 0
    for shard in tqdm(shards, unit="shard", desc="Embedding shards", disable=not verbose):
        rows += settings.embed(model, shard)
    return rows
