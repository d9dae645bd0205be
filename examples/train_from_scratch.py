"""Train a small CLIP from scratch on handwritten digits, then classify unseen digits zero-shot.

The data ships with scikit-learn (`sklearn.datasets.load_digits`: 1,797 greyscale 8x8 scans of
handwritten digits), so this runs offline. Every training image is paired with a free-text caption
drawn anew each epoch ("a handwritten seven", "the digit 7", "a photo of the number seven", ...),
never with its label: the model only learns which texts go with which images. Afterwards a
`ZeroShotClassifier` built from the ten class names and a few prompt templates classifies the
held-out images, and the image-text similarity matrix of one held-out image per digit is plotted.

    python examples/train_from_scratch.py                   # about a minute on two CPU cores
    python examples/train_from_scratch.py --epochs 40 --seed 1 --plot similarity.png
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_clip  # noqa: E402

CLASSNAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# Training captions: {word} is the number's name, {digit} its numeral.
CAPTION_TEMPLATES = [
    "a handwritten {word}",
    "the digit {digit}",
    "a photo of the number {word}",
    "a scan of a handwritten {digit}",
    "the number {word}, written by hand",
    "{digit}",
    "a blurry {word}",
    "a small image of the digit {word}",
    "someone wrote a {digit}",
    "a low resolution scan of a {word}",
    "number {digit}",
    "a {word} written with a pen",
]
# Zero-shot prompts: the classifier only knows the class names.
ZERO_SHOT_TEMPLATES = ["a handwritten {}.", "a photo of the number {}.", "the digit {}."]
# A small ViT CLIP (keras_clip.CLIP takes OpenAI's constructor arguments). The 8x8 scans are
# upsampled to 32x32 and cut into 4x4 patches of 8x8 pixels; captions are short, so 16 tokens do.
MODEL_CONFIG = dict(
    embed_dim=64, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
    context_length=16, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=2,
)  # fmt: skip
TEST_FRACTION = 0.25
VALIDATION_FRACTION = 0.1


def load_splits(seed):
    """The digits as uint8 greyscale pixels [N, 8, 8, 1] (0..255) and labels: train, validation and test splits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    rest_x, test_x, rest_y, test_y = train_test_split(
        pixels, digits.target, test_size=TEST_FRACTION, stratify=digits.target, random_state=seed
    )
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=VALIDATION_FRACTION / (1 - TEST_FRACTION), stratify=rest_y, random_state=seed
    )
    return (train_x, train_y), (val_x, val_y), (test_x, test_y)


def caption_table():
    """tf.string [10, 2 * len(CAPTION_TEMPLATES)]: every caption of every digit, with and without a full stop."""
    return tf.constant(
        [[template.format(word=word, digit=digit) + end for template in CAPTION_TEMPLATES for end in ("", ".")]
         for digit, word in enumerate(CLASSNAMES)]  # fmt: skip
    )


def training_dataset(images, labels, batch_size, seed):
    """Endless batches of {"images", "tokens"}: reshuffled every pass, each image with a random caption."""
    captions = caption_table()
    tokenizer = keras_clip.Tokenizer(context_length=MODEL_CONFIG["context_length"])
    pairs = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
    pairs = pairs.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).repeat()
    choices = tf.data.Dataset.random(seed=seed)  # a reproducible stream of int64s: which caption

    def caption(pair, choice):
        image, label = pair
        return image, captions[label, choice % captions.shape[1]]

    batches = tf.data.Dataset.zip(pairs, choices).map(caption).batch(batch_size, drop_remainder=True)
    return batches.map(lambda images, texts: {"images": images, "tokens": tokenizer(texts)}).prefetch(2)


def similarity_matrix(model, images, texts):
    """Cosine similarity [len(texts), len(images)] of preprocessed images with texts."""
    image_features = model.encode_image(images, normalize=True).numpy()
    tokens = keras_clip.tokenize(texts, context_length=model.context_length)
    text_features = model.encode_text(tokens, normalize=True).numpy()
    return text_features @ image_features.T


def save_similarity_plot(path, pixels, texts, similarity):
    """A heat map of the similarities, the images above their columns; returns False without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    count = len(pixels)
    figure = Figure(figsize=(0.6 * count + 2.5, 0.6 * len(texts) + 1.5))
    axes = figure.add_subplot()
    axes.imshow(similarity, cmap="viridis", vmin=min(0.0, similarity.min()), vmax=1.0, extent=(-0.5, count - 0.5,
                len(texts) - 0.5, -0.5))  # fmt: skip
    for column, image in enumerate(pixels):
        axes.imshow(image[..., 0], cmap="gray_r", extent=(column - 0.45, column + 0.45, -0.6, -1.5), origin="upper")
    for row in range(len(texts)):
        for column in range(count):
            axes.text(column, row, f"{similarity[row, column]:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if similarity[row, column] < 0.5 else "black")  # fmt: skip
    axes.set_yticks(range(len(texts)), texts)
    axes.set_xticks([])
    axes.set_xlim(-0.5, count - 0.5)
    axes.set_ylim(len(texts) - 0.5, -1.6)
    axes.set_title("Cosine similarity of held-out digits with text")
    # "tight" grows the saved area to every label (tight_layout alone cut the longest at the left edge).
    figure.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.2)
    return True


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training images (default 30)")
    parser.add_argument("--batch-size", type=int, default=64, help="image-caption pairs per step (default 64)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, initialisation and captions")
    parser.add_argument("--plot", default="digits_similarity.png", help="PNG file for the similarity matrix")
    return parser.parse_args(argv)


def main(argv=None):
    """Trains, evaluates and plots; returns the zero-shot accuracy on the held-out images."""
    args = parse_args(argv)
    started = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = load_splits(args.seed)
    print(f"Digits: {len(train_y)} training, {len(val_y)} validation and {len(test_y)} held-out images")

    preprocess = keras_clip.ImagePreprocessor(MODEL_CONFIG["image_resolution"])
    model = keras_clip.CLIP(**MODEL_CONFIG)
    steps_per_epoch = len(train_y) // args.batch_size
    total_steps = args.epochs * steps_per_epoch
    model.compile(
        optimizer=keras_clip.training.optimizer(
            model, args.learning_rate, total_steps=total_steps, warmup_steps=max(1, total_steps // 10)
        ),
        jit_compile=True,
    )
    zero_shot = keras_clip.training.ZeroShotAccuracy(
        val_x, val_y, CLASSNAMES, templates=ZERO_SHOT_TEMPLATES, top_k=(1,), frequency=5
    )
    model.fit(
        training_dataset(preprocess(train_x), train_y, args.batch_size, args.seed),
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=[zero_shot],
        verbose=2,
    )

    classifier = keras_clip.ZeroShotClassifier(model, CLASSNAMES, templates=ZERO_SHOT_TEMPLATES, verbose=False)
    test_images = preprocess(test_x)
    predictions = np.argmax(classifier.predict(test_images, verbose=0), axis=-1)
    accuracy = float(np.mean(predictions == test_y))
    print(f"Zero-shot accuracy on {len(test_y)} held-out digits: {100 * accuracy:.1f}%")

    first = [int(np.flatnonzero(test_y == digit)[0]) for digit in range(len(CLASSNAMES))]
    texts = [f"a handwritten {name}" for name in CLASSNAMES]
    similarity = similarity_matrix(model, tf.gather(test_images, first), texts)
    if args.plot:
        if save_similarity_plot(args.plot, test_x[first], texts, similarity):
            print(f"Similarity matrix saved to {args.plot}")
        else:
            print("matplotlib is not installed: no plot (pip install matplotlib)")
    print(f"Done in {time.perf_counter() - started:.0f} s")
    return accuracy


if __name__ == "__main__":
    main(sys.argv[1:])
