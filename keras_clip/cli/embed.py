"""Embed every image under a folder into a .npy file (with a .json index of the files).

Examples:
  keras-clip embed photos/ --out photos.npy
  keras-clip embed photos/ --out photos.npy --model RN50 --batch-size 64 --strict
"""

from keras_clip.checkpoints.load import load_model
from keras_clip.embedding import embed_images, index_path, write_index


def add_arguments(parser):
    parser.add_argument("folder", help="folder searched recursively for .jpg/.png/.gif/.bmp/.webp files")
    parser.add_argument("--out", required=True, help="embeddings file to write (.npy); the file list goes to .json")
    parser.add_argument("--model", default="ViT-B/32", help="released model name or checkpoint path")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of skipping")


def run(args):
    model = load_model(args.model)
    embeddings, paths = embed_images(
        args.folder, model, batch_size=args.batch_size, output=args.out, skip_errors=not args.strict, return_paths=True
    )
    write_index(index_path(args.out), paths, args.model)
    print(f"Wrote {len(paths)} embeddings of size {embeddings.shape[1]} to {args.out} (files in {index_path(args.out)})")
