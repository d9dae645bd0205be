"""The tokenizer a checkpoint needs: CLIP's byte-pair encoding, or SigLIP's / SigLIP 2's SentencePiece model
from its files."""

import json
import os

from keras_clip.checkpoints.hub import download_from_hub
from keras_clip.models.presets import PRESETS, find_preset, unknown_model_message

HUB_PREFIX = "hf-hub:"
SENTENCEPIECE_FILE = "spiece.model"  # SigLIP's
GEMMA_FILE = "tokenizer.model"  # SigLIP 2's


def get_tokenizer(name_or_path, context_length=None, verbose=True):
    """The tokenizer of a released model or a checkpoint folder, as open_clip's `get_tokenizer`.

    Args:
        name_or_path: a released model's name (as `keras_clip.load` takes it), "hf-hub:<repo id>" of a
            released model, or a checkpoint folder (a transformers SigLIP folder holds `spiece.model`, a
            SigLIP 2 folder `tokenizer.model`).
        context_length: token positions per text (None: the checkpoint's, e.g. 77 for CLIP, 64 for SigLIP).
        verbose: show download progress.

    Returns:
        A `keras_clip.Tokenizer` (CLIP's byte-pair encoding), a `SentencePieceTokenizer` (SigLIP's) or a
        `GemmaTokenizer` (SigLIP 2's, lower-casing as SigLIP 2 was trained).

    Raises:
        ValueError: neither a released model nor a folder.

    Example:
    >>> tokenizer = keras_clip.get_tokenizer("siglip-base-patch16-224/")  # or "ViT-B-16-SigLIP/webli"
    >>> tokenizer(["a photo of a cat"]).shape
    TensorShape([1, 64])
    """
    name = os.fspath(name_or_path)
    if os.path.isdir(os.path.expanduser(name)):
        return _folder_tokenizer(os.path.expanduser(name), context_length)
    preset = find_preset(name)
    if preset is None and name.startswith(HUB_PREFIX):
        repo_id = name[len(HUB_PREFIX):]
        preset = next((p for p in PRESETS.values() if p.checkpoint.hub_repo == repo_id), None)
    if preset is None:
        raise ValueError(f"{unknown_model_message(name)}; or a checkpoint folder")
    length = context_length or preset.context_length
    if preset.tokenizer == "clip_bpe":
        return _clip_tokenizer(length)
    file = SENTENCEPIECE_FILE if preset.tokenizer == "siglip_sentencepiece" else GEMMA_FILE
    path = download_from_hub(preset.checkpoint.hub_repo, (file,), verbose=verbose)
    return _sentencepiece_tokenizer(path, length)


def _folder_tokenizer(folder, context_length):
    """SigLIP's or SigLIP 2's SentencePiece model if the folder has one, else CLIP's tokenizer; the length from
    config.json."""
    config_path = os.path.join(folder, "config.json")
    text_config = {}
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as handle:
            text_config = json.load(handle).get("text_config") or {}
    for file in (SENTENCEPIECE_FILE, GEMMA_FILE):
        if os.path.isfile(os.path.join(folder, file)):
            length = context_length or text_config.get("max_position_embeddings", 64)
            return _sentencepiece_tokenizer(os.path.join(folder, file), length)
    return _clip_tokenizer(context_length or text_config.get("max_position_embeddings", 77))


def _clip_tokenizer(context_length):
    from keras_clip.text.tokenizer import Tokenizer

    return Tokenizer(context_length=context_length)


def _sentencepiece_tokenizer(path, context_length):
    """SigLIP's tokenizer for a `spiece.model`, SigLIP 2's for Gemma's `tokenizer.model`."""
    if os.path.basename(path) == GEMMA_FILE:
        from keras_clip.text.gemma_tokenizer import GemmaTokenizer

        return GemmaTokenizer(path, context_length=context_length)
    from keras_clip.text.sentencepiece_tokenizer import SentencePieceTokenizer

    return SentencePieceTokenizer(path, context_length=context_length)
