"""Fine-tune a CLIP on your own captioned images, with CLIP's contrastive loss and `model.fit`.

The captions are a CSV (or TSV, JSON lines) file with an image path and a caption per row, paths
relative to the file's folder; an image on several rows has several captions, one drawn per epoch.
Missing or corrupt images are skipped and counted. With `--validation`, image <-> text retrieval
recall@1/5/10 on a second caption file is logged after every epoch. Progress is backed up after
every epoch: run the same command again after an interruption and training resumes where it stopped.
The result is written to a temporary name and renamed, so the output is never a half-written file.

    python examples/fine_tune.py ViT-B/32 photos/captions.csv --output photos.keras
    python examples/fine_tune.py ViT-B/32 train.csv --validation val.csv --lock-image-tower --epochs 5

Load the result with `keras_clip.load("photos.keras")`.
"""

import argparse
import math
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_clip  # noqa: E402


class ReplayDataEpochs(keras.callbacks.Callback):
    """Makes epoch k read pass k of a `caption_dataset` (its order, crops and captions), also after a resume.

    `caption_dataset` numbers its passes from 0 in each process (in its `CaptionDatasetState`); a run
    resumed by `BackupAndRestore` at epoch 3 would otherwise read pass 0's data again.
    """

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        self.state.epoch.assign(epoch)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a released model name (keras_clip.available_models()) or a checkpoint path")
    parser.add_argument("captions", help="training caption file: CSV/TSV with image path and caption columns, or JSONL")
    parser.add_argument("--output", default="fine_tuned.keras", help="the fine-tuned model (.keras)")
    parser.add_argument("--validation", help="caption file of validation images: retrieval recall after each epoch")
    parser.add_argument("--lock-image-tower", action="store_true", help="train the text tower only (LiT)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-5, help="peak learning rate (default 1e-5)")
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--backup-dir", help="where progress is backed up for resuming (default: <output>.backup)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data order, crops and captions")
    parser.add_argument("--cache-dir", help="where released models are downloaded (default ~/.cache/keras_clip)")
    args = parser.parse_args(argv)
    if not args.output.endswith(".keras"):
        parser.error(f"--output must end with .keras, got {args.output!r}")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv=None):
    """Fine-tunes and saves the model; returns the `keras.callbacks.History`."""
    args = parse_args(argv)
    model, _ = keras_clip.load(args.model, cache_dir=args.cache_dir)
    if args.lock_image_tower:
        model.lock_image_tower()

    state = keras_clip.data.CaptionDatasetState()
    # The checkpoint's own image statistics (and, for a SigLIP, its SentencePiece tokenizer).
    tokenizer = keras_clip.get_tokenizer(args.model) if model.logit_bias is not None else None
    try:
        dataset = keras_clip.data.caption_dataset(
            args.captions, model.image_resolution, args.batch_size, seed=args.seed,
            context_length=model.context_length, state=state, preprocessing=model.preprocessing, tokenizer=tokenizer,
        )  # fmt: skip
    except ValueError as error:  # e.g. fewer images than one batch
        raise SystemExit(str(error)) from None
    # Every epoch has this many full batches (skipped images are replaced), so the schedule ends where it should.
    steps_per_epoch = len(dataset)
    total_steps = args.epochs * steps_per_epoch
    model.compile(
        optimizer=keras_clip.training.optimizer(
            model, args.learning_rate, total_steps=total_steps, warmup_steps=min(500, total_steps // 10),
            weight_decay=args.weight_decay,
        )
    )  # fmt: skip

    callbacks = [ReplayDataEpochs(state), keras_clip.data.SkippedImagesReport(state)]
    recall = None
    if args.validation:
        recall = keras_clip.training.RetrievalRecall(args.validation, ks=(1, 5, 10), skip_errors=True)
        callbacks.append(recall)
    backup_dir = args.backup_dir or args.output + ".backup"
    # After the callbacks that add to the logs, so the backed-up state follows them.
    callbacks += [keras.callbacks.TerminateOnNaN(), keras.callbacks.BackupAndRestore(backup_dir)]
    print(f"Fine-tuning on {args.captions}, {steps_per_epoch} steps per epoch of {args.batch_size} images"
          + (", image tower locked" if args.lock_image_tower else ""))  # fmt: skip
    history = model.fit(dataset, epochs=args.epochs, callbacks=callbacks, verbose=2)
    losses = history.history.get("loss", [])
    if not losses or not all(map(math.isfinite, losses)):
        raise SystemExit(f"Training failed (loss {losses[-1:] or 'never computed'}): {args.output} not written")
    if recall is not None and recall.results.skipped:
        print(f"{len(recall.results.skipped)} validation images could not be read, e.g. {recall.results.skipped[0]}")

    # Saved without the optimizer (its state is in the backup while training): a copy of the model,
    # all of it trainable again, that loads and fine-tunes like any other.
    result = keras_clip.CLIP.from_config(model.get_config())
    result.set_weights(model.get_weights())
    partial = args.output + ".partial.keras"
    result.save(partial)
    os.replace(partial, args.output)
    print(f"Saved {args.output}")
    return history


if __name__ == "__main__":
    main(sys.argv[1:])
