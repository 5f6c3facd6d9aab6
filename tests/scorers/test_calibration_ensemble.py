"""Calibration and ensembling on real scores (MiniLM on the bundled product reviews and AG News)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llm_backend.core.errors import UserError
from llm_backend.data.files import SAMPLES_DIR
from llm_backend.data.labels import make_labels
from llm_backend.scorers.base import to_probabilities
from llm_backend.scorers.calibration import CONTENT_FREE_INPUTS, calibrate
from llm_backend.scorers.embedding import EmbeddingScorer
from llm_backend.scorers.ensemble import EnsembleScorer, average_probabilities
from llm_backend.scorers.zero_shot import run_scorer
from tests.conftest import stratified


@pytest.fixture(scope="module")
def ag_slice(ag_news):
    return stratified(ag_news, 25, seed=5)


def test_centering_removes_label_means_and_changes_distribution(embedder, ag_slice):
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"])
    scorer = EmbeddingScorer(embedder, "{label}")
    raw = scorer.score(ag_slice["text"].tolist(), labels)
    cal, info = calibrate(raw, "centering")
    assert info.applied == "centering"
    np.testing.assert_allclose(cal.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(info.offsets, raw.mean(axis=0), atol=1e-6)
    before = np.bincount(raw.argmax(1), minlength=4)
    after = np.bincount(cal.argmax(1), minlength=4)
    assert not np.array_equal(before, after)
    # Centering removes a per-label bias exactly: a label that every text scores 0.2 higher on swallows the
    # predictions before calibration and gets back to the unbiased share after it.
    biased = raw.copy()
    biased[:, 1] += 0.2
    assert np.bincount(biased.argmax(1), minlength=4)[1] > before[1]
    cal_biased, _ = calibrate(biased, "centering")
    np.testing.assert_allclose(cal_biased, cal, atol=1e-6)
    assert np.array_equal(np.bincount(cal_biased.argmax(1), minlength=4), after)


def test_contextual_uses_content_free_inputs(embedder):
    labels = make_labels(["positive", "negative", "neutral"])
    scorer = EmbeddingScorer(embedder)
    texts = pd.read_csv(SAMPLES_DIR / "product_reviews.csv")["text"].tolist()[:20]
    raw = scorer.score(texts, labels)
    cal, info = calibrate(raw, "contextual", scorer=scorer, labels=labels)
    expected = scorer.score(list(CONTENT_FREE_INPUTS), labels).mean(axis=0)
    np.testing.assert_allclose(info.offsets, expected, atol=1e-6)
    np.testing.assert_allclose(cal, raw - expected, atol=1e-6)


def test_centering_skipped_on_tiny_corpus():
    scores = np.array([[0.3, 0.2], [0.1, 0.4]])
    cal, info = calibrate(scores, "centering")
    assert info.applied == "none" and "at least" in info.note
    np.testing.assert_array_equal(cal, scores)
    with pytest.raises(UserError, match="Unknown calibration"):
        calibrate(scores, "magic")


def test_ensemble_shape_and_normalisation(embedder, ag_slice):
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"])
    texts = ag_slice["text"].tolist()[:40]
    a, b = EmbeddingScorer(embedder, "This text is about {label}."), EmbeddingScorer(embedder, "{label}")
    ens = EnsembleScorer([a, b], calibration="centering")
    res = run_scorer(ens, texts, labels, calibration="centering")
    assert res.probs.shape == (40, 4)
    np.testing.assert_allclose(res.probs.sum(axis=1), 1.0, atol=1e-6)
    pa = to_probabilities(calibrate(a.score(texts, labels), "centering")[0], "similarity")
    pb = to_probabilities(calibrate(b.score(texts, labels), "centering")[0], "similarity")
    np.testing.assert_allclose(res.probs, (pa + pb) / 2, atol=1e-6)
    assert "centering" in res.calibration.note


def test_average_probabilities_weights():
    p = np.array([[0.9, 0.1]]); q = np.array([[0.1, 0.9]])
    np.testing.assert_allclose(average_probabilities([p, q], [3, 1]), [[0.7, 0.3]])
    with pytest.raises(UserError):
        average_probabilities([p, q], [0, 0])
    with pytest.raises(UserError):
        EnsembleScorer([])
