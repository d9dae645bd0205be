"""Embedding shards on Ray: the same `embed_shard` in actors that each load the model once.

A pool of Ray actors (`ray.util.ActorPool`) takes the shards one at a time; each actor loads the model
when it starts and then embeds shard after shard, writing its files itself, so nothing but the shards'
descriptions and row counts passes through Ray. An actor that dies (a lost machine) is restarted and its
shard retried; a shard that still fails stops the run, and a rerun embeds only the shards not done.
The same code runs on a laptop (a local Ray instance, started here) and on a cluster (`ray start --head`
on one machine, `ray start --address=HEAD:6379` on the others, then RAY_ADDRESS=HEAD:6379 or
`ray.init(address=...)` before calling): the output folder must then be one every worker can write (a
shared file system).
Ray core rather than Ray Data's `map_batches`: for units as large as shards, Ray Data's extra actors (its
statistics, autoscaling and locality helpers) and planning cost about 3 s per run, 5% of a 2,000-image
run on 2 cores (benchmarks/embedding.py), and bring nothing a queue of shards needs.
Ray is an optional extra: `pip install "keras-clip[distributed]"`.
"""

import os

from tqdm.auto import tqdm

RETRIES = 2  # restarts of a dead actor, and retries of the shard it held


def _ray():
    try:
        import ray
        import ray.util
    except ImportError:
        raise ImportError('engine="ray" needs Ray: pip install "keras-clip[distributed]"') from None
    return ray


class _ShardEmbedder:
    """A Ray actor: loads the model once, then embeds the shards it is given."""

    def __init__(self, model_source, settings):
        self.model, self.settings = settings.load_model(model_source), settings

    def embed(self, shard):
        return self.settings.embed(self.model, shard)


def embed_shards_on_ray(model_source, shards, settings, workers=None, verbose=True):
    """Embeds `shards` with Ray actors; returns the rows written.

    Args:
        model_source: what `keras_clip.load` takes (a released name or a checkpoint path every worker reads).
        shards: `Shard`s of `keras_clip.serving.shards.plan_shards` (the ones not done yet).
        settings: the collection's `ShardSettings` (its `out` folder shared by every worker).
        workers: actors, at most one per shard (None: one per 2 CPUs of the Ray cluster, at least one).
        verbose: a progress bar over the shards.
    """
    if not shards:
        return 0
    ray = _ray()
    if not ray.is_initialized():
        ray.init(log_to_driver=False, configure_logging=False)  # RAY_ADDRESS, if set, names a cluster
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = min(len(shards), workers or max(1, cpus // 2))
    embedder = ray.remote(_ShardEmbedder).options(
        num_cpus=max(1, cpus // workers), max_restarts=RETRIES, max_task_retries=RETRIES
    )
    actors = [embedder.remote(os.fspath(model_source), settings) for _ in range(workers)]
    rows = 0
    try:
        pool = ray.util.ActorPool(actors)
        with tqdm(total=len(shards), unit="shard", desc="Embedding shards", disable=not verbose) as bar:
            for shard_rows in pool.map_unordered(lambda actor, shard: actor.embed.remote(shard), shards):
                rows += shard_rows
                bar.update(1)
    finally:
        for actor in actors:
            ray.kill(actor)
    return rows
