"""Find the images most similar to a text query in an embeddings file written by `keras-clip embed`.

Examples:
  keras-clip search photos.npy "a dog on a beach"
  keras-clip search photos.npy "a red car" "a birthday cake" --top-k 10
"""

from keras_clip.cli import arguments
from keras_clip.cli.loading import load_clip


def add_arguments(parser):
    parser.add_argument("embeddings", help=".npy file written by `keras-clip embed` (with its .json beside it)")
    parser.add_argument("query", nargs="+", help="one or more text queries")
    arguments.add_top_k(parser, "images listed per query")
    arguments.add_model(parser, default=None, help_extra="the model that made the embeddings")


def run(args):
    from keras_clip.serving.embedding import embed_texts
    from keras_clip.serving.search import read_index, search

    embeddings, paths, model_source = read_index(args.embeddings)
    args.model = args.model or model_source
    model = load_clip(args)
    queries = embed_texts(model, args.query, verbose=False)
    if queries.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"{args.model} embeds in {queries.shape[1]} dimensions but {args.embeddings} holds {embeddings.shape[1]}"
        )
    rows, scores = search(embeddings, queries, top_k=args.top_k)
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
