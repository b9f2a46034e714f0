"""word_hashes tokenizes exactly as sklearn's analyzer and hashes by the plain FNV-1a + splitmix64 definition."""

from __future__ import annotations

import unicodedata
from functools import cache

import numpy as np
import pytest
from conftest import imdb_train_texts
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer

from streamtrain.vectorize.words import splitmix64, word_hashes, word_spans

M64 = 2**64 - 1


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits, as published: xor each byte in, then multiply by the FNV prime."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & M64
    return h


def splitmix64_ref(x: int) -> int:
    """SplitMix64 (Steele, Lea, Flood 2014): add the golden gamma, then Stafford's mix 13."""
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


@cache
def token_hash(token: str) -> int:
    return splitmix64_ref(fnv1a64(token.encode("utf-8")))


ANALYZER = HashingVectorizer(lowercase=True, strip_accents="unicode", token_pattern=r"(?u)\b\w\w+\b").build_analyzer()


def reference(texts: list[str]) -> list[list[int]]:
    """sklearn's tokens of each text, hashed by the plain reference."""
    return [[token_hash(t) for t in ANALYZER(text)] for text in texts]


def per_text(texts: list[str]) -> list[list[int]]:
    offsets, hashes = word_hashes(texts)
    assert offsets.dtype == np.int64 and hashes.dtype == np.uint64 and len(offsets) == len(texts) + 1
    return [hashes[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]


TRICKY = [
    "",
    "   \n\t ",
    "a b c I x",
    "é ß ø 1 _",
    "Café naïve RÉSUMÉ, élève; Ångström",
    "e\u0301te\u0301 cafe\u0301",  # decomposed accents
    "snake_case __init__ _ a_ _b __",
    "R2D2 42 3.14 1,000 7 0x1F ٣٤ ١٢",
    "don't it's rock'n'roll ’tis l’été",
    "東京タワー 中文 한국어 テスト がぎ",
    "😀 great👍movie 🎬🎬 a😀b",
    "ﬁne ﬂow ＡＢＣ ｄｅｆ ℌello x² ½ ⅓ Ⅻ ㎞ ™",
    "مَرْحَبًا שָׁלוֹם हिन्दी नमस्ते ภาษาไทย",
    "İstanbul STRASSE Straße ǅemal ﬀ",
    "a\x00b ab\x00cd tab\there new\nline",
    "ab\u200bcd zero\u200dwidth soft\u00adhyphen",
    "<br /><br />This movie... was—really–bad!!!",
    "word",  # no separator between this text and the next one: tokens must not merge
    "next",
    "x" * 300 + " " + "y" * 9 + " zz",
]


def test_tricky_strings_agree_with_sklearn():
    assert per_text(TRICKY) == reference(TRICKY)


def test_known_difference_final_sigma():
    """Arrow lowercases code point by code point: a word-final capital sigma becomes σ, not Python's ς."""
    assert per_text(["ΟΔΟΣ"]) == [[token_hash("οδοσ")]]
    assert ANALYZER("ΟΔΟΣ") == ["οδος"]


def test_hash_pins():
    """Regression pins, from the plain definitions above (checked against published test vectors)."""
    assert fnv1a64(b"") == 0xCBF29CE484222325 and fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    assert splitmix64_ref(0) == 0xE220A8397B1DCDAF  # first output of SplitMix64 seeded with 0
    pinned = [0xFF7F3D556C4703B3, 0x6B8CFE9DB17D963A, 0x6596FBE5EA51C1E4]
    assert [token_hash(w) for w in ("the", "movie", "naive")] == pinned
    assert per_text(["The MOVIE, naïve!"]) == [pinned]


def test_splitmix64_vectorized():
    xs = [0, 1, 2**63, M64, 0x0123456789ABCDEF]
    out = splitmix64(np.array(xs, dtype=np.uint64))
    assert out.dtype == np.uint64 and out.tolist() == [splitmix64_ref(x) for x in xs]
    assert int(splitmix64(np.uint64(5))) == splitmix64_ref(5)
    assert splitmix64(np.zeros((2, 3), dtype=np.uint64)).shape == (2, 3)


def test_empty_inputs():
    offsets, hashes = word_hashes([])
    assert offsets.tolist() == [0] and len(hashes) == 0
    offsets, hashes = word_hashes(["", "!", "a"])
    assert offsets.tolist() == [0, 0, 0, 0] and len(hashes) == 0
    assert word_spans([])[1].tolist() == [0]


def test_word_spans_are_the_normalized_tokens():
    data, offsets, starts, lengths = word_spans(["Café ½x, ΟΔΟΣ", "", "한국어 ℌello"])
    tokens = [bytes(data[s : s + n]).decode("utf-8") for s, n in zip(starts, lengths)]
    korean = unicodedata.normalize("NFKD", "한국어")  # Hangul syllables decompose into letters
    assert tokens == ["cafe", "2x", "οδοσ", korean, "Hello"] and offsets.tolist() == [0, 3, 3, 5]
    assert ANALYZER("Café ½x, 한국어 ℌello") == ["cafe", "2x", korean, "Hello"]


def test_very_long_word():
    """A 200,000-character 'word' is one token, hashed in full (the numpy loop hands its tail to Python)."""
    word = "ab" * 100_000
    assert per_text([word + " x " + word[:-1], "hi"]) == [[token_hash(word), token_hash(word[:-1])], [token_hash("hi")]]


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("aZé_ 1'.,-\u0301\u00a0ßİ東😀’\n½가ﷺⅧℌϒ"),
        st.characters(exclude_categories=("Cs", "Cn"), exclude_characters="Σ"),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXT, max_size=8))
def test_batch_equals_per_text_calls(texts):
    """A text's hashes do not depend on the other texts of the call, nor on its position."""
    batched = per_text(texts)
    assert batched == [per_text([t])[0] for t in texts]
    assert batched == reference(texts)


@pytest.fixture(scope="module")
def imdb_sample() -> list[str]:
    """3,000 aclImdb train reviews, read straight from the archive (no extraction)."""
    texts = imdb_train_texts(3000)
    return texts


def test_imdb_agrees_with_sklearn(imdb_sample):
    ours, ref = per_text(imdb_sample), reference(imdb_sample)
    differ = [i for i in range(len(ref)) if ours[i] != ref[i]]
    assert not differ, f"{len(differ)} of {len(ref)} reviews tokenized differently, e.g. {imdb_sample[differ[0]]!r}"
    assert sum(map(len, ours)) > 500_000
