"""Counting words in any language: the tokenisation behind cluster keywords and "distinctive words".

scikit-learn's default tokenizer splits on spaces and punctuation, which is right for English but turns a Chinese
sentence into one "word" per clause: c-TF-IDF keywords of Chinese clusters were whole sentences. Chinese (and the
kanji runs of Japanese) are segmented with ``jieba`` instead; single-character segments are dropped (they are
mostly particles such as 的/了/吗), as are common function words. Latin-script words keep the old rule: three or
more letters, English stop words removed. The language is detected once per call from a sample of the texts.
"""
from __future__ import annotations

import logging
import re
from typing import Callable, Sequence

from .language import detect_language

_LATIN_WORD = re.compile(r"^[^\W\d_]{3,}$")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
#: Frequent Chinese function words and fillers that make poor keywords (two characters or more: shorter are dropped).
CHINESE_STOP_WORDS = frozenset(
    "一个 一些 一下 一样 一直 不是 不会 不能 为了 之后 之前 也是 了解 什么 今天 他们 以及 但是 你们 你好 其中 其他 "
    "可以 可能 只是 同时 因为 因此 如果 如何 就是 已经 已经是 并且 很多 怎么 怎么样 我们 所以 有些 没有 现在 而且 能够 "
    "自己 表示 认为 记者 这个 这些 这样 进行 通过 那么 那个 那些 还是 还有 非常 以上 以下 或者 目前 相关 之一 由于 "
    "对于 关于 其实 然后 大家 这种 这里 那里 时候 知道 觉得 需要 应该 问题 情况 方面 来说 一次 一种 不过 虽然 今年 "
    "去年 明年 昨天 我的 你的 他的 她的 它们 她们 咱们 帮我 请问 一般 当时 目前 这是 就是说 之间 以来 其它 及其 等等".split()
)


def _english_stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def segment_cjk(text: str) -> list[str]:
    """jieba words of one text, keeping keyword-like ones (see the module docstring)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)  # it announces its dictionary on stderr otherwise
    stop = _english_stop_words()
    out = []
    for word in jieba.lcut(str(text)):
        w = word.strip().lower()
        if not w:
            continue
        if _CJK.search(w):
            if len(w) >= 2 and w not in CHINESE_STOP_WORDS and not any(ch.isdigit() for ch in w):
                out.append(w)
        elif _LATIN_WORD.match(w) and w not in stop:
            out.append(w)
    return out


def needs_segmentation(texts: Sequence[str]) -> bool:
    """True when the texts are mostly Chinese or Japanese (no spaces between words)."""
    report = detect_language(texts, sample=200)
    share = {report.language: report.share, **report.others}
    return share.get("zh", 0.0) + share.get("ja", 0.0) >= 0.3


def word_vectorizer(texts: Sequence[str], *, binary: bool = False, max_features: int | None = None,
                    lowercase: bool = True) -> "object":
    """A ``CountVectorizer`` that splits words correctly for the texts' language (jieba for Chinese/Japanese)."""
    from sklearn.feature_extraction.text import CountVectorizer

    if needs_segmentation(texts):
        analyzer: Callable[[str], list[str]] = segment_cjk
        return CountVectorizer(analyzer=analyzer, binary=binary, max_features=max_features)
    # Words of three or more letters: numbers, HTML-entity debris ("#39;") and single letters make poor keywords.
    return CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b", lowercase=lowercase,
                           binary=binary, max_features=max_features)
