"""Embedding shards on Ray Data: the same `embed_shard` in workers that each load the model once.

Ray Data runs one `map_batches` over the shards (one shard per batch) with a pool of actors; each actor
loads the model when it starts and then embeds shard after shard, writing its files itself, so nothing
but the shards' descriptions and row counts passes through Ray's object store. The same code runs on a
laptop (a local Ray instance, started here) and on a cluster (`ray start --head` on one machine,
`ray start --address=HEAD:6379` on the others, then RAY_ADDRESS=HEAD:6379 or `ray.init(address=...)`
before calling): the output folder must then be one every worker can write (a shared file system).
Ray is an optional extra: `pip install "keras-clip[distributed]"`.
"""

import os

from keras_clip.serving.shards import Shard, embed_shard


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError('engine="ray" needs Ray: pip install "keras-clip[distributed]"') from None
    return ray


class _ShardEmbedder:
    """A Ray Data actor: loads the model once, then embeds the shards it is given."""

    def __init__(self, model_source, out, batch_size):
        from keras_clip.checkpoints.load import load_model

        self.model = load_model(model_source, verbose=False)
        self.out, self.batch_size = out, batch_size

    def __call__(self, batch):
        rows = []
        for number, kind, inputs in zip(batch["number"], batch["kind"], batch["inputs"]):
            shard = Shard(int(number), str(kind), tuple(str(path) for path in inputs))
            rows.append(embed_shard(self.model, shard, self.out, self.batch_size))
        return {"number": batch["number"], "rows": rows}


def embed_shards_on_ray(model_source, shards, out, batch_size=32, workers=None, verbose=True):
    """Embeds `shards` into `out` with Ray Data actors; returns the rows written.

    Args:
        model_source: what `keras_clip.load` takes (a released name or a checkpoint path every worker reads).
        shards: `Shard`s of `keras_clip.serving.shards.plan_shards` (the ones not done yet).
        out: the collection's folder (shared by every worker).
        batch_size: images per model call.
        workers: actors (None: one per 2 CPUs of the Ray cluster, at least one).
        verbose: Ray Data's progress (bars on a terminal, log lines otherwise).
    """
    if not shards:
        return 0
    ray = _ray()
    if not ray.is_initialized():
        ray.init(log_to_driver=False, configure_logging=False)  # RAY_ADDRESS, if set, names a cluster
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = context.print_on_execution_start = context.enable_auto_log_stats = verbose
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = workers or max(1, cpus // 2)
    items = [{"number": shard.number, "kind": shard.kind, "inputs": list(shard.inputs)} for shard in shards]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    results = dataset.map_batches(
        _ShardEmbedder,
        fn_constructor_kwargs={"model_source": os.fspath(model_source), "out": out, "batch_size": batch_size},
        batch_size=1,
        concurrency=workers,
        num_cpus=max(1, cpus // workers),
    )
    return int(sum(row["rows"] for row in results.take_all()))
