"""Distillation from the zero-shot embedding teacher into a head student and a truncated MiniLM student."""
from __future__ import annotations

import numpy as np
import pytest

from llm_backend.data.sampler import select_per_class
from llm_backend.scorers.embedding import EmbeddingScorer
from llm_backend.training.distillation import measure_speed, teacher_probabilities
from llm_backend.training.loop import TrainCallbacks, TrainConfig
from llm_backend.training.trained_models import SequenceModel, predict, scorer_for
from llm_backend.training.trainer import train


@pytest.fixture(scope="module")
def data(ag_news):
    idx, _ = select_per_class(ag_news["label"].tolist(), 4, seed=2)
    df = ag_news.iloc[idx]
    rest = ag_news.drop(index=ag_news.index[idx])
    return df["text"].tolist(), df["label"].tolist(), rest["text"].iloc[:24].tolist(), rest.iloc[24:64]


def test_teacher_probabilities_follow_the_class_order(embedder, data):
    probs = teacher_probabilities(EmbeddingScorer(embedder), data[2][:5], ["Business", "Sports"], TrainCallbacks())
    assert probs.shape == (5, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_head_student_learns_from_soft_labels(embedder, data):
    texts, labels, unlabelled, test = data
    teacher = EmbeddingScorer(embedder)
    cfg = TrainConfig(method="distill", student="head", epochs=1, seed=0)
    result = train(texts, labels, cfg, embedder, teacher=teacher, unlabelled=unlabelled)
    assert result.extra["n_unlabelled"] == 24 and result.n_train == 16 + 24
    assert 0.0 <= result.extra["teacher_train_accuracy"] <= 1.0
    pred, _ = predict(result.model, test["text"].tolist())
    assert np.mean([p == g for p, g in zip(pred, test["label"])]) >= 0.5


def test_small_student_is_a_truncated_transformer_and_faster(embedder, data):
    texts, labels, unlabelled, test = data
    teacher = EmbeddingScorer(embedder)
    cfg = TrainConfig(method="distill", student="small", student_layers=2, epochs=1, batch_size=16, seed=0)
    result = train(texts, labels, cfg, embedder, teacher=teacher, unlabelled=unlabelled)
    assert isinstance(result.model, SequenceModel)
    assert result.model.model.config.num_hidden_layers == 2
    assert result.history and result.history[0]["loss"] > 0
    sample = test["text"].tolist()[:32]
    student_speed = measure_speed(scorer_for(result.model), sample, result.classes)
    teacher_speed = measure_speed(teacher, sample, result.classes)
    assert student_speed > 0 and teacher_speed > 0
