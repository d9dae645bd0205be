"""A load test of an exported SavedModel: threads sending a mix of good, corrupt, oversize and empty requests.

The parent test builds a pool of encoded images (good ones with the eager model's embeddings, bad ones
with the phrase their error must contain) and a list of requests per thread; `run_load` serves them in
one fresh process (tests/helpers/memory.py's `run_capped`, killed past a memory cap), where
`tf.saved_model.load` of the export answers every request from `threads` threads at once. The child
checks every answer and reports counts, failures, throughput and its peak memory growth as JSON.
"""

import os
import pickle
import random

from tests.helpers.memory import run_capped

# A request: (kind, pool indices of its images, position of the bad image or None).
GOOD, CORRUPT, OVERSIZE, EMPTY = "good", "corrupt", "oversize", "empty"

_LOAD_SCRIPT = r"""
import importlib.machinery, pickle, threading, time
import numpy as np
import tensorflow as tf

# The export's text signatures use TF Text's NormalizeUTF8 (tensorflow_model_server links it in).
tf_text_dir = importlib.machinery.PathFinder.find_spec("tensorflow_text").submodule_search_locations[0]
tf.load_op_library(os.path.join(tf_text_dir, "python", "ops", "_normalize_ops.so"))

with open(sys.argv[1], "rb") as handle:
    plan = pickle.load(handle)
encode_image = tf.saved_model.load(plan["export_dir"]).signatures["encode_image"]
pool, expected = plan["pool"], plan["expected"]


def check(kind, indices, bad):
    batch = tf.constant([pool[i] for i in indices], tf.string) if indices else tf.zeros([0], tf.string)
    try:
        embeddings = encode_image(image_bytes=batch)["embeddings"].numpy()
    except tf.errors.InvalidArgumentError as error:
        if kind in ("corrupt", "oversize"):
            phrase = f"Could not decode the image at index {bad}: " + plan["phrases"][indices[bad]]
            return None if phrase in error.message else f"{kind}: {phrase!r} not in {error.message[-500:]!r}"
        return f"{kind}: unexpected error {error.message[-500:]!r}"
    if kind in ("corrupt", "oversize"):
        return f"{kind}: answered instead of failing"
    want = np.stack([expected[i] for i in indices]) if indices else np.zeros((0, plan["embed_dim"]), np.float32)
    if embeddings.shape != want.shape or np.abs(embeddings - want).max(initial=0) > plan["tolerance"]:
        return f"{kind}: embeddings differ (shape {embeddings.shape}, {want.shape})"
    return None


check("good", plan["warm_up"], None)  # traces and fills the allocator's caches
results = {"failures": [], "answered": 0, "refused": 0}
lock = threading.Lock()


def serve(requests):
    for kind, indices, bad in requests:
        failure = check(kind, indices, bad)
        with lock:
            results["answered" if kind in ("good", "empty") else "refused"] += 1
            if failure is not None:
                results["failures"].append(failure)


before, _ = memory_mb()
reset_peak()
start = time.perf_counter()
threads = [threading.Thread(target=serve, args=(requests,)) for requests in plan["requests"]]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
results["seconds"] = time.perf_counter() - start
results["peak_growth_mb"] = memory_mb()[1] - before
results["rss_mb_before"] = before
results["failures"] = results["failures"][:10] + ([f"... {len(results['failures'])} in all"]
                                                  if len(results["failures"]) > 10 else [])
print(json.dumps(results), flush=True)
"""


def plan_requests(good, bad, threads, requests_per_thread, max_batch=4, seed=0):
    """Each thread's requests: a quarter each good, corrupt, oversize and empty, in a random order.

    Args:
        good: pool indices of good images; bad: {kind: pool indices} for "corrupt" and "oversize".
    """
    rng = random.Random(seed)
    plans = []
    for _ in range(threads):
        requests = []
        for number in range(requests_per_thread):
            kind = (GOOD, CORRUPT, OVERSIZE, EMPTY)[number % 4]
            if kind == EMPTY:
                requests.append((kind, [], None))
                continue
            indices = [rng.choice(good) for _ in range(rng.randint(1, max_batch))]
            position = None
            if kind != GOOD:
                position = rng.randrange(len(indices) + 1)
                indices.insert(position, rng.choice(bad[kind]))
            requests.append((kind, indices, position))
        rng.shuffle(requests)
        plans.append(requests)
    return plans


def run_load(export_dir, pool, expected, phrases, requests, work_dir, embed_dim, cap_mb, tolerance=1e-5,
             timeout=600):  # fmt: skip
    """Serves `requests` (one list per thread) from `export_dir` in a fresh process; its `CappedRun`.

    Args:
        pool: encoded images (bytes); expected: {pool index: normalised embedding} of the good ones;
        phrases: {pool index: what its error message must say after "Could not decode the image at index i: "}.
    """
    plan = dict(export_dir=export_dir, pool=pool, expected=expected, phrases=phrases, requests=requests,
                embed_dim=embed_dim, tolerance=tolerance, warm_up=sorted(expected)[:2])  # fmt: skip
    path = os.path.join(work_dir, "load_plan.pkl")
    with open(path, "wb") as handle:
        pickle.dump(plan, handle)
    return run_capped(_LOAD_SCRIPT.replace("sys.argv[1]", repr(path)), cap_mb, timeout)
