"""Label wording suggestions from the corpus (c-TF-IDF of each label's confident rows): real MiniLM and data."""
from __future__ import annotations

import pandas as pd
import pytest

from llm_backend.data.labels import Label, make_labels
from llm_backend.scorers.embedding import EmbeddingScorer
from llm_backend.scorers.label_suggestions import (
    apply_suggestions,
    is_cryptic,
    suggest_label_wording,
)
from tests.conftest import SHARED_DATA, stratified


def test_is_cryptic():
    assert is_cryptic(Label("POS"))
    assert is_cryptic(Label("card_arrival"))
    assert is_cryptic(Label("Sports"))
    assert not is_cryptic(Label("lost or stolen card"))
    assert not is_cryptic(Label("POS", description="point-of-sale terminal payments"))
    assert not is_cryptic(Label("POS", phrasings=["card payment in a shop"]))


def test_suggestions_come_from_each_labels_rows(embedder, ag_news):
    df = stratified(ag_news, 60, seed=2)
    texts = df["text"].tolist()
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"] + [{"name": "Golf", "description": "golf"}])
    scorer = EmbeddingScorer(embedder)
    vecs = scorer.text_embeddings(texts)
    sugg = suggest_label_wording(texts, vecs, labels, scorer.label_embeddings(labels))
    by = {s.name: s for s in sugg}
    lowered = [t.lower() for t in texts]
    for name in ["World", "Sports", "Business", "Sci/Tech"]:
        s = by[name]
        assert s.cryptic and s.phrases and s.n_rows > 0, s
        assert name.lower() not in s.phrases  # the label's own word is no news
        # every phrase really occurs in the corpus (at least twice among the label's rows)
        assert all(sum(p in t for t in lowered) >= 2 for p in s.phrases), s.phrases  # in 2+ rows
    # different labels get different words
    assert set(by["Sports"].phrases) != set(by["Business"].phrases)
    accepted = apply_suggestions(labels, sugg)
    assert accepted[1].description.startswith("sports: ")
    assert accepted[4].description == "golf"  # a label the user described is left alone


def test_chinese_rows_are_cut_into_words(embedder):
    path = SHARED_DATA / "ecdt_train.csv"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    df = pd.read_csv(path).groupby("label").head(15)
    texts = df["text"].astype(str).tolist()
    labels = make_labels(sorted(df["label"].astype(str).unique()))
    # Use the gold rows as "confident" scores so this checks only the tokenisation path.
    classes = [l.name for l in labels]
    import numpy as np

    scores = np.zeros((len(texts), len(labels)))
    scores[np.arange(len(texts)), [classes.index(v) for v in df["label"].astype(str)]] = 1.0
    sugg = suggest_label_wording(texts, np.zeros((len(texts), 2)), labels, np.zeros((len(labels), 2)),
                                 scores=scores, top_fraction=1.0)
    phrases = [p for s in sugg for p in s.phrases]
    assert phrases
    assert max(len(p.replace(" ", "")) for p in phrases) <= 8  # words and word pairs, not whole requests


def _banking77() -> pd.DataFrame:
    path = SHARED_DATA / "banking77_train.csv"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return pd.read_csv(path).rename(columns={"category": "label"})


def test_cut_short_words_are_spelled_out_from_the_rows():
    from llm_backend.scorers.label_suggestions import doc_freq, expand_abbreviation

    df = _banking77()
    corpus = doc_freq(stratified(df, 20, seed=1)["text"].tolist())
    own = df[df["label"] == "card_arrival"]["text"].head(30).tolist()
    spelled = expand_abbreviation("car arr", own, corpus)  # "card_arrival" cut to 3 letters a word
    assert spelled.split()[0] == "card" and spelled.split()[1].startswith("arriv"), spelled
    # whole words and stop words are not cut-short words: nothing to spell out
    assert expand_abbreviation("top up", df[df["label"] == "top_up_failed"]["text"].head(30).tolist(), corpus) == ""
    lost = expand_abbreviation("los or sto car", df[df["label"] == "lost_or_stolen_card"]["text"].head(30).tolist(),
                               corpus)
    assert lost.split()[1] == "or" and lost.split()[0].startswith("lost") and lost.split()[3] == "card", lost
    assert expand_abbreviation("car arr", [], corpus) == ""


def test_suggestions_spell_out_cryptic_names_only(embedder):
    df = stratified(_banking77(), 12, seed=3)
    df = df[df["label"].isin(["card_arrival", "change_pin", "exchange_rate", "pending_transfer", "top_up_failed"])]
    short = {"card_arrival": "car_arr", "change_pin": "cha_pin", "exchange_rate": "exc_rat",
             "pending_transfer": "pen_tra", "top_up_failed": "top_up_fai"}
    texts = df["text"].tolist()
    labels = make_labels(list(short.values()) + [{"name": "pin", "description": "my card's PIN"}])
    scorer = EmbeddingScorer(embedder)
    sugg = suggest_label_wording(texts, scorer.text_embeddings(texts), labels, scorer.label_embeddings(labels))
    spelled = {s.name: s.expansion for s in sugg}
    assert spelled["pin"] == ""  # described by the user: not cryptic, never rewritten
    done = [n for n in short.values() if spelled[n]]
    assert len(done) >= 3, spelled
    for name in done:  # every word keeps its letters: a completion, never a different word
        assert all(w.startswith(c) for w, c in zip(spelled[name].split(), Label(name).phrase.split())), spelled
