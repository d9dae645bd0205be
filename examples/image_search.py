"""Semantic image search: embed a folder of photos once, then query it with text.

    python examples/image_search.py PHOTO_FOLDER "a dog on a beach" "a red car" [--model ViT-B/32]

The first run downloads the model's weights (once; cached) unless --model is a local checkpoint
or .keras file. Embeddings are kept next to the folder's name (PHOTO_FOLDER.npy / .json) and
reused on later runs.
"""

import argparse
import json
import os

import numpy as np

import keras_clip
from keras_clip.embedding import embed_images, embed_texts, index_path, search, write_index


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("queries", nargs="+")
    parser.add_argument("--model", default="ViT-B/32")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)

    model, _ = keras_clip.load(args.model)
    embeddings_file = os.path.normpath(args.folder) + ".npy"
    if os.path.exists(embeddings_file):
        embeddings = np.load(embeddings_file)
        with open(index_path(embeddings_file)) as file:
            paths = json.load(file)["paths"]
    else:
        embeddings, paths = embed_images(args.folder, model, output=embeddings_file, skip_errors=True, return_paths=True)
        write_index(index_path(embeddings_file), paths, args.model)

    rows, scores = search(embeddings, embed_texts(args.queries, model, progress=False), top_k=args.top_k)
    for query, query_rows, query_scores in zip(args.queries, rows, scores):
        print(query)
        for row, score in zip(query_rows, query_scores):
            print(f"  {score:.3f}  {paths[row]}")


if __name__ == "__main__":
    main()
