"""A deterministic corpus of texts that exercises every step of CLIP's tokenizer.

`build_corpus()` generates (no giant literals, no downloads) a few thousand strings per run, the
same on every run: English captions, many scripts, emoji sequences, numbers, contractions,
punctuation, HTML references of every kind, Unicode whitespace and control characters, NFD text,
the special tokens written as text, empty strings, over-long texts, and ftfy's other targets
(full-width forms, ligatures, curly quotes, terminal escapes, C1 controls), plus random mixes.
`benchmark_captions()` gives plain varied captions for throughput measurements.
"""

import random
import unicodedata

_SUBJECTS = (
    "a dog", "two cats", "an old man", "a young woman", "the children", "a red car", "a bicycle", "three birds",
    "a wooden table", "the chef", "a group of friends", "an elephant", "a small boat", "the city skyline",
    "a bowl of soup", "a golden retriever", "a skateboarder", "the mountains", "a vintage camera", "a laptop",
)
_VERBS = (
    "sitting on", "running across", "looking at", "standing next to", "jumping over", "lying under",
    "playing with", "walking through", "parked in front of", "flying above", "reflected in", "painted on",
)
_OBJECTS = (
    "a green field", "the beach at sunset", "a busy street", "a snowy forest", "the kitchen counter",
    "a stone bridge", "an empty parking lot", "the river bank", "a crowded market", "a brick wall",
    "the living room sofa", "a frozen lake", "a colorful mural", "the train station", "a sandy desert",
)
_EXTRAS = (
    "", " in the rain", " at night", ", high resolution", " (black and white)", " - stock photo", "!!!",
    " #nofilter", " @ 50mm f/1.8", " circa 1920", " [HD]", "...", " 😀", " in 4K", " by John O'Neil",
)
_TEMPLATES = (
    "a photo of {}.", "a blurry photo of the {}.", "a painting of a {}.", "itap of a {}.", "a close-up photo of {}",
    "a sculpture of the {}!", "A PHOTO OF A {}", "this is {}", "{} — as seen from above", "art of the {}",
)
_SCRIPTS = {
    "accented_latin": (
        "Café crème brûlée à Paris", "Über die Straße gehen", "El niño pequeño comió paella", "São João",
        "Zażółć gęślą jaźń", "Příliš žluťoučký kůň", "Tiếng Việt có dấu", "İstanbul'da ılık bir gün",
        "Ærø og Øresund", "Çà et là, où êtes-vous?", "Smørrebrød på ĳsvlakte", "naïve façade résumé",
    ),
    "cyrillic": ("Привет мир", "Кошка сидит на окне", "ЁЛКА И ЁЖ", "Добро пожаловать в Москву", "Їжак і ґанок"),
    "greek": (
        "ΟΔΟΣ", "Καλημέρα κόσμε", "ΣΟΦΟΣ ΑΝΘΡΩΠΟΣ", "ΣΣ ΑΣΣ Σ.Σ", "ὈΔΥΣΣΕΎΣ", "ἈΘΗΝᾼ", "Α΄Σ", "ΑΣ'Σ",
        "ΜΆΘΗΜΑ ΦΥΣΙΚΉΣ", "Σ\u0301Α", "Α\u0345Σ",
    ),
    "arabic": ("مرحبا بالعالم", "القطة تجلس على النافذة", "١٢٣ ٤٥٦", "كتابٌ جميلٌ"),
    "hebrew": ("שלום עולם", "החתול יושב על החלון", "בְּרֵאשִׁית בָּרָא"),
    "devanagari": ("नमस्ते दुनिया", "बिल्ली खिड़की पर बैठी है", "क़िला ०१२३"),
    "thai": ("สวัสดีชาวโลก", "แมวนั่งอยู่บนหน้าต่าง", "๑๒๓"),
    "cjk": ("猫が窓に座っている", "你好，世界！", "中华人民共和国", "漢字と仮名", "一个穿红衣服的女孩"),
    "kana": ("ひらがなとカタカナ", "ｶﾀｶﾅ ﾃｽﾄ ｶﾞｷﾞ", "コーヒー・ショップ", "ゔ ヴ ゟ ヿ"),
    "hangul": ("안녕하세요 세계", "고양이가 창문에 앉아 있다", "ﾡﾢﾣ 각", "한국어 텍스트"),
    "emoji": (
        "👍🏽 great", "👨‍👩‍👧‍👦 family", "🇫🇷🇯🇵🇺🇸", "1️⃣ #️⃣ *️⃣", "🏴󠁧󠁢󠁥󠁮󠁧󠁿 England", "🧑🏿‍🚀", "❤️‍🔥",
        "🙂🙃😉", "👩🏻‍❤️‍💋‍👨🏼", "☕️ and 🍰",
    ),
}
_CONTRACTIONS = (
    "it's", "don't", "they're", "we've", "I'm", "you'll", "she'd", "IT'S", "DON'T", "We'Ve", "ca'nt", "''s",
    "it’s", "rock 'n' roll", "o'clock", "y'all'd've", "'tis", "it'ſ", "l'LL", "'D",
)
_PUNCTUATION = ("!!!", "?!?", "...", "---", "***", "~~~", "<>", "()", "[]{}", "@#$%^&*", "¡¿", "«»", "“”", "‘’", "„‚")
_NAMED_ENTITIES = (
    "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&nbsp;", "&eacute;", "&Eacute;", "&EACUTE;", "&copy;", "&hellip;",
    "&mdash;", "&rsquo;", "&ldquo;", "&frac12;", "&notin;", "&checkmark;", "&Jscr;", "&SZLIG;", "&NTILDE;", "&nTILDE;",
    "&amp", "&lt", "&copy", "&eacute", "&notit;", "&copyright", "&ampx", "&AMP;", "&ThickSpace;", "&NewLine;",
)
_UNKNOWN_ENTITIES = (
    "&foo;", "&bogus", "&;", "& amp;", "&#;", "&#x;", "&#xyz;", "&#65x;", "&abcdefghijklmnopqrstuvwxyzabcdefgh;",
)
_NUMERIC_ENTITIES = (
    "&#65;", "&#x41;", "&#X41;", "&#65", "&#x41", "&#0;", "&#13;", "&#9;", "&#10;", "&#128;", "&#x85;", "&#x81;",
    "&#xD800;", "&#1114111;", "&#1114112;", "&#99999999999999999999;", "&#x110000;", "&#xFFFE;", "&#1;", "&#x1b;",
    "&#59;", "&#x3b;", "&#0000065;", "&#x0000041;", "&#x1F600;", "&#128512;", "&#8217;", "&#x2028;", "&#160;",
    "&#x3000;", "&#xFF21;", "&#64257;", "&#xfeff;", "&#x345;", "&#931;",
)
_SPACES = (
    "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\xa0", "\u3000", "\u2000", "\u2003", "\u2009", "\u200a", "\u202f",
    "\u205f", "\u1680", "\x85", "\u2028", "\u2029", "\u200b", "\ufeff", "\u180e", "\x1c", "\x1f", "  ", "\t \n",
)
_FTFY_TARGETS = (
    "ＬＯＵＤ　ＮＯＩＳＥＳ", "ﬂuﬃeﬆ ﬁsh ﬀ ﬄ ﬅ", "Ĳssel ǅemal ǈudevit ŉ", "“double” ‘single’ ‛rev‟ ʼn",
    "\x1b[36;44mblue\x1b[0m", "\x1b[1mbold\x1b[m text", "\x1b[\u0663\u0664mdigits",
    "\x93quoted\x94 \x85 \x80 \x81 \x9d",
    "nul\x00here bell\x07 del\x7f", "\u206acontrol\u206f", "\ufff9annot\ufffb \ufffc", "ﾊﾝｶｸ ｶﾞ", "ｑｕｏｔｅ＂ｓ＇",
    "￠￡￥ ￦ ￨ ￩", "ＡＢＣ１２３！？", "𝐁𝐨𝐥𝐝 𝕯𝖔𝖚𝖇𝖑𝖊", "K Å Ω ℃", "x\u0345y", "İI ıi", "Ǆemal",
    "&ﬁlig;", "＆ａｍｐ；", "&am\x00p;", "&\u212aappa;", "a\u0301\u0316", "\u0e33 \u0ec9",
)
# Characters newer than Python 3.11's Unicode 14 that TF Text's ICU normalises (reorders, composes).
_NEWER_UNICODE = (
    "a\U0001e4ec\u0301", "x\u0897\u0301\u0316", "\U000105d2\u0307", "\U00016d67\U00016d67 \U00016d63\U00016d67",
    "\U00011382\U000113c9", "\U0001611e\U0001611e\U0001611f", "\U000105c9 \U00016d6a",
)
_MOJIBAKE = ("cafÃ©", "â€œquotedâ€\x9d", "SchÃ¶ne GrÃ¼ÃŸe", "Ã¡rvÃ\xadztÅ±rÅ‘", "â€™s", "ÐŸÑ€Ð¸Ð²ÐµÑ‚")
_SPECIALS = (
    "<|startoftext|>", "<|endoftext|>", "<|STARTOFTEXT|>", "<|EndOfText|>", "<|ſtartoftext|>", "<|startoftext|",
    "<|endoftext|><|endoftext|>", "hello<|endoftext|>world", "< |startoftext| >", "<|startoftext|>a photo",
)


def _captions(rng, count):
    out = []
    for _ in range(count):
        body = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_EXTRAS)}"
        text = rng.choice(_TEMPLATES).format(body) if rng.random() < 0.5 else body
        out.append(text.capitalize() if rng.random() < 0.5 else text)
    return out


def _random_codepoint(rng):
    while True:
        c = rng.choice((rng.randrange(0x20, 0x250), rng.randrange(0x250, 0x3000), rng.randrange(0x3000, 0xFFFF),
                        rng.randrange(0x10000, 0x30000), rng.randrange(0xE0000, 0xE0080)))
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def _numbers(rng):
    return [
        str(rng.randrange(10 ** rng.randrange(1, 30))) for _ in range(40)
    ] + ["3.14159", "1,000,000", "-42", "2024-01-01", "12:30pm", "½ ¾ ² ³", "Ⅻ ⅻ", "① ⑵", "𝟘𝟙", "٣٫١٤", "१२३"]


def build_corpus(seed=2021):
    """The parity corpus: about 5,900 distinct strings, identical on every call."""
    rng = random.Random(seed)
    corpus = _captions(rng, 2000)
    scripts = [text for texts in _SCRIPTS.values() for text in texts]
    corpus += scripts
    corpus += [unicodedata.normalize("NFD", text) for text in scripts]
    corpus += [text.upper() for text in scripts] + [text.lower() for text in scripts]
    pieces = (
        list(_CONTRACTIONS) + list(_PUNCTUATION) + _numbers(rng) + list(_NAMED_ENTITIES) + list(_UNKNOWN_ENTITIES)
        + list(_NUMERIC_ENTITIES) + list(_FTFY_TARGETS) + list(_NEWER_UNICODE) + list(_SPECIALS) + scripts
    )
    corpus += pieces
    # Every piece inside a caption, and next to every kind of space.
    for piece in pieces:
        corpus.append(f"{rng.choice(_captions(rng, 1))} {piece} {rng.choice(_OBJECTS)}")
        corpus.append(f"{rng.choice(_SPACES)}{piece}{rng.choice(_SPACES)}x{piece}")
    for space in _SPACES:
        corpus += [space, space * 3, f"a{space}b", f"{space}word{space}", f"line{space}<b>{space}&amp;{space}end"]
    corpus += ["", " ", "   ", "\t\n", "\u3000\u3000", "\xa0"]
    # HTML unescaping: double escapes, and ftfy's "no unescaping from the first line with a <" rule.
    for entity in _NAMED_ENTITIES + _NUMERIC_ENTITIES[:12]:
        double = entity.replace("&", "&amp;", 1)
        corpus += [double, double.replace("&", "&amp;", 1), f"a <b> {entity}", f"{entity}\n<i>{entity}\n{entity}"]
    # Texts far over the context length.
    for _ in range(60):
        corpus.append(" ".join(_captions(rng, rng.randrange(8, 40))))
    corpus += ["word " * 200, "🙂" * 120, "a" * 2000, "&amp;" * 300, "ab" * 500 + " end", "x\n" * 300]
    # Random mixtures of everything above with random codepoints.
    pool = pieces + list(_SPACES) + list(_MOJIBAKE) + _captions(rng, 50)
    for _ in range(2500):
        parts = [rng.choice(pool) for _ in range(rng.randrange(1, 6))]
        parts += ["".join(_random_codepoint(rng) for _ in range(rng.randrange(1, 8)))]
        rng.shuffle(parts)
        corpus.append(rng.choice(("", " ", "\n", "\t")).join(parts))
    corpus += list(_MOJIBAKE)
    return list(dict.fromkeys(corpus))  # unique, in generation order


def benchmark_captions(count=10000, seed=7):
    """`count` varied English captions (punctuation, numbers, a few rare words and emoji)."""
    rng = random.Random(seed)
    rare = ("xylophonist", "bioluminescent", "Kyrgyzstan", "photobombing", "chiaroscuro", "Reykjavík", "naïve")
    out = []
    for text in _captions(rng, count):
        if rng.random() < 0.2:
            text += f" {rng.choice(rare)}"
        if rng.random() < 0.1:
            text += f" #{rng.randrange(10000)}"
        out.append(text)
    return out


def assert_same_ids(corpus, expected, ours):
    """Every row of `ours` (ids of at least 2,000 texts) equals the reference's; else the first differing texts."""
    import numpy as np

    ours = np.asarray(ours)
    differing = np.flatnonzero((ours != expected).any(axis=1))
    assert len(corpus) >= 2000 and not differing.size, [(corpus[i], ours[i][:12], expected[i][:12])
                                                        for i in differing[:3]]  # fmt: skip


def reloaded_tokenizers(tokenizer, folder):
    """`tokenizer` saved and loaded back two ways, as functions of a 1-D tf.string: a SavedModel of a
    `tf.Module` and a `.keras` file of a Keras model (both written under `folder`)."""
    import keras
    import tensorflow as tf

    module = tf.Module()
    module.tokenizer = tokenizer
    module.tokenize = tf.function(lambda texts: tokenizer(texts), input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(folder / "saved"))
    inputs = keras.Input(shape=(), dtype="string")
    keras.Model(inputs, tokenizer(inputs)).save(folder / "tokenizer.keras")
    return [tf.saved_model.load(str(folder / "saved")).tokenize, keras.saving.load_model(folder / "tokenizer.keras")]
