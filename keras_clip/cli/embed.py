"""Embed images into a .npy file (with a .json list of the files), or a collection in shards into a folder.

A folder given as --out gets clip-retrieval's layout (img_emb/, metadata/ parquet; text_emb/ for tar shards
with captions), written shard by shard: a rerun resumes, and --engine ray spreads the shards over Ray workers.

Examples:
  keras-clip embed photos/ --out photos.npy
  keras-clip embed photos/ --out photos.npy --model RN50 --batch-size 64 --skip-errors --verbose
  keras-clip embed photos/ --out photos_embeddings/ --shard-size 10000
  keras-clip embed "shards/{000..099}.tar" --out laion_embeddings/ --engine ray --workers 8
"""

import sys

from keras_clip.cli import arguments
from keras_clip.cli.loading import load_clip, progress_bars


def add_arguments(parser):
    parser.add_argument("images", help="a folder searched recursively for .jpg/.jpeg/.png/.gif/.bmp/.webp files; "
                        "with a folder --out also a .txt list of image paths or WebDataset tar shards (a pattern "
                        "such as 'shards/{000..099}.tar')")  # fmt: skip
    parser.add_argument("--out", required=True, help="an embeddings file (.npy; the file list goes to .json), or a "
                        "folder for a collection in shards (clip-retrieval's layout)")  # fmt: skip
    arguments.add_model(parser)
    arguments.add_max_pixels(parser)
    arguments.add_batch_size(parser, 32)
    parser.add_argument(
        "--skip-errors",
        action="store_true",
        help="skip images that cannot be read or decoded (counted; --verbose lists them) instead of stopping "
        "(a collection in shards always skips them: its metadata lists the images embedded)",
    )
    parser.add_argument("--verbose", action="store_true", help="list the files --skip-errors skipped")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="where a collection's shards are embedded: this process (default) or Ray workers "
                        '(pip install "keras-clip[distributed]"; RAY_ADDRESS names a cluster)')  # fmt: skip
    parser.add_argument("--shard-size", type=arguments.positive_int, default=10_000, metavar="N",
                        help="image files per shard of a collection (default 10000; a tar shard is one shard)")
    parser.add_argument("--workers", type=arguments.positive_int, metavar="N",
                        help="Ray workers (default: one per 2 CPUs of the Ray cluster)")


def run(args):
    import os

    if not args.out.endswith(".npy"):
        if os.path.splitext(args.out.rstrip("/"))[1] and not os.path.isdir(args.out) and not args.out.endswith("/"):
            raise arguments.UsageError(f"--out must end in .npy (an embeddings file) or name a folder (a collection "
                                       f"in shards), got {args.out}")  # fmt: skip
        return _embed_collection(args)
    if args.engine != "local":
        raise arguments.UsageError("--engine ray writes a collection in shards: pass a folder as --out, not a .npy")
    from keras_clip.image.files import list_image_files
    from keras_clip.serving.embedding import embed_images
    from keras_clip.serving.search import metadata_path, write_metadata
    from keras_clip.utils.atomic_files import save_npy

    paths = list_image_files(args.images)
    model = load_clip(args)
    embeddings, kept = embed_images(model, paths, batch_size=args.batch_size, skip_errors=args.skip_errors,
                                    verbose=progress_bars(), return_paths=True)  # fmt: skip
    skipped = sorted(set(paths) - set(kept))
    if args.verbose:
        for path in skipped:
            print(f"skipped (unreadable): {path}", file=sys.stderr)
    if not kept:
        raise ValueError(f"none of the {len(paths)} image files under {args.images} could be read; nothing written")
    save_npy(args.out, embeddings)
    write_metadata(args.out, kept, args.model)
    note = f"; skipped {len(skipped)} unreadable files" + ("" if args.verbose else " (--verbose lists them)")
    print(f"Wrote {len(kept)} embeddings of size {embeddings.shape[1]} to {args.out} "
          f"(files in {metadata_path(args.out)})" + (note if skipped else ""))  # fmt: skip
    return 0


def _embed_collection(args):
    """Embeds the shards of `args.images` not done yet into the folder `args.out`."""
    from keras_clip.serving.shards import embed_collection

    summary = embed_collection(args.model, args.images, args.out, engine=args.engine, shard_size=args.shard_size,
                               batch_size=args.batch_size, workers=args.workers, verbose=progress_bars(),
                               cache_dir=args.cache_dir, dtype=args.dtype, max_pixels=args.max_pixels)  # fmt: skip
    done = summary["shards"] - summary["embedded"]
    print(f"Embedded {summary['rows']} images in {summary['embedded']} shards into {args.out}"
          + (f" ({done} of {summary['shards']} shards were already done)" if done else ""))  # fmt: skip
    return 0
