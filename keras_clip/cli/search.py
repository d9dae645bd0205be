"""Find the images most similar to a text query in an embeddings file written by `keras-clip embed`.

Examples:
  keras-clip search photos.npy "a dog on a beach"
  keras-clip search photos.npy "a red car" "a birthday cake" --top-k 10
"""

import json

import numpy as np

from keras_clip.checkpoints.load import load_model
from keras_clip.embedding import embed_texts, index_path, search


def add_arguments(parser):
    parser.add_argument("embeddings", help=".npy file written by `keras-clip embed`")
    parser.add_argument("query", nargs="+", help="one or more text queries")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--model", help="model to embed the query with (default: the one that made the file)")


def run(args):
    with open(index_path(args.embeddings), encoding="utf-8") as file:
        index = json.load(file)
    embeddings = np.load(args.embeddings)
    model = load_model(args.model or index["model"])
    queries = embed_texts(args.query, model, progress=False)
    rows, scores = search(embeddings, queries, top_k=args.top_k)
    for query, query_rows, query_scores in zip(args.query, rows, scores):
        print(f"{query!r}:")
        for rank, (row, score) in enumerate(zip(query_rows, query_scores), start=1):
            print(f"  {rank}. {score:.4f}  {index['paths'][row]}")
