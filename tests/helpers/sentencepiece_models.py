"""SentencePiece models trained here, laid out as SigLIP's `spiece.model` and SigLIP 2's (Gemma's) `tokenizer.model`.

The publishers' vocabularies are not downloaded in tests; models trained on a small corpus of English,
accented, CJK and emoji text have the same kind of pieces, special tokens and unknown characters:
- SigLIP's: unigram, T5's ids (<pad> 0, </s> 1, <unk> 2);
- Gemma's: byte-pair encoding with byte fallback, no dummy prefix, no normalisation, digits split,
  <pad> 0, <eos> 1, <bos> 2, <unk> 3, and user-defined pieces (<mask>, <start_of_turn>, <end_of_turn>).
"""

import functools
import io
import random


def _training_lines(extra_words=""):
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(800)]
    words += ("a photo of the cat dog sitting on table red blue green small large picture " + extra_words).split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(6000)]
    return lines + ["café naïve résumé Ångström", "猫が窓に座っている", "一只猫坐在窗户上", "😀 🐱 🚗",
                    "Schöne Grüße aus München"] * 20  # fmt: skip


def _trained(**options):
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(model_writer=model, character_coverage=0.9995, minloglevel=2,
                                             num_threads=1, **options)  # fmt: skip
    return model.getvalue()


@functools.lru_cache(maxsize=None)
def siglip_like_model():
    """The serialized model (bytes)."""
    return _trained(sentence_iterator=iter(_training_lines()), vocab_size=800, model_type="unigram", pad_id=0,
                    eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>")


@functools.lru_cache(maxsize=None)
def gemma_like_model():
    """The serialized model (bytes)."""
    return _trained(
        sentence_iterator=iter(_training_lines("The A Photo Of")), vocab_size=1000, model_type="bpe",
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        unk_piece="<unk>", user_defined_symbols=["<mask>", "<start_of_turn>", "<end_of_turn>"],
        byte_fallback=True, add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
    )


def write_gemma_like_folder(folder, tokenizer_class="GemmaTokenizer"):
    """`tokenizer.model` and `tokenizer_config.json` as a SigLIP 2 repository has them (transformers'
    `Siglip2Tokenizer` with `tokenizer_class="Siglip2Tokenizer"`); returns the folder."""
    import json
    import os

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.model"), "wb") as handle:
        handle.write(gemma_like_model())
    config = {"tokenizer_class": tokenizer_class, "add_bos_token": False, "add_eos_token": True,
              "padding_side": "right", "model_max_length": 64}  # fmt: skip
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return str(folder)


def write_siglip_like_model(path):
    with open(path, "wb") as handle:
        handle.write(siglip_like_model())
    return str(path)
