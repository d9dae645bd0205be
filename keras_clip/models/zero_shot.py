"""Zero-shot classification: a CLIP plus class embeddings built from class names and prompt templates."""

import contextlib
import contextvars

import keras
import numpy as np
from keras import ops
from tqdm.auto import tqdm

from keras_clip.text.templates import IMAGENET_TEMPLATES, resolve_templates
from keras_clip.text.tokenizer import text_tokenizer, tokenize
from keras_clip.utils.normalization import l2_normalize

# Set while `from_config` rebuilds a saved classifier: its class embeddings come from the saved weight.
_RESTORING = contextvars.ContextVar("keras_clip_zero_shot_restoring", default=False)


@contextlib.contextmanager
def _restoring():
    token = _RESTORING.set(True)
    try:
        yield
    finally:
        _RESTORING.reset(token)


def prompt_texts(classnames, templates):
    """Every template filled with every class name: class-major, `len(classnames) * len(templates)` strings."""
    return [template.format(classname) for classname in classnames for template in templates]


def ensemble_class_embeddings(clip_model, classnames, templates, batch_size=256, verbose=True, tokenizer=None):
    """Class embeddings by prompt ensembling, as in OpenAI's "Prompt Engineering for ImageNet".

    Each class's prompts are embedded with `clip_model.encode_text`, L2-normalised, averaged, and
    the average L2-normalised again.

    Args:
        clip_model: a `keras_clip.CLIP`.
        classnames: list of class names.
        templates: list of format strings with one `{}`.
        batch_size: prompts encoded per call of the text tower.
        verbose: show a progress bar (tqdm) over the prompts.
        tokenizer: strings -> token ids for `clip_model` (None: CLIP's `tokenize`).

    Returns:
        float32 numpy array [len(classnames), embed_dim], rows of unit length.
    """
    texts = prompt_texts(classnames, templates)
    owner = np.repeat(np.arange(len(classnames)), len(templates))
    sums = np.zeros((len(classnames), clip_model.embed_dim), np.float64)
    with tqdm(total=len(texts), desc="Class embeddings", unit="prompt", disable=not verbose) as progress:
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            if tokenizer is None:
                tokens = tokenize(batch, context_length=clip_model.context_length)
            else:
                tokens = np.asarray(tokenizer(batch))
            features = np.asarray(l2_normalize(np.asarray(clip_model.encode_text(tokens), np.float64)))
            np.add.at(sums, owner[start:start + batch_size], features)
            progress.update(len(tokens))
    return np.asarray(l2_normalize(sums / len(templates)), np.float32)


@keras.saving.register_keras_serializable(package="keras_clip")
class ZeroShotClassifier(keras.Model):
    """A CLIP turned into a classifier over named classes, with no training.

    The class embeddings are built once, when the classifier is created, by prompt ensembling:
    every template is filled with every class name, the prompts are embedded with the text tower
    and L2-normalised, and each class's embeddings are averaged and normalised again. They are held
    as a non-trainable weight, so a saved `.keras` classifier restores them without re-embedding.
    Calling the classifier on preprocessed images returns class probabilities. For a CLIP, the softmax of
    `exp(logit_scale)` times the cosine similarity of each image with each class: one distribution over
    the classes, for single-label classification. For a SigLIP (a model with a `logit_bias`),
    `sigmoid(exp(logit_scale) * cosine + logit_bias)` per class, as SigLIP was trained: each an
    independent "does this image show the class" probability, not summing to 1; use them for multi-label
    tagging and thresholds. Both rank the classes the same way, so `predict_labels` and top-k accuracy
    are the same either way.

    Args:
        clip_model: a `keras_clip.CLIP`.
        classnames: list of class names, e.g. `["cat", "dog"]` or `keras_clip.IMAGENET_CLASSNAMES`.
        templates: format strings with one `{}` for the class name (OpenAI's use `{}`), a single
            such string, or a name: "imagenet" (OpenAI's 80, the default) or "simple" (OpenAI's 7).
        batch_size: prompts embedded per call of the text tower while building the class embeddings.
        verbose: show a progress bar while building the class embeddings.
        tokenizer: the model's tokenizer (`keras_clip.get_tokenizer(name)`); needed for a SigLIP, whose
            text tower reads SentencePiece ids. None: CLIP's `tokenize`. Not saved: the class embeddings are.

    Inputs: preprocessed images, float32 [N, R, R, 3] (`keras_clip.ImagePreprocessor(R)` output,
    R = `image_resolution`). Outputs: float32 probabilities [N, len(classnames)].

    Example:
    >>> model, preprocess = keras_clip.load("ViT-B/32")
    >>> classifier = keras_clip.ZeroShotClassifier(model, ["cat", "dog", "car"], templates="simple")
    >>> images = preprocess(tf.io.read_file("cat.jpg")[None])
    >>> classifier.predict_labels(images, top_k=2)  # e.g. [[('cat', 0.97), ('dog', 0.02)]] with OpenAI's weights
    >>> classifier.save("cat_dog_car.keras")
    """

    def __init__(self, clip_model, classnames, templates=IMAGENET_TEMPLATES, batch_size=256, verbose=True,
                 tokenizer=None, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        classnames = [classnames] if isinstance(classnames, str) else list(classnames)
        if not classnames:
            raise ValueError("ZeroShotClassifier needs at least one class name")
        if not all(isinstance(name, str) for name in classnames):
            raise TypeError(f"Class names must be strings, got {classnames!r}")
        for attribute in ("encode_image", "encode_text", "logit_scale", "embed_dim", "image_resolution"):
            if not hasattr(clip_model, attribute):
                raise TypeError(f"clip_model must be a keras_clip.CLIP, got {type(clip_model).__name__}")
        if not _RESTORING.get():  # a restored classifier has its class embeddings: no tokenizer is needed
            tokenizer = text_tokenizer(clip_model, tokenizer, "class names", "ZeroShotClassifier(model, classnames, ",
                                       truncate=False)  # fmt: skip
        self.clip_model = clip_model
        # Tuples: Keras would wrap lists in tracked containers. `classnames` / `templates` give lists.
        self._classnames = tuple(classnames)
        self._templates = tuple(resolve_templates(templates))
        self.batch_size = int(batch_size)
        self.verbose = bool(verbose)
        self.class_embeddings = self.add_weight(
            shape=(len(classnames), clip_model.embed_dim),
            initializer="zeros",
            dtype="float32",
            trainable=False,
            name="class_embeddings",
        )
        if not _RESTORING.get():
            self.class_embeddings.assign(
                ensemble_class_embeddings(clip_model, self.classnames, self.templates, self.batch_size, self.verbose,
                                          tokenizer)  # fmt: skip
            )
        self.built = True

    @property
    def classnames(self):
        """The class names (list of str), in the order of the probabilities' columns."""
        return list(self._classnames)

    @property
    def templates(self):
        """The prompt templates (list of format strings) the class embeddings were built from."""
        return list(self._templates)

    @property
    def image_resolution(self):
        return self.clip_model.image_resolution

    @property
    def num_classes(self):
        return len(self._classnames)

    def call(self, images, training=False):
        image_features = self.clip_model.encode_image(images, normalize=True, training=training)
        scale = ops.exp(ops.cast(self.clip_model.logit_scale, "float32"))
        logits = scale * ops.matmul(image_features, ops.transpose(ops.cast(self.class_embeddings, "float32")))
        if self.clip_model.logit_bias is not None:
            return ops.sigmoid(logits + ops.cast(self.clip_model.logit_bias, "float32"))
        return ops.softmax(logits, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def predict_labels(self, images, top_k=5):
        """The `top_k` most probable classes of each image.

        Args:
            images: preprocessed images, float32 [N, R, R, 3].
            top_k: classes listed per image (at most the number of classes).

        Returns:
            A list with one list per image of `(classname, probability)`, most probable first.
        """
        probabilities = np.asarray(self(images))
        top_k = max(1, min(int(top_k), self.num_classes))
        order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top_k]
        names = self._classnames
        return [[(names[j], float(row[j])) for j in indices] for row, indices in zip(probabilities, order)]

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "clip_model": keras.saving.serialize_keras_object(self.clip_model),
            "classnames": self.classnames,
            "templates": self.templates,
            "batch_size": self.batch_size,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        """Rebuilds the classifier without embedding the prompts: the class embeddings stay zero
        until the saved weights are loaded (as `keras.saving.load_model` does)."""
        config = dict(config)
        config["clip_model"] = keras.saving.deserialize_keras_object(config["clip_model"])
        with _restoring():
            return cls(**config)
