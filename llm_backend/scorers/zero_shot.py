"""Running a zero-shot method over a corpus: clean inputs, score, calibrate, decide, explain.

The pages and the CLI both call :func:`run_scorer`, so "what was done" (truncation, calibration, the decision rule)
is decided once and reported the same way everywhere. The analysis helpers answer the questions an analyst asks
after a first run: which labels does the method mix up, what words would separate them, and how do two label sets
or two methods differ on the same texts.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from llm_backend.core.config import get_settings
from llm_backend.core.errors import UserError
from llm_backend.core.progress import Progress
from llm_backend.data.labels import Label, check_label_count, make_labels
from llm_backend.evaluation.metrics import agreement, evaluate, normalise_label
from llm_backend.scorers.base import NONE_LABEL, Decision, Scorer, decide
from llm_backend.scorers.calibration import CalibrationInfo, check_calibration
from llm_backend.scorers.pipeline import independent_probabilities, scored  # noqa: F401 - re-exported for callers

#: Defaults chosen from bench/zero_shot_quality.py (dev slices of AG News and Banking77; see docs/zero-shot.md).
DEFAULT_CALIBRATION = "centering"


def prepare_texts(texts: Iterable[Any], max_chars: int | None = None) -> tuple[list[str], list[str]]:
    """Texts as strings, cut to ``max_chars`` (settings.max_text_chars), with notes saying what was changed.

    Very long texts cost time and memory while models read only their first few hundred tokens anyway.
    """
    limit = max_chars if max_chars is not None else get_settings().max_text_chars
    out: list[str] = []
    cut = empty = 0
    for t in texts:
        s = "" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t)
        if not s.strip():
            empty += 1
        if limit and len(s) > limit:
            s = s[:limit]
            cut += 1
        out.append(s)
    notes = []
    if cut:
        notes.append(f"{cut} text(s) longer than {limit:,} characters were cut to their first {limit:,} characters "
                     "(ZSS_MAX_TEXT_CHARS).")
    if empty:
        notes.append(f"{empty} text(s) are empty; they are scored anyway and usually get the label nearest to "
                     "'nothing'. Treat their predictions as meaningless.")
    return out, notes


def prepare_labels(labels: Iterable[str | Label | dict[str, Any]], multi_label: bool = False) -> list[Label]:
    """Validated labels (no empty set, no duplicates; one label only in multi-label mode)."""
    labs = make_labels(labels)
    check_label_count(labs, multi_label)
    return labs


def gold_coverage(gold: Sequence[object], label_names: Sequence[str]) -> tuple[list[str], int]:
    """Gold values the label set cannot predict, and how many rows carry them."""
    known = {normalise_label(n) for n in label_names}
    counts = Counter(normalise_label(g) for g in gold)
    missing = sorted(k for k in counts if k and k not in known)
    return missing, sum(counts[k] for k in missing)


@dataclass
class ZeroShotResult:
    """Everything one run produced, kept in session state so filters and views never rerun models."""

    method: str
    model: str
    labels: list[Label]
    raw: np.ndarray  # scores as the method returned them
    scores: np.ndarray  # after calibration
    probs: np.ndarray  # row-normalised (single-label) or independent (multi-label) probabilities
    decision: Decision
    calibration: CalibrationInfo
    multi_label: bool = False
    threshold: float = 0.5
    none_below: float | None = None
    templates: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Rows a trained model (or ensemble member) was trained on: excluded from metrics (issue 18: a model trained on
    #: 531 of 600 rows showed 0.970 accuracy instead of the honest 0.797 on the unseen rows).
    trained_rows: np.ndarray | None = None

    @property
    def label_names(self) -> list[str]:
        return [l.name for l in self.labels]

    @property
    def pred(self) -> list[str]:
        return self.decision.labels

    def table(self, texts: Sequence[str]) -> pd.DataFrame:
        """One row per text: prediction, its probability, the margin to the runner-up, and every label's score."""
        df = pd.DataFrame({"text": list(texts), "predicted": self.pred,
                           "score": np.round(self.decision.top_score, 4), "margin": np.round(self.decision.margin, 4)})
        for j, name in enumerate(self.label_names):
            df[f"p({name})"] = np.round(self.probs[:, j], 4)
        return df

    def evaluate(self, gold: Sequence[object]) -> dict[str, Any]:
        """Metrics against gold, on the rows no scorer was trained on (``excluded_trained_rows`` says how many)."""
        names = self.label_names + ([NONE_LABEL] if NONE_LABEL in set(self.pred) else [])
        gold = list(gold)
        excluded = 0
        if self.trained_rows is not None and len(self.trained_rows) == len(gold):
            excluded = int(sum(1 for g, t in zip(gold, self.trained_rows) if t and normalise_label(g)))
            gold = ["" if t else g for g, t in zip(gold, self.trained_rows)]
        if self.multi_label:
            # Multi-label rows are judged on their top label: gold columns hold one label per row.
            pred = [self.label_names[j] for j in np.argmax(self.probs, axis=1)] if len(self.pred) else []
        else:
            pred = self.pred
        out = evaluate(gold, pred, names)
        out["excluded_trained_rows"] = excluded
        return out

    def predictions_state(self, fingerprint: str) -> dict[str, Any]:
        """What the embedding map page reads from ``st.session_state[state.PREDICTIONS]``."""
        return {"method": self.method, "pred": list(self.pred), "probs": self.probs, "labels": self.label_names,
                "fingerprint": fingerprint}

    def describe(self) -> str:
        mode = f"multi-label, threshold {self.threshold:g}" if self.multi_label else "single-label"
        floor = f", 'none of these' below {self.none_below:g}" if self.none_below and not self.multi_label else ""
        cal = self.calibration.applied if self.calibration.applied == self.calibration.requested else \
            f"{self.calibration.applied} ({self.calibration.requested} requested)"
        return f"{self.method} · {self.model} · calibration: {cal} · {mode}{floor} · {self.seconds:.1f}s"


def run_scorer(
    scorer: Scorer,
    texts: Sequence[str],
    labels: Sequence[Label],
    *,
    calibration: str = DEFAULT_CALIBRATION,
    multi_label: bool = False,
    threshold: float = 0.5,
    none_below: float | None = None,
    progress: Progress = None,
    model_name: str = "",
    max_chars: int | None = None,
) -> ZeroShotResult:
    """Score, calibrate, normalise and decide. Inputs are validated here so every caller gets the same messages."""
    start = time.perf_counter()
    calibration = check_calibration(calibration)
    labels = prepare_labels(labels, multi_label)
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"The threshold must be between 0 and 1 (got {threshold}).")
    texts, notes = prepare_texts(texts, max_chars)
    out = scored(scorer, texts, labels, calibration=calibration, multi_label=multi_label, progress=progress)
    raw, scores, probs, info = out.raw, out.scores, out.probs, out.calibration
    notes += [n for n in out.notes if n not in notes]
    if info.note and info.applied != info.requested:
        notes.append(info.note)
    seen = trained_on_rows(scorer, texts)
    if seen is not None and seen.any():
        notes.append(f"{int(seen.sum()):,} of {len(texts):,} rows are texts the trained model learned from: they are "
                     "excluded from accuracy and macro-F1 (their predictions are still shown).")
    decision = decide(probs, [l.name for l in labels], multi_label=multi_label, threshold=threshold,
                      none_below=none_below if (none_below and not multi_label) else None)
    return ZeroShotResult(
        method=scorer.name, model=model_name, labels=list(labels), raw=raw, scores=scores, probs=probs,
        decision=decision, calibration=info, multi_label=multi_label, threshold=threshold, none_below=none_below,
        templates=list(getattr(scorer, "templates", []) or []), notes=notes, seconds=time.perf_counter() - start,
        trained_rows=seen if seen is not None and seen.any() else None)


def trained_on_rows(scorer: Any, texts: Sequence[str]) -> np.ndarray | None:
    """Which texts a trained scorer (or an ensemble's trained member) saw in training, from the text fingerprints
    its folder stores (``train_fingerprints`` in zss_model.json); None when no scorer carries any."""
    from llm_backend.data.dataset import text_fingerprints

    known: set[str] = set()
    for member in [scorer, *list(getattr(scorer, "members", []) or [])]:
        loaded = getattr(member, "loaded", None)
        meta = (getattr(loaded, "extra", None) or {}).get("meta") or {}
        known.update(str(f) for f in meta.get("train_fingerprints") or [])
    if not known:
        return None
    return np.asarray([f in known for f in text_fingerprints(texts)], dtype=bool)


# ---------------------------------------------------------------- analysis: confusable labels and better words


def label_similarity(label_vectors: np.ndarray) -> np.ndarray:
    """Cosine between label embeddings (rows are unit vectors)."""
    return np.clip(label_vectors @ label_vectors.T, -1.0, 1.0)


def confusable_pairs(
    label_names: Sequence[str],
    similarity: np.ndarray | None = None,
    metrics: dict[str, Any] | None = None,
    *,
    close_cosine: float = 0.8,
    top: int = 10,
) -> pd.DataFrame:
    """Label pairs worth a second look: very close label embeddings, or mixed up most in the confusion matrix.

    ``metrics`` is :func:`llm_backend.evaluation.metrics.evaluate` output; its confusion counts both directions of a mix-up,
    divided by the two classes' gold support, so a pair of small classes that always swap ranks high.
    """
    names = list(label_names)
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def _row(a: str, b: str) -> dict[str, Any]:
        key = tuple(sorted((a, b)))
        return rows.setdefault(key, {"label_a": key[0], "label_b": key[1], "label_cosine": np.nan,
                                     "confused_rows": 0, "confusion_rate": 0.0, "reasons": []})

    if similarity is not None and len(names) > 1:
        sim = np.asarray(similarity)
        iu = np.triu_indices(len(names), k=1)
        vals = sim[iu]
        order = np.argsort(-vals)[: max(top, 1)]
        for o in order:
            i, j = iu[0][o], iu[1][o]
            r = _row(names[i], names[j])
            r["label_cosine"] = float(vals[o])
            if vals[o] >= close_cosine:
                r["reasons"].append("label meanings very close")
    if metrics and metrics.get("confusion"):
        mlabels = metrics["labels"]
        cm = np.asarray(metrics["confusion"], dtype=float)
        support = cm.sum(axis=1)
        pairs = []
        for i in range(len(mlabels)):
            for j in range(i + 1, len(mlabels)):
                mixed = cm[i, j] + cm[j, i]
                if mixed > 0:
                    rate = mixed / max(support[i] + support[j], 1.0)
                    pairs.append((rate, mixed, mlabels[i], mlabels[j]))
        for rate, mixed, a, b in sorted(pairs, reverse=True)[:top]:
            r = _row(a, b)
            r["confused_rows"] = int(mixed)
            r["confusion_rate"] = round(float(rate), 4)
            r["reasons"].append("often confused")
        if similarity is not None:  # fill cosines for confusion-only pairs
            idx = {n: i for i, n in enumerate(names)}
            for r in rows.values():
                if np.isnan(r["label_cosine"]) and r["label_a"] in idx and r["label_b"] in idx:
                    r["label_cosine"] = float(np.asarray(similarity)[idx[r["label_a"]], idx[r["label_b"]]])
    df = pd.DataFrame(list(rows.values()), columns=["label_a", "label_b", "label_cosine", "confused_rows",
                                                     "confusion_rate", "reasons"])
    if df.empty:
        return df
    df["reasons"] = df["reasons"].map(lambda rs: ", ".join(rs) if rs else "close (top pair)")
    df["label_cosine"] = df["label_cosine"].round(4)
    return df.sort_values(["confusion_rate", "label_cosine"], ascending=False).head(top).reset_index(drop=True)


# ---------------------------------------------------------------- comparing two runs


def compare_results(a: ZeroShotResult, b: ZeroShotResult, texts: Sequence[str],
                    gold: Sequence[object] | None = None) -> dict[str, Any]:
    """Agreement, both runs' metrics (with gold), and the rows where the two predictions differ."""
    if len(a.pred) != len(b.pred):
        raise ValueError("the two runs were made on different texts")
    diff = [i for i, (x, y) in enumerate(zip(a.pred, b.pred)) if normalise_label(x) != normalise_label(y)]
    rows = pd.DataFrame({"row": diff, "text": [texts[i] for i in diff], "A": [a.pred[i] for i in diff],
                         "A score": np.round(a.decision.top_score[diff], 4) if diff else [],
                         "B": [b.pred[i] for i in diff],
                         "B score": np.round(b.decision.top_score[diff], 4) if diff else []})
    out: dict[str, Any] = {"agreement": agreement(a.pred, b.pred), "n_differ": len(diff), "differ": rows}
    if gold is not None:
        rows["gold"] = [normalise_label(gold[i]) for i in diff]
        out["metrics_a"] = a.evaluate(gold)
        out["metrics_b"] = b.evaluate(gold)
    return out


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Per-class precision/recall/F1/support as a frame for display."""
    return pd.DataFrame([{"label": k, **v} for k, v in metrics.get("per_class", {}).items()])


# ---------------------------------------------------------------- label sets as editable tables


def labels_to_frame(labels: Sequence[Label]) -> pd.DataFrame:
    """The label editor's table: phrasings joined with '; ' so they fit one cell; ``reads as`` is the phrase that
    stands for the name in the model's sentences (the wording help's spelled-out name, "" = the name itself)."""
    return pd.DataFrame({"name": [l.name for l in labels], "reads as": [l.display for l in labels],
                         "description": [l.description for l in labels],
                         "phrasings": ["; ".join(l.phrasings) for l in labels]},
                        columns=["name", "reads as", "description", "phrasings"])


def labels_from_frame(df: pd.DataFrame) -> list[Label]:
    """Labels from the editor's table; blank rows are ignored, the rest validated by make_labels."""

    def cell(rec: dict, key: str) -> str:
        v = rec.get(key)
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)

    items = []
    for rec in df.to_dict("records"):
        name = rec.get("name")
        if name is None or (isinstance(name, float) and np.isnan(name)) or not str(name).strip():
            continue
        items.append({"name": str(name).strip(), "description": cell(rec, "description"),
                      "phrasings": cell(rec, "phrasings"), "display": cell(rec, "reads as")})
    return make_labels(items)


def confusable_report(embedding_scorer: Any, texts: Sequence[str], result: ZeroShotResult,
                      metrics: dict[str, Any] | None = None, progress: Progress = None) -> dict[str, Any]:
    """Close label pairs (embedding cosine and confusion): one call for the page and scripts.
    ``embedding_scorer`` is an :class:`~llm_backend.scorers.embedding.EmbeddingScorer`. Wording suggestions for the
    labels are :func:`llm_backend.scorers.wording_help.wording_help` (with the effect of accepting them)."""
    label_vecs = embedding_scorer.label_embeddings(result.labels, progress=progress)
    return {"pairs": confusable_pairs(result.label_names, label_similarity(label_vecs), metrics)}
