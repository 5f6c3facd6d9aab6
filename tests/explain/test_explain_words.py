"""Word units and the token→word bridge used by every attribution method (no model needed)."""
from __future__ import annotations

import numpy as np

from llm_backend.explain.words import remove_words, split_words, tokens_to_words


def test_latin_words_skip_punctuation_and_keep_spans():
    text = "Oil prices rose, and Wall-Street's traders worried."
    words = split_words(text)
    assert [w.text for w in words] == ["Oil", "prices", "rose", "and", "Wall-Street's", "traders", "worried"]
    assert all(text[w.start : w.end] == w.text for w in words)


def test_chinese_is_segmented_with_jieba_not_whitespace():
    text = "我想查询明天北京的天气。"
    words = split_words(text)
    assert len(words) >= 4  # whitespace splitting would give one unit
    assert "天气" in [w.text for w in words] and "。" not in [w.text for w in words]
    assert all(text[w.start : w.end] == w.text for w in words)


def test_remove_words_collapses_spaces():
    text = "the cat sat on the mat"
    words = split_words(text)
    assert remove_words(text, words, [1, 3]) == "the sat the mat"
    assert remove_words(text, words, []) == text


def test_tokens_sum_into_overlapping_words_and_skip_specials():
    text = "unbelievable news"
    words = split_words(text)
    offsets = [(0, 0), (0, 2), (2, 9), (9, 12), (12, 17), (0, 0)]  # [CLS] un believ able _news [SEP]
    out = tokens_to_words(offsets, np.array([5.0, 1.0, 2.0, 3.0, -4.0, 7.0]), words)
    assert np.allclose(out, [6.0, -4.0])
