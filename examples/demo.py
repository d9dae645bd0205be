"""Build a CLIP, embed a few images and captions, and print their similarities.

Runs offline with random weights (no download): `make demo`.
"""

import numpy as np

import keras_clip


def main():
    model = keras_clip.create_model("ViT-B/32")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 224, 224, 3)).astype("float32")
    tokens = np.zeros((2, 77), "int32")
    tokens[:, 0] = 49406  # start of text
    tokens[0, 1:3], tokens[0, 3] = (320, 1929), 49407  # "a dog"
    tokens[1, 1:3], tokens[1, 3] = (320, 2368), 49407  # "a cat"
    image_features = model.encode_image(images)
    text_features = model.encode_text(tokens)
    logits_per_image, _ = model({"images": images, "tokens": tokens})
    print("image embeddings:", tuple(image_features.shape), "text embeddings:", tuple(text_features.shape))
    print("logits per image (random weights):")
    print(np.round(np.asarray(logits_per_image), 3))


if __name__ == "__main__":
    main()
