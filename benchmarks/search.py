"""Searching a million embeddings: the approximate index (faiss IVF) against exact brute force, in one run.

The collection is synthetic: `--rows` 512-d vectors around `rows / 50` random centres (as image
embeddings group by subject), and `--queries` fresh vectors drawn the same way (not rows of the collection).
Reported for each index: build time, resident memory it added, its size on disk, recall@10 against
exact search (the approximate index's own tuning estimate beside it), and the median latency of one
query at a time (what a search page sends).

Usage: python benchmarks/search.py [--rows 1000000] [--queries 1000] [--recall 0.95]
Targets: recall@10 >= 0.95 and a median query under 10 ms for the approximate index, on 1,000,000 rows.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import machine_description, print_table  # noqa: E402
from benchmarks.process_memory import GB, rss_bytes  # noqa: E402

DIMENSION = 512
ROWS_PER_CENTRE = 50  # small groups (a few near-duplicates of one subject), so a row's 10 neighbours span groups
SPREAD = 1.0  # per-dimension noise around a centre (centres are standard normal): clusters overlap


def clustered_rows(count, seed, centres, spread):
    """`count` float32 rows around `centres`, generated in blocks (1M x 512 float32 is 2 GB)."""
    rng = np.random.default_rng(seed)
    rows = np.empty((count, DIMENSION), np.float32)
    for start in range(0, count, 100_000):
        size = min(100_000, count - start)
        noise = rng.standard_normal((size, DIMENSION), dtype=np.float32) * spread
        rows[start : start + size] = centres[rng.integers(0, len(centres), size)] + noise
    return rows


def median_query_milliseconds(index, queries, top_k=10):
    times = []
    for query in queries:
        start = time.perf_counter()
        index.search(query[None], top_k)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def recall_at_10(found, expected):
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, expected)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--recall", type=float, default=0.95, help="the approximate index's recall target")
    parser.add_argument("--spread", type=float, default=SPREAD, help="noise around the centres (larger: harder)")
    args = parser.parse_args()

    from keras_clip.serving.index import build_index

    print(machine_description())
    centres = np.random.default_rng(0).standard_normal((max(1, args.rows // ROWS_PER_CENTRE), DIMENSION),
                                                       dtype=np.float32)  # fmt: skip
    rows = clustered_rows(args.rows, 1, centres, args.spread)
    queries = clustered_rows(args.queries, 2, centres, args.spread)
    print(f"{args.rows:,} rows and {args.queries:,} queries of {DIMENSION} dimensions around {len(centres):,} centres "
          f"(spread {args.spread})")

    results = {}
    for kind in ("exact", "approximate"):
        before = rss_bytes()
        start = time.perf_counter()
        index = build_index(rows, kind=kind, recall=args.recall, verbose=False)
        build_seconds = time.perf_counter() - start
        added = rss_bytes() - before
        with tempfile.TemporaryDirectory() as folder:
            index.save(os.path.join(folder, "index"))
            disk = sum(entry.stat().st_size for entry in os.scandir(os.path.join(folder, "index")))
        found, _ = index.search(queries, 10)
        results[kind] = dict(index=index, build=build_seconds, memory=added, disk=disk, found=found,
                             latency=median_query_milliseconds(index, queries[: min(1000, len(queries))]))  # fmt: skip

    expected = results["exact"]["found"]
    table = []
    for kind, result in results.items():
        index = result["index"]
        recall = recall_at_10(result["found"], expected)
        tuning = f"{index.recall['measured']:.3f} (ef_search {index.ef_search})" if kind == "approximate" else "-"
        table.append([kind, f"{result['build']:.1f}", f"{result['memory'] / GB:.2f}", f"{result['disk'] / GB:.2f}",
                      f"{recall:.3f}", tuning, f"{result['latency']:.2f}"])  # fmt: skip
    print_table(["index", "build s", "memory GB", "disk GB", "recall@10", "tuning estimate", "median ms/query"],
                table)  # fmt: skip
    exact_ms, approximate_ms = results["exact"]["latency"], results["approximate"]["latency"]
    print(f"approximate / exact latency: {approximate_ms / exact_ms:.3f}x")


if __name__ == "__main__":
    main()
