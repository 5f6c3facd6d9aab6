"""Label wording help that learns from the data: descriptions for short or cryptic label names.

A label called "POS", "card_arrival" or "Business" embeds as a few generic tokens; the texts that belong to it use
other words ("my card hasn't come yet", "shares fell"). This module reads the corpus being labelled, takes the rows
the zero-shot pass is most confident about for each label (the same per-class margin selection as self-training),
and ranks the words and two-word phrases that set those rows apart from the other labels' rows with class-based
TF-IDF (c-TF-IDF, as in BERTopic: a term's frequency in one label's rows, weighted by how rare it is across labels).
The top phrases become a suggested description the user can read, edit and accept; :func:`apply_suggestions`
returns the label set with the accepted descriptions, which every method then uses.

No gold labels are read. Chinese (or any unspaced script) is cut into words with jieba, so the phrases are words
rather than whole sentences. Whether to propose them, and what accepting
changes, is :mod:`llm_backend.scorers.wording_help` (measured in bench/label_wording.py; docs/zero-shot.md,
"Label wording help").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from llm_backend.data.labels import Label
from llm_backend.scorers.self_training import select_confident

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"(?u)\b[^\W\d_]{2,}\b")


@dataclass
class LabelSuggestion:
    """What the data suggests for one label."""

    name: str
    cryptic: bool  # short, abbreviated or code-like name without a description: the labels that gain most
    phrases: list[str] = field(default_factory=list)  # distinctive words / two-word phrases, best first
    description: str = ""  # the phrases as one suggested description ("" when the data gave none)
    examples: list[str] = field(default_factory=list)  # a few of the confident rows the phrases came from
    n_rows: int = 0  # confident rows the phrases were drawn from
    expansion: str = ""  # the name with abbreviated words spelled out from the corpus ("" when nothing expands)


def is_cryptic(label: Label) -> bool:
    """Short or code-like names with nothing else to go on: one word, an abbreviation, or an identifier.

    ``card_arrival`` counts (an identifier a developer wrote), ``Sports`` counts (one word), "lost or stolen card"
    does not. A label with a description or phrasings is never cryptic: the user already said what it means.
    """
    if label.description.strip() or any(p.strip() for p in label.phrasings):
        return False
    name = label.name.strip()
    words = label.phrase.split()
    return (len(name) <= 4 or name.isupper() or len(words) <= 1 or bool(re.search(r"[_.:|/]", name))
            or (len(words) <= 2 and not _CJK.search(name)))


def _tokenizer(texts: Sequence[str]):
    """A word tokenizer fit for the script: jieba for Chinese/Japanese text, a unicode word pattern otherwise."""
    sample = " ".join(str(t) for t in texts[:50])
    if _CJK.search(sample):
        import jieba

        jieba.setLogLevel(60)  # silence its "building prefix dict" chatter

        def cut(text: str) -> list[str]:
            return [w for w in jieba.lcut(text) if len(w.strip()) > 1 and not re.fullmatch(r"[\W\d_]+", w)]

        return cut
    return None


def class_tfidf(docs_per_label: Sequence[Sequence[str]], n_terms: int, exclude: Sequence[set[str]],
                tokenizer=None, min_rows: int = 2) -> list[list[str]]:
    """Top ``n_terms`` distinctive unigrams/bigrams per label by c-TF-IDF; ``exclude`` holds each label's own words.

    A term must occur in at least ``min_rows`` of a label's rows to be suggested for it: one row's quirk (a name, a
    repeated word) says nothing about the label.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    rows = [str(t) for docs in docs_per_label for t in docs]
    owner = np.asarray([j for j, docs in enumerate(docs_per_label) for _ in docs], dtype=int)
    empty: list[list[str]] = [[] for _ in docs_per_label]
    if not any(r.strip() for r in rows):
        return empty
    kwargs = dict(ngram_range=(1, 2), max_features=50_000, lowercase=True)
    if tokenizer is not None:
        vec = CountVectorizer(tokenizer=tokenizer, token_pattern=None, **kwargs)
    else:
        vec = CountVectorizer(stop_words="english", token_pattern=_WORD.pattern, **kwargs)
    try:
        x = vec.fit_transform(rows).astype(np.float64)
    except ValueError:  # only stop words
        return empty
    member = sparse.csr_matrix((np.ones(len(rows)), (owner, np.arange(len(rows)))),
                               shape=(len(docs_per_label), len(rows)))
    counts = (member @ x).toarray()  # term counts per label
    df = (member @ (x > 0).astype(np.float64)).toarray()  # rows of each label holding the term
    vocab = np.asarray(vec.get_feature_names_out())
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    avg_words = float(counts.sum()) / max(counts.shape[0], 1)
    idf = np.log1p(avg_words / np.maximum(counts.sum(axis=0), 1.0))
    scores = tf * idf
    out: list[list[str]] = []
    for j in range(len(docs_per_label)):
        own = exclude[j]
        picked: list[str] = []
        for i in np.argsort(-scores[j]):
            if scores[j, i] <= 0 or len(picked) >= n_terms:
                break
            term = vocab[i]
            if df[j, i] < min_rows or any(p in own for p in term.split()):
                continue
            if any(term in p or p in term for p in picked):  # "card" and "new card": keep the first
                continue
            picked.append(term)
        out.append(picked)
    return out


def doc_freq(rows: Sequence[str]) -> dict[str, int]:
    """{lower-cased word: rows holding it} (the English word pattern of :func:`class_tfidf`)."""
    out: dict[str, int] = {}
    for row in rows:
        for w in set(_WORD.findall(str(row).lower())):
            out[w] = out.get(w, 0) + 1
    return out


def expand_abbreviation(phrase: str, own_rows: Sequence[str], corpus: dict[str, int] | None = None,
                        min_rows: int = 2, vocab: Sequence[str] | None = None,
                        first: dict[str, int] | None = None) -> str:
    """The label phrase with each word that looks cut short replaced by the corpus word it most likely stands for.

    For every word of ``phrase`` (two letters or more), the candidates are the corpus words that start with it
    ("car" -> "card", "cards", "careful"; the word itself counts too) and occur in at least ``min_rows`` rows. The
    one in most of the label's own confident rows ``own_rows`` wins, then the one in most rows of the whole corpus
    (``corpus``, from :func:`doc_freq`): with many labels a label has only a few confident rows, and the corpus's
    commonest completion of a prefix is then the best guess ("tra" -> "transfer" in a bank's messages). The word
    itself wins ties, so whole words stay ("top" in "top up"); English stop words are never cut short ("or") nor
    what a cut word stands for ("wit" is "withdrawal", not "with"). Returns "" when no word changed. This spells
    out truncations ("car_arr" -> "card arrived"; from word counts, so also "Sci/Tec" -> "scientists and
    technology", which is why it is a suggestion the user reads), the commonest way names get
    cut short; initials ("CA") and non-English texts (no words to match) are left to the LM sentence.
    """
    words = phrase.split()
    if not words or not own_rows:
        return ""
    from bisect import bisect_left

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    own, corpus = doc_freq(own_rows), corpus or doc_freq(own_rows)
    vocab = vocab if vocab is not None else sorted(corpus)  # sorted: a prefix's words are one run (bisect)
    first = {w: i for i, w in enumerate(corpus)} if first is None else first
    expanded, changed = [], False
    for word in words:
        low = word.lower()
        short = len(low) < 2 or low in ENGLISH_STOP_WORDS  # "or", "by", "to" are whole words, not cut short
        cands = []
        i = len(vocab) if short else bisect_left(vocab, low)
        while i < len(vocab) and vocab[i].startswith(low):
            w = vocab[i]
            if corpus[w] >= min_rows and (w == low or w not in ENGLISH_STOP_WORDS):  # "wit" is not "with"
                cands.append(w)
            i += 1
        if not cands:
            expanded.append(word)
            continue
        # remaining ties: the word met first in the corpus (the order of ``corpus``), as measured
        best = max(cands, key=lambda w: (own.get(w, 0), corpus[w], w == low, -first[w]))
        changed |= best != low
        expanded.append(word if best == low else best)
    return " ".join(expanded) if changed else ""


def suggest_label_wording(texts: Sequence[str], text_vecs: np.ndarray, labels: Sequence[Label],
                          label_vecs: np.ndarray, *, scores: np.ndarray | None = None, top_fraction: float = 0.3,
                          n_terms: int = 5, n_examples: int = 3) -> list[LabelSuggestion]:
    """One :class:`LabelSuggestion` per label from the corpus's own confident rows.

    ``scores`` are the zero-shot scores to select rows by (default: cosine to ``label_vecs``, centred per label).
    """
    if len(labels) == 0:
        return []
    if len(texts) == 0:
        return [LabelSuggestion(l.name, is_cryptic(l)) for l in labels]
    s = np.asarray(scores if scores is not None else np.asarray(text_vecs) @ np.asarray(label_vecs).T, dtype=float)
    s = s - s.mean(axis=0, keepdims=True)
    idx, cls = select_confident(s, top_fraction)
    by_label = [idx[cls == j] for j in range(len(labels))]
    own = [{w.lower() for phrase in l.texts() for w in re.split(r"\W+", phrase) if w} for l in labels]
    docs = [[str(texts[i]) for i in rows] for rows in by_label]
    phrases = class_tfidf(docs, n_terms, own, _tokenizer(texts))
    corpus = doc_freq(texts)
    vocab, first = sorted(corpus), {w: i for i, w in enumerate(corpus)}
    out = []
    for lab, rows, ph, doc in zip(labels, by_label, phrases, docs):
        order = rows[np.argsort(-s[rows, labels.index(lab)])] if len(rows) else rows
        cryptic = is_cryptic(lab)
        expansion = expand_abbreviation(lab.phrase, doc, corpus, vocab=vocab, first=first) if cryptic else ""
        out.append(LabelSuggestion(lab.name, cryptic, ph, ", ".join(ph),
                                   [str(texts[i])[:200] for i in order[:n_examples]], len(rows), expansion))
    return out


def apply_suggestions(labels: Sequence[Label], suggestions: Sequence[LabelSuggestion], *,
                      only_cryptic: bool = True) -> list[Label]:
    """The label set with suggested descriptions accepted (labels with a description of their own are kept).

    ``only_cryptic`` (default) changes only the labels :func:`is_cryptic` flags: a label the user already worded
    is theirs.
    """
    by_name = {s.name: s for s in suggestions}
    out = []
    for lab in labels:
        sug = by_name.get(lab.name)
        if sug and sug.description and not lab.description.strip() and (sug.cryptic or not only_cryptic):
            lab = replace(lab, description=f"{lab.phrase}: {sug.description}")
        out.append(lab)
    return out
