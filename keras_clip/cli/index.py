"""Build a search index of an embeddings file: exact when small, approximate (faiss) when large.

Examples:
  keras-clip index photos.npy --out photos.index
  keras-clip index photos.npy --out photos.index --recall 0.99
  keras-clip index more_photos.npy --out photos.index --add
"""

import argparse

from keras_clip.cli import arguments
from keras_clip.cli.loading import progress_bars

DEFAULT_RECALL = 0.95  # keras_clip.serving.index.DEFAULT_RECALL (not imported: --help stays instant)
DEFAULT_EXACT_BELOW = 100_000


def recall_value(text):
    """argparse type: a float in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def add_arguments(parser):
    parser.add_argument("embeddings", help=".npy file written by `keras-clip embed` (with its .json beside it)")
    parser.add_argument("--out", required=True, help="the index folder to write (or, with --add, to add to)")
    parser.add_argument("--recall", type=recall_value, default=DEFAULT_RECALL,
                        help="recall@10 against exact search that an approximate index is tuned to "
                        f"(default {DEFAULT_RECALL})")  # fmt: skip
    parser.add_argument("--exact-below", type=arguments.positive_int, default=DEFAULT_EXACT_BELOW, metavar="N",
                        help="collections of fewer rows get an exact index, larger ones an approximate one "
                        f"(needs faiss: pip install \"keras-clip[index]\"; default {DEFAULT_EXACT_BELOW})")  # fmt: skip
    parser.add_argument("--add", action="store_true", help="add the rows to the existing index at --out")


def run(args):
    import os

    from keras_clip.serving.index import build_index, load_index
    from keras_clip.serving.search import read_embeddings

    embeddings, paths, model_source = read_embeddings(args.embeddings)
    if args.add:
        index = load_index(args.out)
        if index.model != model_source:
            raise ValueError(f"{args.embeddings} was made by {model_source} but {args.out} holds {index.model}'s "
                             "embeddings: their similarities do not compare")  # fmt: skip
        index.add(embeddings, paths)
        index.save(args.out, overwrite=True)
        print(f"Added {len(embeddings)} rows to {args.out}: {index.size} rows, {index.kind}")
        return 0
    if os.path.exists(args.out):
        raise arguments.UsageError(f"{args.out} already exists: choose a new --out, or pass --add to add to it")
    index = build_index(embeddings, paths, model_source, recall=args.recall, exact_below=args.exact_below,
                        verbose=progress_bars())
    index.save(args.out)
    found = (f", searching {index.ef_search} candidates: recall@10 {index.recall['measured']:.3f} on held-out rows"
             if index.kind == "approximate" else "")  # fmt: skip
    print(f"Wrote an {index.kind} index of {index.size} rows to {args.out}{found}")
    return 0
