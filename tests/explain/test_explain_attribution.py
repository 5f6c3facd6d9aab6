"""Word attributions on real models and real rows: faithful (deletion test), batched, honest about bad input."""
from __future__ import annotations

import numpy as np
import pytest

from llm_backend.models import embedding_cache
from llm_backend.core.errors import LabelError, UserError
from llm_backend.explain.explainer import explain_text
from llm_backend.explain.faithfulness import deletion_test, summarise
from llm_backend.explain.scoring import probability_function
from llm_backend.explain.words import remove_words
from llm_backend.data.labels import make_labels
from llm_backend.scorers.base import to_probabilities
from llm_backend.scorers.embedding import EmbeddingScorer
from tests.conftest import stratified

AG_LABELS = make_labels(["World", "Sports", "Business", "Sci/Tech"])


def _deletion(scorer, texts, labels, corpus, k=2, method="auto"):
    prob_fn = probability_function(scorer, labels, corpus)
    rng = np.random.default_rng(0)
    return summarise([deletion_test(explain_text(scorer, t, labels, method=method, corpus=corpus), prob_fn, k,
                                    rng=rng) for t in texts])


def test_embedding_occlusion_is_faithful_on_real_rows(embedder, ag_news):
    texts = stratified(ag_news, 5, seed=3)["text"].tolist()  # 20 held-out-style rows, 5 per class
    scorer = EmbeddingScorer(embedder)
    s = _deletion(scorer, texts, AG_LABELS, texts)
    assert s["n"] == 20
    assert s["mean_drop_top"] > 2 * s["mean_drop_random"]
    assert s["share_top_beats_random"] >= 0.75


def test_occlusion_scores_all_variants_in_one_encode_call(embedder, ag_news, monkeypatch):
    scorer = EmbeddingScorer(embedder)
    text = ag_news["text"].iloc[11]
    scorer.label_embeddings(AG_LABELS)  # label sentences cached, as after any run
    calls = []
    real = embedding_cache.encode_uncached
    monkeypatch.setattr(embedding_cache, "encode_uncached",
                        lambda model, texts, **kw: calls.append(len(texts)) or real(model, texts, **kw))
    attr = explain_text(scorer, text, AG_LABELS)
    assert len(calls) == 1 and calls[0] == len(attr.words) + 1
    # The explained probabilities are the scorer's own for this text (refinement off: no corpus).
    plain = to_probabilities(EmbeddingScorer(embedder, refine=0).score([text], AG_LABELS), "similarity")[0]
    assert np.allclose([attr.probabilities[l.name] for l in AG_LABELS], plain, atol=1e-5)
    assert attr.method == "occlusion" and attr.label == AG_LABELS[int(plain.argmax())].name


def test_bad_input_is_said_plainly(embedder, ag_news):
    scorer = EmbeddingScorer(embedder)
    one = explain_text(scorer, "  Stocks!  ", AG_LABELS)
    assert one.method == "none" and len(one.words) == 1 and not one.weights.any()
    assert any("nothing to attribute" in n for n in one.notes)
    fallback = explain_text(scorer, ag_news["text"].iloc[0], AG_LABELS, method="integrated_gradients")
    assert fallback.method == "occlusion"
    assert any("not available" in n and "occlusion was used" in n for n in fallback.notes)
    long_text = " ".join(ag_news["text"].iloc[:6]) + " The end of this text is never read."  # past 256 tokens
    cut = explain_text(scorer, long_text, AG_LABELS, label="Sports")
    assert len(cut.scored_text) < len(long_text) and long_text.startswith(cut.scored_text)
    assert any("only the first" in n for n in cut.notes)
    assert all(w.end <= len(cut.scored_text) for w in cut.words) and cut.label == "Sports"
    with pytest.raises(UserError):
        explain_text(scorer, "   ", AG_LABELS)
    with pytest.raises(LabelError):
        explain_text(scorer, "a text", AG_LABELS[:1])
    with pytest.raises(LabelError):
        explain_text(scorer, "a text here", AG_LABELS, label="Weather")


def test_lm_gradients_explain_the_scorers_own_probability(causal_lm, ag_news):
    """Gradient × input on SmolLM2 (on request): the method is named, one finite weight per word of the text (none
    for the prompt), and the explained probabilities are the scorer's own. ``auto`` is occlusion for the LM (gradient
    × input measured not faithful there): its weights are real drops of the label when a word is left out. (The
    deletion-test figures are a bench/ job: too slow here.)"""
    from llm_backend.scorers.lm import LMVerbalizerScorer

    scorer = LMVerbalizerScorer(causal_lm)
    text = stratified(ag_news, 1, seed=5)["text"].iloc[1]
    attr = explain_text(scorer, text, AG_LABELS, method="gradient_x_input")
    assert attr.method == "gradient_x_input" and attr.scored_text.strip() == text.strip()
    assert len(attr.weights) == len(attr.words) and np.isfinite(attr.weights).all() and np.abs(attr.weights).sum() > 0
    plain = to_probabilities(scorer.score([text], AG_LABELS), "logprob")[0]
    assert np.allclose([attr.probabilities[l.name] for l in AG_LABELS], plain, atol=1e-6)
    short = " ".join(text.split()[:4])  # occlusion scores the prompt once per word: a short text keeps it quick
    occ = explain_text(scorer, short, AG_LABELS)
    assert occ.method == "occlusion" and occ.method_title.startswith("Occlusion")
    assert len(occ.weights) == len(occ.words) >= 2 and np.isfinite(occ.weights).all()
    j = [l.name for l in AG_LABELS].index(occ.label)
    without = to_probabilities(scorer.score([remove_words(short, occ.words, [0])], AG_LABELS), "logprob")[0]
    assert occ.weights[0] == pytest.approx(occ.probability - without[j], abs=1e-5)


def test_nli_gradients_plumbing_on_a_tiny_nli_model(tmp_path, registry):
    """Random weights say nothing about quality; they check pairing, the per-label target and truncation."""
    from llm_backend.models.loading import load_model
    from llm_backend.models.registry import spec_from_folder
    from llm_backend.scorers.nli import NLIScorer
    from tests.scorers.test_scorers_nli import _tiny_model

    folder = _tiny_model(tmp_path / "nli", registry, {0: "entailment", 1: "neutral", 2: "contradiction"})
    scorer = NLIScorer(load_model(spec_from_folder(folder)), max_length=48)
    text = "The central bank raised interest rates again to fight inflation."
    attr = explain_text(scorer, text, AG_LABELS, label="Business", method="integrated_gradients", n_steps=8)
    assert attr.method == "integrated_gradients" and attr.label == "Business"
    assert len(attr.weights) == len(attr.words) == 10 and np.abs(attr.weights).sum() > 0
    plain = to_probabilities(scorer.score([text], AG_LABELS), "logit")[0]
    assert np.allclose([attr.probabilities[l.name] for l in AG_LABELS], plain, atol=1e-5)
    long = explain_text(scorer, " ".join([text] * 10), AG_LABELS, method="gradient_x_input")
    assert long.method == "gradient_x_input" and any("only the first" in n for n in long.notes)
    assert 0 < len(long.scored_text) < len(text) * 5


def test_sequence_classifier_gradients_use_the_model_classes(embedder):
    """A MiniLM sequence classifier as the fine-tune runs build it (head untrained here: plumbing, not quality)."""
    from llm_backend.core.device import pick_device
    from llm_backend.models.registry import resolve_location
    from llm_backend.training.trained_models import SequenceModel, scorer_for
    from llm_backend.training.trainer import load_sequence_base

    device = pick_device()
    net, tok = load_sequence_base(resolve_location(embedder.spec), 4, device)
    scorer = scorer_for(SequenceModel(net.eval(), tok, [l.name for l in AG_LABELS], device, max_length=32))
    text = "Oil prices climbed as the central bank kept interest rates unchanged this week."
    attr = explain_text(scorer, text, AG_LABELS, method="gradient_x_input")
    assert attr.method == "gradient_x_input" and np.isfinite(attr.weights).all() and np.abs(attr.weights).sum() > 0
    assert explain_text(scorer, text, AG_LABELS).method == "occlusion"  # auto: occlusion for encoders (measured)
    plain = to_probabilities(scorer.score([text], AG_LABELS), "logit")[0]
    assert np.allclose([attr.probabilities[l.name] for l in AG_LABELS], plain, atol=1e-5)
    long = explain_text(scorer, text * 4, AG_LABELS, method="occlusion")
    assert long.method == "occlusion" and any("only the first" in n for n in long.notes)
