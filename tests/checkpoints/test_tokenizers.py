"""`keras_clip.get_tokenizer`: the tokenizer each checkpoint needs, from its folder or its Hub repository."""

import json
import warnings

import numpy as np
import pytest

import keras_clip
from keras_clip.text.gemma_tokenizer import GemmaTokenizer
from keras_clip.text.sentencepiece_tokenizer import SentencePieceTokenizer
from keras_clip.text.tokenizer import Tokenizer
from tests.helpers.sentencepiece_models import (
    gemma_like_model,
    siglip_like_model,
    write_gemma_like_folder,
    write_siglip_like_model,
)

TEXTS = ["a photo of a cat", "Schöne Grüße, München!", "猫が窓に座っている 😀", ""]


def siglip_ids(spiece_path, context_length):
    from transformers import SiglipTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array(SiglipTokenizer(spiece_path)(TEXTS, padding="max_length", max_length=context_length,
                                                     truncation=True)["input_ids"])  # fmt: skip


def test_siglip_folder_gives_its_sentencepiece_model_and_context_length(tmp_path):
    spiece = write_siglip_like_model(tmp_path / "spiece.model")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "siglip",
                                                      "text_config": {"max_position_embeddings": 16}}))  # fmt: skip
    tokenizer = keras_clip.get_tokenizer(str(tmp_path))
    assert isinstance(tokenizer, SentencePieceTokenizer) and tokenizer.context_length == 16
    np.testing.assert_array_equal(tokenizer(TEXTS).numpy(), siglip_ids(spiece, 16))


def test_clip_folder_and_name_give_clips_tokenizer(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    for tokenizer in (keras_clip.get_tokenizer(str(tmp_path)), keras_clip.get_tokenizer("ViT-B-32/laion2b_s34b_b79k")):
        assert type(tokenizer) is Tokenizer and tokenizer.context_length == 77


def test_siglip_release_downloads_its_sentencepiece_model(hub, tmp_path):
    for repo in ("google/siglip-base-patch16-224", "google/siglip-so400m-patch14-224"):
        hub.publish(repo, "spiece.model", siglip_like_model())
    spiece = write_siglip_like_model(tmp_path / "spiece.model")
    for name in ("ViT-B-16-SigLIP/webli", "hf-hub:google/siglip-base-patch16-224"):
        tokenizer = keras_clip.get_tokenizer(name, verbose=False)
        assert tokenizer.context_length == 64
        np.testing.assert_array_equal(tokenizer(TEXTS).numpy(), siglip_ids(spiece, 64))
    assert keras_clip.get_tokenizer("ViT-SO400M-14-SigLIP/webli", verbose=False).context_length == 16


def test_siglip2_folder_and_release_give_gemmas_tokenizer(hub, tmp_path):
    from transformers import AutoTokenizer

    folder = write_gemma_like_folder(tmp_path / "siglip2", "Siglip2Tokenizer")
    expected = AutoTokenizer.from_pretrained(folder)(TEXTS, padding="max_length", max_length=64, truncation=True)
    hub.publish("google/siglip2-base-patch16-224", "tokenizer.model", gemma_like_model())
    for name in (folder, "ViT-B-16-SigLIP2/webli", "hf-hub:google/siglip2-base-patch16-224"):
        tokenizer = keras_clip.get_tokenizer(name, verbose=False)
        assert isinstance(tokenizer, GemmaTokenizer) and tokenizer.lowercase
        np.testing.assert_array_equal(tokenizer(TEXTS).numpy(), expected["input_ids"])


def test_unknown_names_are_named():
    with pytest.raises(ValueError, match="Unknown CLIP model 'ViT-Q-99'.*or a checkpoint folder"):
        keras_clip.get_tokenizer("ViT-Q-99")
