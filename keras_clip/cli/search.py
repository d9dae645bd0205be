"""Find the images most similar to a text query in an embeddings file or an index (`keras-clip index`).

Examples:
  keras-clip search photos.npy "a dog on a beach"
  keras-clip search photos.index "a red car" "a birthday cake" --top-k 10
"""

from keras_clip.cli import arguments
from keras_clip.cli.loading import load_clip, model_tokenizer


def add_arguments(parser):
    parser.add_argument("embeddings", help=".npy file written by `keras-clip embed` (with its .json beside it), "
                        "or an index folder written by `keras-clip index`")  # fmt: skip
    parser.add_argument("query", nargs="+", help="one or more text queries")
    arguments.add_top_k(parser, "images listed per query")
    arguments.add_model(parser, default=None, help_extra="the model that made the embeddings")


def run(args):
    import os

    from keras_clip.serving.embedding import embed_texts
    from keras_clip.serving.index import build_index, load_index
    from keras_clip.serving.search import read_embeddings

    if os.path.isdir(args.embeddings):
        index = load_index(args.embeddings)
    else:
        index = build_index(*read_embeddings(args.embeddings), kind="exact")
    args.model = args.model or index.model
    if args.model is None:
        raise arguments.UsageError(f"{args.embeddings} does not say which model made it: pass --model")
    model = load_clip(args)
    queries = embed_texts(model, args.query, verbose=False, tokenizer=model_tokenizer(args, model))
    if queries.shape[1] != index.dimension:
        raise ValueError(
            f"{args.model} embeds in {queries.shape[1]} dimensions but {args.embeddings} holds {index.dimension}"
        )
    rows, scores = index.search(queries, top_k=args.top_k)
    paths = index.paths
    lines = []  # all of it before printing any of it: an error never leaves half the results
    for query, query_rows, query_scores in zip(args.query, rows, scores):
        lines.append(f"{_printable(query)!r}:")
        for rank, (row, score) in enumerate(zip(query_rows, query_scores), start=1):
            lines.append(f"  {rank}. {score:.4f}  {_printable(paths[row])}")
    print("\n".join(lines))
    return 0


def _printable(text):
    """A path or query as text any terminal takes: surrogates (e.g. undecodable bytes of a file name) as U+FFFD."""
    from keras_clip.text.python_texts import fix_surrogates

    return fix_surrogates(text)
