"""A SentencePiece model trained here, laid out as SigLIP's `spiece.model` (T5's ids: <pad> 0, </s> 1, <unk> 2).

SigLIP's own vocabulary is not downloaded in tests; a unigram model trained on a small corpus of
English, accented, CJK and emoji text has the same kind of pieces, special tokens and unknown characters.
"""

import functools
import io
import random


@functools.lru_cache(maxsize=None)
def siglip_like_model():
    """The serialized model (bytes)."""
    import sentencepiece

    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(800)]
    words += "a photo of the cat dog sitting on table red blue green small large picture".split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(6000)]
    lines += ["café naïve résumé Ångström", "猫が窓に座っている", "一只猫坐在窗户上", "😀 🐱 🚗",
              "Schöne Grüße aus München"] * 20
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=800, model_type="unigram", pad_id=0,
        eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        character_coverage=0.9995, minloglevel=2, num_threads=1,
    )  # fmt: skip
    return model.getvalue()


def write_siglip_like_model(path):
    with open(path, "wb") as handle:
        handle.write(siglip_like_model())
    return str(path)
