"""OpenAI CLIP's text cleaning, in graph: ftfy's default fixes, `html.unescape` twice, whitespace, `lower()`.

The reference (`clip/simple_tokenizer.py`) does, per text:
    ftfy.fix_text -> html.unescape twice -> strip -> `\\s+` to " " -> strip -> str.lower()
`TextCleaner` reproduces each step with core TensorFlow ops (RE2 regexes, lookup tables, string
ops) and one TF Text op, `NormalizeUTF8` for NFC. Character classes are not RE2's own: they are
explicit codepoint ranges read from `assets/clip_text_tables.json`, which the tests regenerate
from the reference stack, because the reference mixes the `regex` module's Unicode version with
Python's. ftfy's mojibake repair (`fix_encoding`) is the one fix left out.
"""

import functools
import html.entities
import json
import os

import tensorflow as tf
import tensorflow_text as tf_text

TABLES_PATH = os.path.join(os.path.dirname(__file__), "assets", "clip_text_tables.json")

# Byte 0xFF never occurs in UTF-8, so it can delimit pieces inside a string and mark "not found".
MARK = b"\xff"
# U+FEFF is removed by ftfy's control-character fix just before NFC, so it can fence characters.
_FENCE = "\ufeff"

_ENTITY_PATTERN = r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)"  # html.unescape's
_FTFY_ENTITY_PATTERN = r"&#?[0-9A-Za-z]{1,24};"  # ftfy.fixes.unescape_html's


@functools.lru_cache(maxsize=None)
def load_tables():
    with open(TABLES_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def char_class(ranges, negate=False, extra=""):
    """RE2 character class from inclusive codepoint ranges, e.g. `[\\x{41}-\\x{5a}]`."""
    body = "".join(f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in ranges)
    return ("[^" if negate else "[") + body + extra + "]"


def _codepoint_class(codepoints):
    return char_class([[c, c] for c in sorted(codepoints)])


def _string_table(mapping):
    keys = tf.constant([key.encode("utf-8") if isinstance(key, str) else key for key in mapping])
    values = tf.constant([value.encode("utf-8") for value in mapping.values()])
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=MARK)


def suffix(texts, start):
    """Each string from byte `start` (a tensor of the same shape) to its end."""
    return tf.strings.substr(texts, start, tf.strings.length(texts) - start)


def split_on(texts, separator):
    """1-D strings -> (row of each piece, its position in the row, the pieces), all 1-D.

    The raw op keeps the graph small (the RaggedTensor wrappers add ~100 nodes per call, which
    every tf.data iterator re-instantiates). `separator=b""` splits on whitespace, dropping empties.
    """
    indices, pieces, _ = tf.raw_ops.StringSplitV2(input=texts, sep=separator, maxsplit=-1)
    return indices[:, 0], indices[:, 1], pieces


def _map_matches(texts, pattern, replace):
    """Replaces every match of `pattern` with `replace(matches)` (1-D string -> 1-D string), in one pass."""
    marked = tf.strings.regex_replace(texts, pattern, MARK + b"\\0" + MARK)
    row, position, pieces = split_on(marked, MARK)
    # Splitting "a<M>m1<M>b<M>m2<M>c" on the mark puts the matches at the odd positions of each row.
    where = tf.where(tf.equal(position % 2, 1))
    pieces = tf.tensor_scatter_nd_update(pieces, where, replace(tf.gather_nd(pieces, where)))
    return tf.strings.unsorted_segment_join(pieces, row, tf.size(texts, out_type=tf.int64))


def _translate(texts, pattern, table):
    """Replaces each character matched by `pattern` with its value in `table`."""
    return _map_matches(texts, pattern, table.lookup)


def _parse_number(digits, is_hex):
    """Strings of at most 7 decimal or hex digits -> int64, without string parsing ops."""
    width = 7
    length = tf.strings.length(digits)
    padded = tf.strings.substr(tf.strings.join([b"0" * width, digits]), length, tf.fill(tf.shape(length), width))
    codes = tf.cast(tf.reshape(tf.io.decode_raw(padded, tf.uint8), [-1, width]), tf.int64)
    values = tf.where(codes <= ord("9"), codes - ord("0"), tf.bitwise.bitwise_or(codes, 32) - (ord("a") - 10))
    base = tf.where(is_hex, tf.constant(16, tf.int64), tf.constant(10, tf.int64))
    weights = tf.pow(tf.expand_dims(base, 1), tf.range(width - 1, -1, -1, dtype=tf.int64))
    return tf.reduce_sum(values * weights, axis=1)


class TextCleaner(tf.Module):
    """`whitespace_clean(basic_clean(text)).lower()` of OpenAI's tokenizer as a graph function.

    Example:
    >>> TextCleaner()(tf.constant(["Caf\u00e9 &amp; \u201cCr\u00e8me\u201d\u3000 "])).numpy()[0].decode()
    'caf\u00e9 & "cr\u00e8me"'
    """

    def __init__(self, name="clip_text_cleaner"):
        super().__init__(name=name)
        t = load_tables()
        codepoint_map = lambda key: {chr(int(k)): v for k, v in t[key].items()}  # noqa: E731
        with tf.init_scope():
            self._ftfy_chars = _string_table(codepoint_map("ftfy_char_map"))
            self._ftfy_entities = _string_table(t["ftfy_html_entities"])
            self._entities = _string_table({"&" + name: value for name, value in html.entities.html5.items()})
            special = {c: "" for c in t["html_invalid_codepoints"]}
            special.update({int(k): v for k, v in t["html_invalid_charrefs"].items()})
            self._numeric_specials = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(list(special), tf.int64), tf.constant([v.encode("utf-8") for v in special.values()])
                ),
                default_value=MARK,
            )
            non_ascii_lower = {ch: low for ch, low in codepoint_map("lowercase").items() if ord(ch) >= 128}
            self._lowercase = _string_table(non_ascii_lower)
            self._newer_lowercase = _string_table(codepoint_map("tokenizers_lowercase_additions"))
        self._ftfy_chars_pattern = _codepoint_class(int(k) for k in t["ftfy_char_map"])
        self._lowercase_pattern = _codepoint_class(ord(ch) for ch in non_ascii_lower)
        self._newer_lowercase_pattern = _codepoint_class(int(k) for k in t["tokenizers_lowercase_additions"])
        self._control_pattern = char_class(t["ftfy_control_chars"])
        digit = char_class(t["python_decimal_digits"])
        self._terminal_escape_pattern = f"\\x1b\\[(?:{digit}|;)*[a-zA-Z]"
        self._nfc_fence_pattern = _codepoint_class(t["nfc_protected"])
        space = char_class(t["python_whitespace"])
        self._strip_pattern = f"^{space}+|{space}+$"
        self._collapse_pattern = char_class(t["regex_whitespace"]) + "+"
        cased, ignorable = t["sigma_cased"], t["sigma_case_ignorable"]
        # html.unescape's fallback: the longest html5 name without ";" that prefixes the reference.
        legacy = sorted((name for name in html.entities.html5 if not name.endswith(";")), key=len, reverse=True)
        self._legacy_prefix_pattern = "^(&(?:" + "|".join(legacy) + "))(?s:.+)$"
        self._final_sigma_pattern = "({a})({i}*)\u03a3({i}*)({b}|$)".format(
            a=char_class(cased), i=char_class(ignorable), b=char_class(cased + ignorable, negate=True)
        )

    @tf.Module.with_name_scope
    def __call__(self, texts):
        """1-D tf.string (valid or invalid UTF-8) -> 1-D tf.string, cleaned and lower-cased."""
        texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
        # HTML references are the only fix that can enable another round of ftfy's fixes, and the
        # slow part of the cleaning: a batch without "&" (or a full-width one) takes the short path.
        has_references = tf.reduce_any(tf.strings.regex_full_match(texts, "(?s).*[&\uff06].*"))
        texts = tf.cond(has_references, lambda: self._clean_references(texts), lambda: self.fix_once(texts))
        texts = tf.strings.regex_replace(texts, self._strip_pattern, "")
        texts = tf.strings.regex_replace(texts, self._collapse_pattern, " ")
        texts = tf.strings.regex_replace(texts, self._strip_pattern, "")
        return self.lower(texts)

    def _clean_references(self, texts):
        return self.html_unescape(self.html_unescape(self.fix_text(texts)))

    # ftfy.fix_text with its defaults, minus fix_encoding ------------------------------------
    def fix_once(self, texts):
        """One round of ftfy's fixes other than HTML unescaping.

        Without unescaping, one round reaches ftfy's fixed point: afterwards no "\r", no mapped
        character, no escape character, no control character is left and the text is NFC.
        """
        texts = tf.strings.regex_replace(texts, "\r\n", "\n")
        texts = _translate(texts, self._ftfy_chars_pattern, self._ftfy_chars)
        texts = tf.strings.regex_replace(texts, self._terminal_escape_pattern, "")
        texts = tf.strings.regex_replace(texts, self._control_pattern, "")
        return self.nfc(texts)

    def fix_text(self, texts):
        """ftfy.fix_text: rounds of all its fixes (HTML unescaping first) until nothing changes."""
        # fix_text works line by line and stops unescaping HTML from the first line holding a "<".
        heads = tf.strings.regex_replace(texts, r"(?s)^((?:[^<]*\n)?)[^<\n]*<.*$", r"\1")
        tails = suffix(texts, tf.strings.length(heads))
        count = tf.size(texts)
        segments = tf.concat([heads, tails], axis=0)
        unescape = tf.range(2 * count) < count

        def body(x, _):
            fixed = self.fix_once(tf.where(unescape, self.ftfy_unescape(x), x))
            return fixed, tf.reduce_any(tf.not_equal(fixed, x))

        segments, _ = tf.while_loop(
            lambda x, changed: changed,
            body,
            (segments, tf.constant(True)),
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([])),
        )
        return tf.strings.join([segments[:count], segments[count:]])

    def nfc(self, texts):
        # Python's NFC does not know marks newer than its Unicode database; ICU does. Fencing them
        # with U+FEFF (a starter that never composes) makes ICU treat them as Python does.
        fenced = tf.strings.regex_replace(texts, self._nfc_fence_pattern, _FENCE + r"\0" + _FENCE)
        return tf.strings.regex_replace(tf_text.normalize_utf8(fenced, "NFC"), _FENCE, "")

    def ftfy_unescape(self, texts):
        def replace(refs):
            named = self._ftfy_entities.lookup(refs)
            numeric = tf.strings.regex_full_match(refs, "&#[0-9]+;|&#[xX][0-9a-fA-F]+;")
            value = self._numeric_reference(refs)
            # ftfy keeps the reference when html.unescape's result still holds a ";".
            numeric &= tf.not_equal(value, ";")
            return tf.where(tf.not_equal(named, MARK), named, tf.where(numeric, value, refs))

        return _map_matches(texts, _FTFY_ENTITY_PATTERN, replace)

    # html.unescape ------------------------------------------------------------------------
    def html_unescape(self, texts):
        return _map_matches(texts, _ENTITY_PATTERN, self._html_reference)

    def _html_reference(self, refs):
        named = self._entities.lookup(refs)
        prefix = tf.strings.regex_replace(refs, self._legacy_prefix_pattern, r"\1")
        prefixed = tf.strings.join([self._entities.lookup(prefix), suffix(refs, tf.strings.length(prefix))])
        named = tf.where(tf.not_equal(named, MARK), named, tf.where(tf.not_equal(prefix, refs), prefixed, refs))
        numeric = tf.strings.regex_full_match(refs, "&#.*")
        return tf.where(numeric, self._numeric_reference(refs), named)

    def _numeric_reference(self, refs):
        """'&#65;' / '&#x41' (";" optional) -> the text html.unescape gives; garbage for other input."""
        is_hex = tf.strings.regex_full_match(refs, "&#[xX].*")
        digits = tf.strings.regex_replace(refs, "^&#[xX]?0*|;$", "")
        length = tf.strings.length(digits)
        too_long = length > tf.where(is_hex, 6, 7)  # anything longer is above U+10FFFF
        codepoint = _parse_number(tf.where(too_long, "", digits), is_hex)
        codepoint = tf.where(too_long, tf.constant(0x110000, tf.int64), codepoint)
        special = self._numeric_specials.lookup(codepoint)
        invalid = (codepoint < 0) | (codepoint > 0x10FFFF) | ((codepoint >= 0xD800) & (codepoint <= 0xDFFF))
        safe = tf.cast(tf.where(invalid, tf.constant(0xFFFD, tf.int64), codepoint), tf.int32)
        encoded = tf.strings.unicode_encode(tf.expand_dims(safe, 1), "UTF-8")
        return tf.where(tf.not_equal(special, MARK), special, encoded)

    # str.lower ----------------------------------------------------------------------------
    def lower(self, texts):
        texts = tf.strings.regex_replace(texts, self._final_sigma_pattern, "\\1\\2\u03c2\\3\\4")
        texts = tf.strings.lower(texts)  # ASCII only; the table does the rest, as Python would
        return _translate(texts, self._lowercase_pattern, self._lowercase)

    def lower_each_character(self, texts):
        """Each character lower-cased on its own, as Rust's `char::to_lowercase` (Hugging Face tokenizers'
        `Lowercase`): no final-sigma rule ("Σ" is always "σ"), and the capitals newer Unicode added."""
        texts = _translate(tf.strings.lower(texts), self._lowercase_pattern, self._lowercase)
        return _translate(texts, self._newer_lowercase_pattern, self._newer_lowercase)
