"""Entity-level scores (seqeval, strict IOB2: an entity counts only with its exact span and type), a confusion view by
type, and the sentences with errors.

Both sides are valid IOB2 here (gold is checked when read, predictions are repaired by the tagger), so seqeval's
strict mode and the conlleval convention give the same numbers.
"""
from __future__ import annotations

from typing import Any, Sequence

from llm_backend.core.errors import DataError

from .conll import spans

NONE = "(none)"


def check_tag_sets(gold_types: Sequence[str], model_types: Sequence[str]) -> list[str]:
    """Notes when gold and model types differ; a DataError when they share no type (nothing could be scored)."""
    gold, known = set(gold_types), set(model_types)
    if gold and not gold & known:
        raise DataError(f"The data's entity types ({', '.join(sorted(gold))}) are all unknown to this model, which "
                        f"tags {', '.join(sorted(known))}. Evaluate it on data with the same tag set.")
    notes = []
    if gold - known:
        notes.append(f"Entity types in the data that this model never predicts: {', '.join(sorted(gold - known))}; "
                     "they count as missed entities.")
    if known - gold:
        notes.append(f"The model also tags {', '.join(sorted(known - gold))}, which the data never uses: each such "
                     "prediction counts as a false positive.")
    return notes


def type_confusion(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Gold entity type × predicted entity type over overlapping spans, with ``(none)`` for missed / spurious ones.

    Each gold span is matched to the predicted span it overlaps most (ties: the first); exact-span matches with the
    right type are the diagonal. ``boundary`` counts right-type matches whose span is not exact (seqeval scores those
    as one false negative and one false positive).
    """
    types: set[str] = set()
    counts: dict[tuple[str, str], int] = {}
    boundary: dict[str, int] = {}
    for g_tags, p_tags in zip(gold, pred):
        g_spans, p_spans = spans(g_tags), spans(p_tags)
        used: set[int] = set()
        for g_type, gs, ge in g_spans:
            types.add(g_type)
            best, best_overlap = None, 0
            for j, (_p_type, ps, pe) in enumerate(p_spans):
                overlap = min(ge, pe) - max(gs, ps)
                if overlap > best_overlap and j not in used:
                    best, best_overlap = j, overlap
            if best is None:
                counts[(g_type, NONE)] = counts.get((g_type, NONE), 0) + 1
                continue
            used.add(best)
            p_type, ps, pe = p_spans[best]
            counts[(g_type, p_type)] = counts.get((g_type, p_type), 0) + 1
            if p_type == g_type and (ps, pe) != (gs, ge):
                boundary[g_type] = boundary.get(g_type, 0) + 1
        for j, (p_type, _ps, _pe) in enumerate(p_spans):
            types.add(p_type)
            if j not in used:
                counts[(NONE, p_type)] = counts.get((NONE, p_type), 0) + 1
    labels = sorted(types) + [NONE]
    matrix = [[counts.get((g, p), 0) for p in labels] for g in labels]
    return {"labels": labels, "matrix": matrix, "boundary_errors": boundary}


def error_sentences(tokens: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                    limit: int = 200) -> list[dict[str, Any]]:
    """Sentences whose predicted entities differ from gold: tokens, both tag lists and the differing spans."""
    out = []
    for i, (toks, g, p) in enumerate(zip(tokens, gold, pred)):
        g_spans, p_spans = set(spans(g)), set(spans(p))
        if g_spans == p_spans:
            continue
        out.append({"index": i, "tokens": list(toks), "gold": list(g), "pred": list(p),
                    "missed": sorted(g_spans - p_spans, key=lambda s: s[1]),
                    "spurious": sorted(p_spans - g_spans, key=lambda s: s[1])})
        if len(out) >= limit:
            break
    return out


def evaluate_tags(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                  tokens: Sequence[Sequence[str]] | None = None, error_limit: int = 200) -> dict[str, Any]:
    """Entity-level micro P/R/F1, per-type scores, the type confusion and (with tokens) the error sentences."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise DataError("Gold and predicted tags do not line up (different numbers of sentences or tokens).")
    if not gold:
        raise DataError("There are no sentences to evaluate.")
    gold_l, pred_l = [list(g) for g in gold], [list(p) for p in pred]
    n_gold = sum(len(spans(g)) for g in gold_l)
    n_pred = sum(len(spans(p)) for p in pred_l)
    if n_gold == 0 and n_pred == 0:
        micro = {"precision": 1.0, "recall": 1.0, "f1-score": 1.0}
        report: dict[str, Any] = {}
    else:
        report = classification_report(gold_l, pred_l, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
        micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    per_type = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                    "support": int(v["support"])}
                for k, v in report.items() if k not in ("micro avg", "macro avg", "weighted avg")}
    result: dict[str, Any] = {
        "micro_f1": float(micro["f1-score"]),
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "macro_f1": float(report["macro avg"]["f1-score"]) if "macro avg" in report else float(micro["f1-score"]),
        "per_type": per_type,
        "n_sentences": len(gold_l),
        "n_tokens": sum(len(g) for g in gold_l),
        "n_gold_entities": n_gold,
        "n_pred_entities": n_pred,
        "confusion": type_confusion(gold_l, pred_l),
    }
    if tokens is not None:
        errors = error_sentences(tokens, gold_l, pred_l, error_limit)
        result["errors"] = errors
        result["n_error_sentences"] = sum(1 for g, p in zip(gold_l, pred_l) if set(spans(g)) != set(spans(p)))
    return result
