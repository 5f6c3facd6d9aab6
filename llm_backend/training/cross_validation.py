"""Cross-validation for label sets too small for a held-out split (issue 18: 69 test rows could not measure 33 of
77 classes). Every labelled row is predicted once by a model that did not train on it, so every class with at least
``folds`` rows gets a measured recall/F1. Uses scikit-learn's StratifiedKFold; page and scripts call the same job.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from llm_backend.core.errors import TrainingError


def cross_validate_job(texts: Sequence[str], labels: Sequence[str], config: Any, embedder: Any,
                       folds: int = 5, label_set: Any = None) -> Callable[[Any], dict[str, Any]]:
    """A job (``job(callbacks) -> metrics``) that trains ``folds`` models and evaluates their pooled predictions."""
    from sklearn.model_selection import StratifiedKFold

    from llm_backend.evaluation.metrics import evaluate
    from llm_backend.training.trained_models import predict
    from llm_backend.training.loop import TrainCallbacks
    from llm_backend.training.trainer import train

    idx = [i for i, l in enumerate(labels) if l]
    y = [labels[i] for i in idx]
    counts = {c: y.count(c) for c in set(y)}
    usable = [i for i, l in zip(idx, y) if counts[l] >= folds]
    if len({labels[i] for i in usable}) < 2:
        raise TrainingError(f"Cross-validation needs at least two classes with {folds} or more labelled rows.")
    skipped = sorted(c for c, n in counts.items() if n < folds)

    def job(cb: TrainCallbacks) -> dict[str, Any]:
        pred = [""] * len(usable)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=getattr(config, "seed", 0))
        yu = [labels[i] for i in usable]
        for f, (tr, te) in enumerate(splitter.split(np.zeros(len(usable)), yu)):
            if cb.stop_requested():
                raise TrainingError("Cross-validation stopped.")
            cb.status(f"Fold {f + 1} of {folds}")
            res = train([texts[usable[i]] for i in tr], [yu[i] for i in tr], config, embedder,
                        TrainCallbacks(should_stop=cb.should_stop), label_set=label_set)
            fold_pred, _ = predict(res.model, [texts[usable[i]] for i in te])
            for i, p in zip(te, fold_pred):
                pred[i] = p
            if cb.progress:
                cb.progress(f + 1, folds)
        out = evaluate(yu, pred, sorted(set(yu)))
        out.update({"folds": folds, "skipped_classes": skipped})
        return out

    return job
