"""The serving check's texts: the validation sample's leading ``CHECK_BYTES`` of UTF-8 (``serving.leading_texts``)."""

from __future__ import annotations

from streamtrain.train.serving import leading_texts


def test_the_leading_texts_fit_in_the_bytes_counted_in_utf8():
    texts = ["ab", "é" * 3, "c", "d"]  # 2, 6, 1, 1 bytes
    assert leading_texts(texts, 9) == ["ab", "é" * 3, "c"]
    assert leading_texts(texts, 8) == ["ab", "é" * 3]
    assert leading_texts(texts, 7) == ["ab"]  # "é" * 3 would make 8: it ends the list
    assert leading_texts(texts, 100) == texts


def test_the_first_text_is_kept_however_long():
    assert leading_texts(["x" * 50, "y"], 10) == ["x" * 50]
    assert leading_texts([], 10) == []
