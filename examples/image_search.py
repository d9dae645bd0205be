"""Semantic image search: embed a folder of photos once, then query it with text.

    python examples/image_search.py PHOTO_FOLDER "a dog on a beach" "a red car" [--model ViT-B/32]

The first run downloads the model's weights (once; cached) unless --model is a local checkpoint
or .keras file. Embeddings are kept next to the folder's name (PHOTO_FOLDER.npy / .json) and
reused on later runs.
"""

import argparse
import os

import keras_clip
from keras_clip.serving.search import read_embeddings, write_metadata


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
        embeddings, paths, _ = read_embeddings(embeddings_file)
    else:
        embeddings, paths = keras_clip.embed_images(
            model, args.folder, output=embeddings_file, skip_errors=True, return_paths=True
        )
        write_metadata(embeddings_file, paths, args.model)

    queries = keras_clip.embed_texts(model, args.queries, verbose=False)
    rows, scores = keras_clip.search(embeddings, queries, top_k=args.top_k)
    for query, query_rows, query_scores in zip(args.queries, rows, scores):
        print(query)
        for row, score in zip(query_rows, query_scores):
            print(f"  {score:.3f}  {paths[row]}")


if __name__ == "__main__":
    main()
