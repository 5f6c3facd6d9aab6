"""Embedding-similarity scorer on the real MiniLM and real data slices."""
from __future__ import annotations

import numpy as np
import pytest

from llm_backend.core.errors import TemplateError
from llm_backend.data.labels import Label, make_labels
from llm_backend.evaluation.metrics import evaluate
from llm_backend.models.embedding_cache import CACHE
from llm_backend.scorers.embedding import (
    EmbeddingScorer,
    check_template,
    label_sentences,
    normalise_templates,
)
from llm_backend.scorers.zero_shot import run_scorer
from tests.conftest import stratified


@pytest.fixture(scope="module")
def ag_slice(ag_news):
    return stratified(ag_news, 50, seed=3)  # 200 rows, 4 classes


def test_ag_news_accuracy_well_above_chance(embedder, ag_slice):
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"])
    res = run_scorer(EmbeddingScorer(embedder), ag_slice["text"].tolist(), labels, calibration="none")
    m = evaluate(ag_slice["label"].tolist(), res.pred, res.label_names)
    assert res.raw.shape == (200, 4)
    assert np.all(res.raw <= 1.0 + 1e-5) and np.all(res.raw >= -1.0 - 1e-5)  # cosines
    assert m["accuracy"] > 0.5, m["accuracy"]  # chance is 0.25; published plain MiniLM ≈ 0.50
    assert m["macro_f1"] > 0.45


def test_editing_labels_only_encodes_labels(embedder, ag_slice):
    texts = ag_slice["text"].tolist()[:40]
    scorer = EmbeddingScorer(embedder)
    scorer.score(texts, make_labels(["World", "Sports"]))
    misses = CACHE.misses
    scorer.score(texts, make_labels(["World", "Sports", "Business news"]))
    # 40 text lookups hit the cache; only the new label sentence misses.
    assert CACHE.misses - misses == 1


def test_descriptions_and_phrasings_change_label_vectors(embedder):
    plain = [Label("Sci/Tech")]
    rich = [Label("Sci/Tech", description="science, computers, the internet and technology companies",
                  phrasings=["technology"])]
    scorer = EmbeddingScorer(embedder)
    assert label_sentences(rich[0], scorer.templates) == [
        "This text is about sci and tech.", "This text is about technology.",
        "science, computers, the internet and technology companies"]
    a, b = scorer.label_embeddings(plain), scorer.label_embeddings(rich)
    assert np.isclose(np.linalg.norm(b), 1.0, atol=1e-5)
    assert float(a[0] @ b[0]) < 0.999


def test_templates_validated():
    with pytest.raises(TemplateError, match=r"\{label\}"):
        check_template("This text is about sports.")
    with pytest.raises(TemplateError, match="placeholder other"):
        check_template("{label} in {domain}")
    assert normalise_templates("A {label}.\n\nB {label}.") == ["A {label}.", "B {label}."]
    with pytest.raises(TemplateError):
        EmbeddingScorer.__init__(object.__new__(EmbeddingScorer), None, "no placeholder")  # type: ignore[arg-type]


def test_500_labels_work_with_progress(embedder):
    labels = make_labels([f"topic number {i}" for i in range(500)])
    calls = []
    scores = EmbeddingScorer(embedder).score(["a short text", "another one"], labels,
                                             progress=lambda d, t: calls.append((d, t)))
    assert scores.shape == (2, 500)
    assert calls and calls[-1][0] == calls[-1][1] == 502


def test_prototype_refinement_improves_ag_news(embedder, ag_news):
    """Refinement must beat plain label vectors on real data it was not tuned on (a 240-row AG News slice)."""
    from llm_backend.data.labels import make_labels
    from llm_backend.evaluation.metrics import evaluate
    from llm_backend.scorers.embedding import EmbeddingScorer, refine_label_vectors
    df = stratified(ag_news, 60, seed=11)
    labels = make_labels(sorted(df["label"].unique()))
    names = [l.name for l in labels]
    plain = EmbeddingScorer(embedder, refine=0).score(df["text"].tolist(), labels)
    refined = EmbeddingScorer(embedder, refine=1).score(df["text"].tolist(), labels)
    acc_plain = evaluate(df["label"], [names[i] for i in plain.argmax(1)], names)["accuracy"]
    acc_refined = evaluate(df["label"], [names[i] for i in refined.argmax(1)], names)["accuracy"]
    assert acc_refined >= acc_plain + 0.03, (acc_plain, acc_refined)
    # Tiny inputs are left alone: too few texts to say where a label's texts sit.
    vecs = np.eye(4, dtype=np.float32)
    assert np.array_equal(refine_label_vectors(vecs[:3], vecs, 1), vecs)
