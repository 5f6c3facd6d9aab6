"""Words of a text with their character spans, and the bridge from subword tokens back to those words.

Attributions are shown per *word* (what an analyst reads), while models see subword tokens. Every method here
works on the same :class:`Word` list, so occlusion and gradients colour exactly the same units:

- Latin-script text: a word is a run of letters/digits (with inner apostrophes or hyphens); punctuation stays in the
  text but is not a unit, so "the" and "," never compete with content words for the top of the list.
- Chinese (any Han character in the text): whitespace does not separate words, so the text is segmented with jieba
  (``jieba.tokenize`` gives character offsets); segments without a letter, digit or Han character are skipped.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

_WORD_RE = re.compile(r"\w+(?:['’\-]\w+)*", re.UNICODE)
_HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CONTENT_RE = re.compile(r"\w", re.UNICODE)
_SPACES_RE = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class Word:
    """One unit of attribution: its text and ``text[start:end]`` span in the original string."""

    text: str
    start: int
    end: int


def has_han(text: str) -> bool:
    return bool(_HAN_RE.search(text or ""))


def _jieba_words(text: str) -> list[Word]:
    import jieba

    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" lines would land in every CLI run's stderr
    return [Word(w, s, e) for w, s, e in jieba.tokenize(text) if _CONTENT_RE.search(w)]


def split_words(text: str) -> list[Word]:
    """The attribution units of ``text`` in order (see the module docstring for the rules)."""
    text = text or ""
    if has_han(text):
        return _jieba_words(text)
    return [Word(m.group(0), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


def remove_words(text: str, words: Sequence[Word], drop: Iterable[int]) -> str:
    """``text`` without the words at indices ``drop`` (runs of spaces left behind are collapsed to one)."""
    drop_set = set(drop)
    parts, pos = [], 0
    for i, w in enumerate(words):
        if i in drop_set:
            parts.append(text[pos : w.start])
            pos = w.end
    parts.append(text[pos:])
    return _SPACES_RE.sub(" ", "".join(parts)).strip()


def words_within(words: Sequence[Word], limit: int) -> int:
    """How many leading words end at or before character ``limit`` (the part of a cut text that was scored)."""
    return sum(1 for w in words if w.end <= limit)


def tokens_to_words(offsets: Sequence[tuple[int, int]], token_weights: np.ndarray, words: Sequence[Word]) -> np.ndarray:
    """Sum token attributions into the words their character spans overlap.

    ``offsets`` are (start, end) character spans of each token in the *same* string the words index (tokenizers'
    ``return_offsets_mapping``); special tokens have (0, 0) and are skipped. A token straddling two words (rare:
    BPE merges across a hyphen) is shared equally.
    """
    out = np.zeros(len(words), dtype=np.float64)
    if not words:
        return out
    starts = np.array([w.start for w in words])
    ends = np.array([w.end for w in words])
    for (s, e), weight in zip(offsets, np.asarray(token_weights, dtype=np.float64)):
        if e <= s:
            continue
        hit = np.flatnonzero((starts < e) & (ends > s))
        if hit.size:
            out[hit] += weight / hit.size
    return out
