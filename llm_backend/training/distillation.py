"""Distillation: a slow or label-hungry teacher labels unlabelled rows softly, a small fast student learns from them.

The teacher is any Scorer (the zero-shot embedding scorer, an NLI or LLM scorer, or a trained model via
:class:`~llm_backend.training.trained_models.TrainedScorer`). It scores the unlabelled rows plus the few gold rows; its
probabilities are the student's soft targets. The loss is KL(teacher ‖ student) on every row plus
``distill_lambda`` × cross-entropy on the gold rows, so the few real labels can correct the teacher where it is wrong.

Students:

* ``small`` — the embedder's transformer cut to its first ``student_layers`` layers with a classification head; it
  runs about ``6 / student_layers`` times faster than the full MiniLM per text.
* ``head`` — a linear layer on the frozen embeddings, trained on the soft targets with full-batch AdamW: the
  cheapest student, and as fast as embedding the text.
"""
from __future__ import annotations

import itertools
import time
from typing import Any, Sequence

import numpy as np

from llm_backend.core.device import DeviceInfo
from llm_backend.core.errors import TrainingError
from llm_backend.core.progress import report
from llm_backend.data.labels import make_labels
from llm_backend.data.sampler import TrainingSet, split_validation
from llm_backend.models.embedding_cache import embed_texts
from llm_backend.models.loaded import LoadedModel
from llm_backend.models.registry import resolve_location
from llm_backend.scorers.base import Scorer, to_probabilities
from llm_backend.training.loop import (
    TrainCallbacks,
    TrainConfig,
    TrainResult,
    emit,
    fit_sequence_model,
    load_sequence_base,
    val_metrics,
)
from llm_backend.training.trained_models import EmbeddingHeadModel

_SPEED_CALLS = itertools.count(1)


def teacher_probabilities(teacher: Scorer, texts: Sequence[str], classes: Sequence[str], cb: TrainCallbacks,
                          temperature: float | None = None) -> np.ndarray:
    """(n, k) teacher distribution over ``classes`` in that order."""
    labels = make_labels(list(classes))
    cb.status(f"Teacher ({getattr(teacher, 'name', 'scorer')}) is labelling {len(texts)} rows")
    scores = teacher.score(list(texts), labels, progress=cb.progress)
    probs = to_probabilities(np.asarray(scores), teacher.kind, temperature)
    if not np.isfinite(probs).all():
        raise TrainingError("The teacher returned invalid scores (NaN or infinite); choose another teacher.")
    return probs.astype(np.float32)


def _train_head_student(texts: list[str], y: np.ndarray, soft: np.ndarray, data: TrainingSet, cfg: TrainConfig,
                        embedder: LoadedModel, cb: TrainCallbacks, val: tuple[list[str], np.ndarray],
                        result: TrainResult, start: float) -> EmbeddingHeadModel:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(cfg.seed)
    emb = torch.as_tensor(embed_texts(embedder, texts))
    k = len(data.classes)
    layer = torch.nn.Linear(emb.shape[1], k)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-2, weight_decay=cfg.weight_decay)
    soft_t, y_t = torch.as_tensor(soft), torch.as_tensor(y, dtype=torch.long)
    gold = y_t >= 0
    steps = 100
    total = steps * cfg.epochs
    model = EmbeddingHeadModel(embedder, np.zeros((k, emb.shape[1])), np.zeros(k), data.classes, body_is_base=True)
    for epoch in range(1, cfg.epochs + 1):
        losses = []
        for s in range(steps):
            if cb.stop_requested():
                result.stopped = True
                break
            # Logits scaled by 20: unit-length embeddings give tiny raw logits, too flat to match a confident teacher.
            logits = layer(emb) * 20.0
            loss = F.kl_div(F.log_softmax(logits, -1), soft_t, reduction="batchmean")
            if bool(gold.any()):
                loss = loss + cfg.distill_lambda * F.cross_entropy(logits[gold], y_t[gold])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            report(cb.progress, (epoch - 1) * steps + s + 1, total)
        model.weight = (layer.weight.detach().numpy() * 20.0).astype(np.float32)
        model.bias = (layer.bias.detach().numpy() * 20.0).astype(np.float32)
        row: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None,
                               "elapsed_s": time.perf_counter() - start, **val_metrics(model, val[0], val[1], data.classes)}
        emit(result.history, row, cb)
        if result.stopped:
            break
    return model


def distill(data: TrainingSet, unlabelled: list[str], teacher: Scorer, cfg: TrainConfig, embedder: LoadedModel,
            cb: TrainCallbacks, device: DeviceInfo) -> TrainResult:
    """Train a student on the teacher's soft labels for ``unlabelled`` plus the gold rows of ``data``."""
    start = time.perf_counter()
    if cfg.student not in ("small", "head"):
        raise TrainingError(f"Unknown student '{cfg.student}': choose 'small' or 'head'.")
    y = data.y
    tr, va = split_validation(y, cfg.val_fraction, cfg.seed)
    gold_texts = [data.texts[i] for i in tr]
    unl = [str(t) for t in unlabelled if str(t).strip()]
    if not unl:
        data.notes.append("No unlabelled rows were given: the student learns from the teacher's view of the gold rows.")
    texts = gold_texts + unl
    y_all = np.concatenate([y[tr], np.full(len(unl), -1, dtype=np.int64)])
    soft = teacher_probabilities(teacher, texts, data.classes, cb, cfg.teacher_temperature)
    teacher_agrees = float(np.mean(soft[: len(tr)].argmax(axis=1) == y[tr])) if len(tr) else float("nan")
    result = TrainResult(None, "distill", data.classes, cfg, n_train=len(texts), n_val=len(va))  # type: ignore[arg-type]
    result.extra.update(teacher=str(getattr(teacher, "name", type(teacher).__name__)), student=cfg.student,
                        n_unlabelled=len(unl), teacher_train_accuracy=teacher_agrees)
    result.notes.append(f"The teacher agrees with {100 * teacher_agrees:.0f}% of the gold training labels.")
    val = ([data.texts[i] for i in va], y[va])
    cb.status("Training the student")
    if cfg.student == "head":
        result.model = _train_head_student(texts, y_all, soft, data, cfg, embedder, cb, val, result, start)
    else:
        model, tok = load_sequence_base(resolve_location(embedder.spec), len(data.classes), device,
                                        num_layers=cfg.student_layers)
        result.extra["student_layers"] = cfg.student_layers
        result.model = fit_sequence_model(model, tok, texts, y_all, data.classes, cfg, cb, device, soft=soft,
                                          val_texts=val[0], val_y=val[1] if len(va) else None, result=result,
                                          start=start)
    return result


def measure_speed(scorer: Scorer, texts: Sequence[str], classes: Sequence[str], repeats: int = 1) -> float:
    """Texts per second of ``scorer`` on ``texts``, with the embedding cache defeated.

    Both teacher and student may embed through the shared cache, which would time a dictionary lookup; a suffix unique
    to each call changes the cache key and adds one or two tokens, so each model does its full work.
    """
    labels = make_labels(list(classes))
    salt = next(_SPEED_CALLS)  # a new suffix per call: the teacher must not reuse the student's cached vectors
    fresh = [f"{t}{' ' * (r + 1)}\u200b{salt}" for r in range(repeats) for t in texts]
    begin = time.perf_counter()
    scorer.score(fresh, labels)
    elapsed = time.perf_counter() - begin
    return len(fresh) / elapsed if elapsed > 0 else float("inf")
