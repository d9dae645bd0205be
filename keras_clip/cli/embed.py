"""Embed every image under a folder into a .npy file, with a .json index of the files and the model.

Examples:
  keras-clip embed photos/ --out photos.npy
  keras-clip embed photos/ --out photos.npy --model RN50 --batch-size 64 --skip-errors --verbose
"""

import sys

from keras_clip.cli import arguments
from keras_clip.cli.loading import load_clip, progress_bars


def add_arguments(parser):
    parser.add_argument("folder", help="folder searched recursively for .jpg/.jpeg/.png/.gif/.bmp/.webp files")
    parser.add_argument("--out", required=True, help="embeddings file to write (.npy); the file list goes to .json")
    arguments.add_model(parser)
    arguments.add_max_pixels(parser)
    arguments.add_batch_size(parser, 32)
    parser.add_argument(
        "--skip-errors",
        action="store_true",
        help="skip images that cannot be read or decoded (counted; --verbose lists them) instead of stopping",
    )
    parser.add_argument("--verbose", action="store_true", help="list the files --skip-errors skipped")


def run(args):
    if not args.out.endswith(".npy"):
        raise arguments.UsageError(f"--out must end in .npy (the file list goes beside it as .json), got {args.out}")
    from keras_clip.image.files import list_image_files
    from keras_clip.serving.embedding import embed_images
    from keras_clip.serving.search import index_path, write_index
    from keras_clip.utils.atomic_files import save_npy

    paths = list_image_files(args.folder)
    model = load_clip(args)
    embeddings, kept = embed_images(model, paths, batch_size=args.batch_size, skip_errors=args.skip_errors,
                                    verbose=progress_bars(), return_paths=True)  # fmt: skip
    skipped = sorted(set(paths) - set(kept))
    if args.verbose:
        for path in skipped:
            print(f"skipped (unreadable): {path}", file=sys.stderr)
    if not kept:
        raise ValueError(f"none of the {len(paths)} image files under {args.folder} could be read; nothing written")
    save_npy(args.out, embeddings)
    write_index(args.out, kept, args.model)
    note = f"; skipped {len(skipped)} unreadable files" + ("" if args.verbose else " (--verbose lists them)")
    print(f"Wrote {len(kept)} embeddings of size {embeddings.shape[1]} to {args.out} (files in {index_path(args.out)})"
          + (note if skipped else ""))  # fmt: skip
    return 0
