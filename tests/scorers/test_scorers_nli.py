"""NLI scorer plumbing on a tiny randomly initialised NLI model built here (no NLI model ships offline).

Random weights say nothing about quality, but they exercise everything that matters for correctness: finding the
entailment id, pairing texts with hypotheses, batching by length, and both decision rules. The reference is the
transformers zero-shot-classification pipeline on the same model: same numbers, and ours must be faster.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from llm_backend.core.errors import ModelError
from llm_backend.data.labels import make_labels
from llm_backend.models.loading import load_model
from llm_backend.models.registry import resolve_location, spec_from_folder
from llm_backend.scorers.factory import make_scorer
from llm_backend.scorers.nli import NLIScorer, nli_label_ids
from llm_backend.scorers.zero_shot import run_scorer

TEXTS = [
    "The central bank raised interest rates again to fight inflation.",
    "A late goal gave the home side the championship.",
    "Researchers released a new open-source compiler for quantum chips.",
    "Flooding forced thousands to leave their homes near the river.",
    "ok",
    "The quarterly report showed record profits, and shares climbed in early trading on the news, "
    "while analysts warned that the supply chain problems of last year could return.",
] * 2
LABELS = make_labels(["World", "Sports", "Business", "Sci/Tech"])


def _tiny_model(folder, registry, id2label):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(resolve_location(registry.default("embedder")))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, id2label=id2label,
                        label2id={v: k for k, v in id2label.items()}, architectures=["BertForSequenceClassification"])
    BertForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory, registry):
    folder = _tiny_model(tmp_path_factory.mktemp("tiny_nli"), registry,
                         {0: "entailment", 1: "neutral", 2: "contradiction"})
    spec = spec_from_folder(folder)
    assert spec.role == "nli"
    return load_model(spec)


def test_entailment_ids_from_config(tiny_nli):
    assert nli_label_ids(tiny_nli.model.config) == (0, 2)


def test_matches_pipeline_and_is_faster(tiny_nli):
    from transformers import pipeline

    pipe = pipeline("zero-shot-classification", model=tiny_nli.model, tokenizer=tiny_nli.tokenizer, device=-1)
    names = [l.phrase for l in LABELS]
    scorer = NLIScorer(tiny_nli, "This text is about {label}.")

    t0 = time.perf_counter()
    ref = pipe(TEXTS, candidate_labels=names, hypothesis_template="This text is about {}.")
    t_pipe = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = run_scorer(scorer, TEXTS, LABELS, calibration="none")
    t_ours = time.perf_counter() - t0
    ref_probs = np.array([[r["scores"][r["labels"].index(n)] for n in names] for r in ref])
    np.testing.assert_allclose(single.probs, ref_probs, atol=1e-4)

    ref_multi = pipe(TEXTS, candidate_labels=names, hypothesis_template="This text is about {}.", multi_label=True)
    multi = run_scorer(scorer, TEXTS, LABELS, calibration="none", multi_label=True, threshold=0.5)
    ref_mprobs = np.array([[r["scores"][r["labels"].index(n)] for n in names] for r in ref_multi])
    np.testing.assert_allclose(multi.probs, ref_mprobs, atol=1e-4)
    assert multi.decision.chosen == [[n for n, p in zip(multi.label_names, row) if p >= 0.5] for row in ref_mprobs]
    print(f"pipeline {t_pipe:.3f}s, ours {t_ours:.3f}s ({t_pipe / t_ours:.1f}x)")
    assert t_ours < t_pipe


def test_factory_builds_nli_and_calibrations_run(tiny_nli):
    scorer = make_scorer("nli", tiny_nli, templates=["This text is about {label}.", "{label}"])
    assert isinstance(scorer, NLIScorer) and scorer.kind == "logit"
    for cal in ("centering", "contextual"):
        res = run_scorer(scorer, TEXTS, LABELS, calibration=cal)
        assert res.calibration.applied == cal
        assert res.probs.shape == (len(TEXTS), 4)
        np.testing.assert_allclose(res.probs.sum(axis=1), 1.0, atol=1e-6)


def test_model_without_entailment_label_fails_clearly(tmp_path, registry):
    folder = _tiny_model(tmp_path / "sentiment", registry, {0: "negative", 1: "positive"})
    loaded = load_model(spec_from_folder(folder, role="nli"))
    with pytest.raises(ModelError, match="entailment"):
        NLIScorer(loaded)
