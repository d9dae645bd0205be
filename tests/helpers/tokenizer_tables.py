"""Derives the tokenizer's character tables from the reference stack itself.

OpenAI's tokenizer mixes three Unicode databases: the `regex` module's (its split pattern, compiled
with IGNORECASE, and `\\s`), Python's own (`str.lower`, `str.strip`, NFC, `re`'s `\\d`) and ftfy's
tables; SigLIP 2's lower-cases with a fourth, Rust's (Hugging Face tokenizers').
`keras_clip/text/assets/clip_text_tables.json` holds what the in-graph tokenizers need from them as
plain data; this module rebuilds that data from the installed reference packages so a test can prove
the shipped file is exactly what the reference does, codepoint by codepoint.

Regenerate after upgrading Python, `regex`, ftfy, tokenizers or tensorflow-text:
    python -m tests.helpers.tokenizer_tables --write
"""

import html
import html.entities
import json
import os
import re
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSET_PATH = os.path.join(ROOT, "keras_clip", "text", "assets", "clip_text_tables.json")

_CODEPOINTS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
# Every codepoint once: a one-character pattern's findall over it lists the codepoints it matches.
_ALL_CHARS = "".join(chr(c) for c in _CODEPOINTS)


def _ranges(codepoints):
    """Sorted codepoints -> [[first, last], ...] runs."""
    runs = []
    for c in sorted(codepoints):
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return runs


def _matching(pattern_module, pattern, flags=0):
    """The codepoints that `pattern` (one character wide) matches."""
    compiled = pattern_module.compile(pattern, flags)
    return {ord(m) for m in compiled.findall(_ALL_CHARS)}


def split_pattern_tables():
    """What OpenAI's split pattern (`regex`, IGNORECASE) treats as letters, numbers and nothing."""
    import regex

    letters = _matching(regex, r"[\p{L}]", regex.IGNORECASE)
    numbers = _matching(regex, r"[\p{N}]", regex.IGNORECASE)
    others = _matching(regex, r"[^\s\p{L}\p{N}]", regex.IGNORECASE)
    unmatched = set(_CODEPOINTS) - letters - numbers - others
    assert not (letters & numbers) and not (letters & others) and not (numbers & others)
    literals = sorted(set("<|>'startoftextendoftextsrevmld"))
    equivalents = {
        ch: sorted(ord(m) for m in regex.compile(regex.escape(ch), regex.IGNORECASE).findall(_ALL_CHARS))
        for ch in literals
    }
    return {
        "split_letters": _ranges(letters),
        "split_numbers": _ranges(numbers),
        "split_unmatched": _ranges(unmatched),
        "split_literal_equivalents": equivalents,
        "regex_whitespace": _ranges(_matching(regex, r"\s")),
    }


def python_tables():
    """Python's `str.lower` (with its Final_Sigma rule), `str.isspace` and `re`'s `\\d`."""
    lowercase = {}
    for c in _CODEPOINTS:
        lowered = chr(c).lower()
        if lowered != chr(c):
            lowercase[str(c)] = lowered
    # Final sigma: "X" + "Σ" lowers to a final sigma iff X is cased and not case-ignorable;
    # "Α" + X + "Σ" does iff X is case-ignorable or (cased and not ignorable).
    cased = {c for c in _CODEPOINTS if (chr(c) + "\u03a3").lower()[-1] == "\u03c2"}
    ignorable = {c for c in _CODEPOINTS if ("\u0391" + chr(c) + "\u03a3").lower()[-1] == "\u03c2"} - cased
    return {
        "lowercase": lowercase,
        "sigma_cased": _ranges(cased),
        "sigma_case_ignorable": _ranges(ignorable),
        "python_whitespace": _ranges(c for c in _CODEPOINTS if chr(c).isspace()),
        "python_decimal_digits": _ranges(_matching(re, r"\d")),
    }


def tokenizers_tables():
    """What Hugging Face tokenizers' `Lowercase` (Rust's `char::to_lowercase`, a newer Unicode) maps that
    Python's `str.lower` of the same character does not (SigLIP 2's tokenizer lower-cases with it)."""
    from tokenizers import normalizers

    lowercase = normalizers.Lowercase()
    additions = {}
    for c in _CODEPOINTS:
        lowered = lowercase.normalize_str(chr(c))
        if lowered != chr(c).lower():
            additions[str(c)] = lowered
    return {"tokenizers_lowercase_additions": additions}


def ftfy_tables():
    """ftfy 6's default fixes other than mojibake repair, as data."""
    import ftfy  # noqa: F401  (registers the sloppy codecs)
    from ftfy import chardata, fixes

    def c1(text):
        return fixes.fix_c1_controls(text)

    def line_break_chars(text):
        # "\r\n" -> "\n" is a two-character rule and is applied before this map.
        return fixes.fix_line_breaks(text)

    steps = [c1, fixes.fix_latin_ligatures, fixes.fix_character_width, fixes.uncurl_quotes, line_break_chars]
    domain = set(range(0x80, 0xA0)) | set(chardata.LIGATURES) | set(chardata.WIDTH_MAP)
    domain |= {ord(ch) for ch in "\u02bc\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\r\u2028\u2029\x85"}
    char_map = {}
    for c in sorted(domain):
        text = chr(c)
        for step in steps:
            text = step(text)
        if text != chr(c):
            char_map[str(c)] = text
    untouched = "".join(chr(c) for c in _CODEPOINTS if c not in domain)
    text = untouched
    for step in steps:
        text = step(text)
    assert text == untouched, "an ftfy fix changes a character outside the mapped domain"
    return {
        "ftfy_char_map": char_map,
        "ftfy_control_chars": _ranges(chardata.CONTROL_CHARS),
        "ftfy_html_entities": dict(sorted(chardata.HTML_ENTITIES.items())),
    }


def html_tables():
    """`html.unescape`'s private tables of numeric references (the named ones are `html.entities.html5`)."""
    return {
        "html_invalid_charrefs": {str(k): v for k, v in sorted(html._invalid_charrefs.items())},
        "html_invalid_codepoints": sorted(html._invalid_codepoints),
    }


def nfc_protected_codepoints():
    """Codepoints that TF Text's ICU normalises but Python's NFC treats as inert unassigned starters.

    Python 3.11 knows Unicode 14; tensorflow-text's ICU knows newer marks (Nag Mundari, ...) and
    new canonical compositions (Kirat Rai, Tulu-Tigalari, Todhri, ...). The tokenizer fences these
    characters with U+FEFF before ICU's NFC, so that ICU neither reorders nor composes them.
    """
    import tensorflow as tf
    import tensorflow_text as tf_text

    def icu(texts, form):
        normalized = tf_text.normalize_utf8(tf.constant([t.encode("utf-8") for t in texts]), form)
        return [t.decode("utf-8") for t in normalized.numpy()]

    unassigned = {c for c in _CODEPOINTS if unicodedata.category(chr(c)) == "Cn"}
    probes = ["a" + chr(c) + "\u0334" for c in _CODEPOINTS] + ["a\u0334" + chr(c) + "\u0301" for c in _CODEPOINTS]
    owners = _CODEPOINTS + _CODEPOINTS
    protected = {o for p, o, n in zip(probes, owners, icu(probes, "NFC")) if n != unicodedata.normalize("NFC", p)}
    decompositions = {c: d for c, d in zip(_CODEPOINTS, icu([chr(c) for c in _CODEPOINTS], "NFD"))
                      if d != unicodedata.normalize("NFD", chr(c))}
    for c, decomposed in decompositions.items():
        protected |= {c} | {ord(ch) for ch in decomposed if ord(ch) in unassigned}
    assert protected <= unassigned, "a character Python knows normalises differently in ICU"

    # With the fences, ICU's NFC must give Python's on every probe and decomposition (U+FEFF itself
    # never reaches NFC: ftfy's control-character fix removes it just before).
    checks = probes + list(decompositions.values()) + [d + "\u0301" for d in decompositions.values()]
    checks = [check for check in checks if "\ufeff" not in check]
    fenced = ["".join("\ufeff" + ch + "\ufeff" if ord(ch) in protected else ch for ch in t) for t in checks]
    for check, normalized in zip(checks, icu(fenced, "NFC")):
        assert normalized.replace("\ufeff", "") == unicodedata.normalize("NFC", check), repr(check)
    return sorted(protected)


def build_tables():
    import ftfy
    import regex
    import tokenizers

    tables = {
        "about": (
            "Generated by tests/helpers/tokenizer_tables.py from the reference stack; do not edit. "
            "Codepoint keys are decimal strings, ranges are inclusive [first, last]."
        ),
        "generated_with": {
            "python_unicode": unicodedata.unidata_version,
            "regex": regex.__version__,
            "ftfy": ftfy.__version__,
            "tokenizers": tokenizers.__version__,
        },
    }
    tables.update(split_pattern_tables())
    tables.update(python_tables())
    tables.update(tokenizers_tables())
    tables.update(ftfy_tables())
    tables.update(html_tables())
    tables["nfc_protected"] = nfc_protected_codepoints()
    return tables


def shipped_tables():
    with open(ASSET_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def write_tables(path=ASSET_PATH):
    tables = build_tables()
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(tables, handle, ensure_ascii=True, separators=(",", ":"))
    os.replace(temporary, path)
    return tables


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.helpers.tokenizer_tables --write")
    write_tables()
    print("wrote", os.path.abspath(ASSET_PATH))
