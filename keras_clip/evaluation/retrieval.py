"""Zero-shot image <-> text retrieval: recall@K over (image, caption) pairs, as in the CLIP paper.

Image -> text: an image counts as found at K when any of its captions is among the K captions most
similar to it. Text -> image: a caption counts when its image is among the K images most similar to it.
Similarity is the cosine of CLIP's image and text embeddings. Ties count in the item's favour.
"""

import dataclasses

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_clip.evaluation.image_stream import ImageStream
from keras_clip.text.tokenizer import tokenize

DEFAULT_KS = (1, 5, 10)


@dataclasses.dataclass
class RetrievalResults:
    """Recall@K both ways, in [0, 1].

    Attributes:
        image_to_text: {K: fraction of images with one of their captions in the top K}.
        text_to_image: {K: fraction of captions with their image in the top K}.
        num_images, num_captions: what was evaluated.
        skipped: names of images skipped (with their captions) because they could not be decoded.
    """

    image_to_text: dict
    text_to_image: dict
    num_images: int
    num_captions: int
    skipped: list = dataclasses.field(default_factory=list)

    def summary(self):
        parts = [f"image->text R@{k} {100 * v:.2f}%" for k, v in self.image_to_text.items()]
        parts += [f"text->image R@{k} {100 * v:.2f}%" for k, v in self.text_to_image.items()]
        text = ", ".join(parts) + f" ({self.num_images} images, {self.num_captions} captions)"
        return text + (f", {len(self.skipped)} unreadable images skipped" if self.skipped else "")


def _normalized(features):
    features = np.asarray(features, np.float32)
    return features / np.linalg.norm(features, axis=-1, keepdims=True)


def recall_at_k(image_features, text_features, caption_images, ks=DEFAULT_KS, chunk_size=1024):
    """Recall@K both ways from embeddings.

    Args:
        image_features: [N, D] image embeddings (normalised here).
        text_features: [M, D] caption embeddings (normalised here).
        caption_images: int [M], the image each caption describes.
        ks: the K values.
        chunk_size: rows of the similarity matrix computed at once (bounds memory).

    Returns:
        `RetrievalResults`.
    """
    images, texts = _normalized(image_features), _normalized(text_features)
    caption_images = np.asarray(caption_images, np.int64)
    if len(caption_images) != len(texts):
        raise ValueError(f"{len(texts)} caption embeddings but {len(caption_images)} caption owners")
    if len(caption_images) and (caption_images.min() < 0 or caption_images.max() >= len(images)):
        raise ValueError("caption_images must index the images")
    ks = tuple(int(k) for k in ks)
    image_ranks = np.full(len(images), np.iinfo(np.int64).max)
    for start in range(0, len(images), chunk_size):
        rows = np.arange(start, min(start + chunk_size, len(images)))
        similarity = images[rows] @ texts.T
        own = np.where(caption_images[None, :] == rows[:, None], similarity, -np.inf).max(axis=1)
        ranks = (similarity > own[:, None]).sum(axis=1)
        image_ranks[rows] = np.where(np.isfinite(own), ranks, image_ranks[rows])  # images without captions: never found
    text_ranks = np.zeros(len(texts), np.int64)
    for start in range(0, len(texts), chunk_size):
        rows = np.arange(start, min(start + chunk_size, len(texts)))
        similarity = texts[rows] @ images.T
        own = similarity[np.arange(len(rows)), caption_images[rows]]
        text_ranks[rows] = (similarity > own[:, None]).sum(axis=1)
    return RetrievalResults(
        image_to_text={k: float((image_ranks < k).mean()) if len(images) else float("nan") for k in ks},
        text_to_image={k: float((text_ranks < k).mean()) if len(texts) else float("nan") for k in ks},
        num_images=len(images),
        num_captions=len(texts),
    )


def _captions_of(batch_captions):
    """A batch's captions (scalar, fixed-length or ragged per image) -> list of lists of str."""
    if isinstance(batch_captions, tf.RaggedTensor):
        rows = batch_captions.to_list()
    else:
        rows = batch_captions.numpy().tolist()
    return [[row] if isinstance(row, bytes) else list(row) for row in rows]


def evaluate_retrieval(model, dataset, ks=DEFAULT_KS, batch_size=64, skip_errors=False, verbose=True):
    """Zero-shot image <-> text retrieval recall@K over a dataset of (image, caption) pairs.

    Captions are tokenized with truncation to the model's context length (long captions are cut,
    keeping the end-of-text token), as retrieval benchmarks with long captions need.

    Args:
        model: a `keras_clip.CLIP`.
        dataset: `tf.data.Dataset` of `(image, captions)` or `{"image": ..., "caption": ...}`, one image per
            element (or batches of them). `captions`: a string, or a vector of strings (e.g. COCO's five).
            Images as in `evaluate_zero_shot`: encoded bytes or pixels of any size.
        ks: the K of recall@K.
        batch_size: images (and captions) per forward pass.
        skip_errors: skip undecodable images (and their captions) and list them; otherwise raise
            `CorruptImageError` naming the first.
        verbose: progress bars.

    Returns:
        `RetrievalResults`.

    Example:
    >>> pairs = tf.data.Dataset.from_tensor_slices((jpeg_bytes, captions))
    >>> print(evaluate_retrieval(model, pairs).summary())
    image->text R@1 ...%, ..., text->image R@10 ...% (8 images, 8 captions)
    """
    spec = dataset.element_spec
    if isinstance(spec, dict):
        key = "caption" if "caption" in spec else "captions"
        if "image" not in spec or key not in spec:
            raise ValueError(f"Dataset dict elements need 'image' and 'caption' keys, got {sorted(spec)}")
        dataset = dataset.map(lambda element: (element["image"], element[key]))
    stream = ImageStream(dataset, model.preprocessing, batch_size=batch_size, skip_errors=skip_errors,
                         description="Retrieval images", verbose=verbose)  # fmt: skip
    image_features, captions, caption_images = [], [], []
    num_images = 0
    for images, (batch_captions,), _ in stream:
        for row in _captions_of(batch_captions):
            captions.extend(text.decode("utf-8") if isinstance(text, bytes) else text for text in row)
            caption_images.extend([num_images] * len(row))
            num_images += 1
        image_features.append(np.asarray(model.encode_image(images)))
    text_features = []
    with tqdm(total=len(captions), desc="Retrieval captions", unit="caption", disable=not verbose) as progress:
        for start in range(0, len(captions), batch_size):
            tokens = tokenize(captions[start:start + batch_size], context_length=model.context_length, truncate=True)
            text_features.append(np.asarray(model.encode_text(tokens)))
            progress.update(len(tokens))
    empty = np.zeros([0, model.embed_dim], np.float32)
    results = recall_at_k(
        np.concatenate(image_features) if image_features else empty,
        np.concatenate(text_features) if text_features else empty,
        caption_images,
        ks,
    )
    results.skipped = stream.skipped
    return results
