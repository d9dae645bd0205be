"""SigLIP zero-shot classifiers exported as SavedModels: their SentencePiece tokenizer and preprocessing in the graph.

Served in a fresh TensorFlow process (tests/helpers/saved_model_serving.py: `tf.saved_model.load` and a
TF 1 Session as tensorflow_model_server runs it, keras and keras_clip unimportable), every signature answers
as the eager model does, within 1e-5: text through SigLIP's `SentencePieceTokenizer` (or SigLIP 2's
`GemmaTokenizer`), images through the
model's own preprocessing (SigLIP's: squash, mean and std 0.5), `classify` with per-class sigmoids.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.image.preprocessing import ImagePreprocessor
from keras_clip.image.settings import Preprocessing
from keras_clip.models.zero_shot import ZeroShotClassifier
from keras_clip.serving.export import export_saved_model
from keras_clip.text.gemma_tokenizer import GemmaTokenizer
from keras_clip.text.sentencepiece_tokenizer import SentencePieceTokenizer
from tests.helpers import images
from tests.helpers.saved_model_serving import CORE_OPS, TF_TEXT_OPS, exported_op_types, serve_in_fresh_process
from tests.helpers.sentencepiece_models import gemma_like_model, siglip_like_model
from tests.helpers.tiny_models import TINY_SIGLIP, tiny_clip

TOLERANCE = 1e-5
TEXTS = ["a photo of a cat", "Schöne Grüße </s> aus München!", "A <eos> and <start_of_turn>", ""]
CLASSNAMES = ["cat", "dog", "red table"]


@pytest.fixture(scope="module", params=["siglip", "siglip2"])
def exported(tmp_path_factory, request):
    model = tiny_clip(seed=5, **TINY_SIGLIP)
    model.preprocessing = Preprocessing(model.image_resolution, mean=(0.5,) * 3, std=(0.5,) * 3,
                                        resize_mode="squash")  # fmt: skip
    if request.param == "siglip":
        tokenizer = SentencePieceTokenizer(siglip_like_model(), context_length=model.context_length)
    else:
        tokenizer = GemmaTokenizer(gemma_like_model(), context_length=model.context_length)
    classifier = ZeroShotClassifier(model, CLASSNAMES, templates=["a photo of a {}."], tokenizer=tokenizer,
                                    verbose=False)  # fmt: skip
    export_dir = str(tmp_path_factory.mktemp("siglip") / "1")
    export_saved_model(classifier, export_dir, tokenizer=tokenizer)
    return classifier, tokenizer, export_dir


def test_every_signature_serves_like_the_eager_model(exported, tmp_path):
    classifier, tokenizer, export_dir = exported
    model = classifier.clip_model
    photos = images.photographs()
    image_bytes = np.array([images.encode(photos["china"], "jpeg"), images.encode(photos["coffee"], "png")],
                           dtype=object)  # fmt: skip
    texts = np.array([text.encode("utf-8") for text in TEXTS], dtype=object)
    pixels = ImagePreprocessor.from_settings(model.preprocessing)(tf.constant(image_bytes))
    expected = {
        "encode_text": model.encode_text(tokenizer(TEXTS), normalize=True).numpy(),
        "encode_image": model.encode_image(pixels, normalize=True).numpy(),
        "classify": np.asarray(classifier(pixels)),
    }
    requests = [("encode_text", {"text": texts}), ("encode_image", {"image_bytes": image_bytes}),
                ("classify", {"image_bytes": image_bytes})]  # fmt: skip
    answers = serve_in_fresh_process(export_dir, requests, str(tmp_path))
    for loader in ("tf2", "session"):
        calls = answers[loader]["calls"]
        for (name, _), answer in zip(requests, calls):
            output = answer["outputs"]["probabilities" if name == "classify" else "embeddings"]
            np.testing.assert_allclose(output, expected[name], atol=TOLERANCE, rtol=0, err_msg=f"{loader} {name}")
    # Per-class sigmoids, not a softmax; and not OpenAI's preprocessing (which would change the images).
    assert np.abs(expected["classify"].sum(axis=1) - 1).max() > 1e-3
    openai_pixels = ImagePreprocessor(model.image_resolution)(tf.constant(image_bytes))
    assert np.abs(model.encode_image(openai_pixels, normalize=True).numpy() - expected["encode_image"]).max() > 1e-3


def test_exported_ops_are_core_tensorflow_or_tf_text_that_tf_serving_ships(exported):
    seen = set()
    for function, op_types in exported_op_types(exported[2]).items():
        unexpected = op_types - CORE_OPS - TF_TEXT_OPS
        assert not unexpected, f"{function} uses ops outside the allow-list: {sorted(unexpected)}"
        seen |= op_types
    assert {"SentencepieceOp", "SentencepieceTokenizeOp", "RegexSplitWithOffsets"} <= seen


def test_a_siglip_export_needs_its_tokenizer(exported, tmp_path):
    with pytest.raises(ValueError, match="need its tokenizer"):
        export_saved_model(exported[0].clip_model, str(tmp_path / "no_tokenizer"))
    assert keras_clip.export_saved_model is export_saved_model
