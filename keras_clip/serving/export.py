"""SavedModel export with serving signatures that stock TensorFlow Serving runs from raw text and image bytes.

The exported graph holds the tokenizer (core TensorFlow ops plus TF Text's `NormalizeUTF8`, which
`tensorflow_model_server` links in; for SigLIP, TF Text's SentencePiece and regex-split ops), the model's
own image decoding and preprocessing (`model.preprocessing`; core ops; images decoded and resized one at
a time), the towers and, for a zero-shot classifier, its class names as a constant.
Nothing from keras or keras_clip is needed to run it: `tensorflow_model_server --model_base_path=...`,
or `tf.saved_model.load` once TF Text's ops are registered (`import tensorflow_text`).
"""

import dataclasses
import os

import keras
import tensorflow as tf

from keras_clip.image.preprocessing import preprocess_image
from keras_clip.models.clip import CLIP
from keras_clip.models.zero_shot import ZeroShotClassifier
from keras_clip.serving.search import check_top_k
from keras_clip.text.tokenizer import text_tokenizer
from keras_clip.utils.atomic_files import atomic_directory

# Encoded images of a request are decoded and resized one after another: a batch of 24-megapixel
# photographs then needs the memory of one (TF Serving runs concurrent requests in parallel anyway).
IMAGES_DECODED_AT_ONCE = 1


def _clip_endpoints(model, tokenizer):
    """{signature name: (function, input signature)} of a CLIP model, `encode_image` first."""
    resolution, preprocessing = model.image_resolution, model.preprocessing
    text = tf.TensorSpec([None], tf.string, name="text")
    image_bytes = tf.TensorSpec([None], tf.string, name="image_bytes")
    tokens = tf.TensorSpec([None, model.context_length], tf.int32, name="tokens")
    pixels = tf.TensorSpec([None, resolution, resolution, 3], tf.float32, name="pixels")

    def image_features(image_bytes, normalize=False):
        return model.encode_image(_preprocess(image_bytes, preprocessing), normalize=normalize)

    def text_features(text, normalize=False):
        return model.encode_text(tokenizer(text), normalize=normalize)

    def encode_image(image_bytes):
        return {"embeddings": image_features(image_bytes, normalize=True)}

    def encode_text(text):
        return {"embeddings": text_features(text, normalize=True)}

    def encode_tokens(tokens):
        return {"embeddings": model.encode_text(tokens, normalize=True)}

    def encode_pixels(pixels):
        return {"embeddings": model.encode_image(pixels, normalize=True)}

    def similarity(image_bytes, text):
        logits_per_image, _ = model.logits(image_features(image_bytes), text_features(text))
        return {"logits_per_image": tf.cast(logits_per_image, tf.float32)}

    return {
        "encode_image": (encode_image, [image_bytes]),
        "encode_text": (encode_text, [text]),
        "encode_tokens": (encode_tokens, [tokens]),
        "encode_pixels": (encode_pixels, [pixels]),
        "similarity": (similarity, [image_bytes, text]),
    }


def _classify_endpoint(classifier, top_k):
    """(function, input signature) of `classify`; the class names are a constant of its graph."""
    preprocessing = classifier.clip_model.preprocessing
    class_names = tf.constant([str(name) for name in classifier.classnames], tf.string)
    k = min(top_k, len(classifier.classnames))

    def classify(image_bytes):
        probabilities = tf.cast(classifier(_preprocess(image_bytes, preprocessing)), tf.float32)
        top_probabilities, top_indices = tf.math.top_k(probabilities, k=k)
        return {
            "probabilities": probabilities,
            "top_labels": tf.gather(class_names, top_indices),
            "top_probabilities": top_probabilities,
        }

    return classify, [tf.TensorSpec([None], tf.string, name="image_bytes")]


def _preprocess(image_bytes, preprocessing):
    """The model's own preprocessing (`model.preprocessing`: resolution, mean/std, interpolation, resize mode)."""
    settings = dataclasses.asdict(preprocessing)
    return preprocess_image(image_bytes, **settings, parallel_iterations=IMAGES_DECODED_AT_ONCE)


def _export_archive(obj, top_k, tokenizer):
    """A Keras ExportArchive with every signature; its first endpoint is also `serving_default`.

    Keras' archive saves the tf.Variables the signatures read (not the Keras variable wrappers, which
    a plain `tf.Module` would save instead) and the tokenizer's lookup tables, so that Session-based
    loaders (TensorFlow Serving, `saved_model_cli run`) restore every variable the graph reads.
    """
    model = obj if isinstance(obj, CLIP) else obj.clip_model
    endpoints = {}
    if obj is not model:
        endpoints["classify"] = _classify_endpoint(obj, top_k)
    endpoints.update(_clip_endpoints(model, tokenizer))
    archive = keras.export.ExportArchive()
    # Only the tokenizer is tracked (for its lookup tables): the archive saves the tf.Variables the
    # endpoints read by itself, and tracking the model too would save every weight a second time.
    archive.track(tokenizer)
    for name, (function, input_signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    return archive


def export_saved_model(obj, export_dir, top_k=5, tokenizer=None):
    """Writes a SavedModel that TensorFlow Serving serves from raw captions and raw JPEG/PNG/... bytes.

    Signatures (input names -> output names; D = embed_dim, R = image_resolution, C = classes):
    - `encode_image`: `image_bytes` string [N] -> `embeddings` float32 [N, D], L2-normalised
    - `encode_text`: `text` string [N] -> `embeddings` float32 [N, D], L2-normalised (long texts truncated)
    - `encode_tokens`: `tokens` int32 [N, 77] -> `embeddings`
    - `encode_pixels`: `pixels` float32 [N, R, R, 3] (already preprocessed) -> `embeddings`
    - `similarity`: `image_bytes` [N], `text` [M] -> `logits_per_image` float32 [N, M] (with a SigLIP's
      bias: `sigmoid(logits_per_image)` is the probability that image and text match)
    - for a `ZeroShotClassifier`, also `classify`: `image_bytes` [N] -> `probabilities` [N, C],
      `top_labels` string [N, k], `top_probabilities` [N, k], with k = min(top_k, C)
    `serving_default` is `classify` for a classifier and `encode_image` for a CLIP model.

    The directory is written under a temporary name next to `export_dir` and renamed into place.
    For TensorFlow Serving, export into a numbered version directory, e.g. `models/clip/1`.

    Args:
        obj: a `keras_clip.CLIP` or a `keras_clip.ZeroShotClassifier`.
        export_dir: the SavedModel directory to create (it must not exist, or be empty).
        top_k: labels returned per image by `classify`.
        tokenizer: the text signatures' tokenizer (`keras_clip.get_tokenizer(name)`); needed for a SigLIP.
            None: CLIP's, at the model's context length.

    Returns:
        `export_dir`.

    Raises:
        TypeError: `obj` is neither a CLIP nor a ZeroShotClassifier.
        FileExistsError: `export_dir` exists and is not empty.

    Example:
    >>> model, _ = keras_clip.load("ViT-B/32")
    >>> keras_clip.export_saved_model(model, "models/clip/1")
    '.../models/clip/1'
    """
    if not isinstance(obj, (CLIP, ZeroShotClassifier)):
        raise TypeError(f"export_saved_model takes a keras_clip.CLIP or ZeroShotClassifier, got {type(obj).__name__}")
    check_top_k(top_k)
    model = obj if isinstance(obj, CLIP) else obj.clip_model
    tokenizer = text_tokenizer(model, tokenizer, "text signatures", "export_saved_model(model, export_dir, ")

    export_dir = os.path.abspath(os.fspath(export_dir))
    with atomic_directory(export_dir) as temporary:
        _export_archive(obj, top_k, tokenizer).write_out(temporary, verbose=False)
    return export_dir
