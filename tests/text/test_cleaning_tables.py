"""The shipped character tables are exactly what the reference stack does, codepoint by codepoint."""

import pytest

from tests.helpers import tokenizer_tables


@pytest.fixture(scope="module")
def tables():
    return tokenizer_tables.build_tables(), tokenizer_tables.shipped_tables()


@pytest.mark.parametrize(
    "key",
    [
        "split_letters", "split_numbers", "split_unmatched", "split_literal_equivalents", "regex_whitespace",
        "lowercase", "sigma_cased", "sigma_case_ignorable", "python_whitespace", "python_decimal_digits",
        "ftfy_char_map", "ftfy_control_chars", "ftfy_html_entities", "html_invalid_charrefs",
        "html_invalid_codepoints", "nfc_protected", "tokenizers_lowercase_additions",
    ],
)
def test_shipped_table_equals_reference(tables, key):
    rebuilt, shipped = tables
    assert shipped[key] == rebuilt[key], (
        f"keras_clip/text/assets/clip_text_tables.json[{key!r}] differs from what the installed reference "
        f"({rebuilt['generated_with']}) does; regenerate with: python -m tests.helpers.tokenizer_tables --write"
    )


def test_tables_have_the_known_shape(tables):
    _, shipped = tables
    # U+0345 is in no class of OpenAI's IGNORECASE split pattern, so it separates words.
    assert [0x345, 0x345] in shipped["split_unmatched"]
    assert shipped["split_literal_equivalents"]["s"] == [ord("S"), ord("s"), 0x17F]
    assert shipped["lowercase"][str(0x130)] == "i\u0307"
    assert shipped["tokenizers_lowercase_additions"][str(0x10D57)] == "\U00010d77"  # Garay, Unicode 16
    assert shipped["ftfy_char_map"][str(0x3000)] == " " and shipped["ftfy_char_map"][str(0xFB01)] == "fi"
