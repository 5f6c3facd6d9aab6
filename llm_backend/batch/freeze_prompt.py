"""Freezing a prompt-template run (prompt page / ``prompt --mode score`` / ``freeze --template-file``) into a frozen
classifier whose component is scored by :class:`llm_backend.batch.frozen_prompt.PromptScorer`.

Limits, each refused with a message (the page shows it next to a disabled button, :func:`export_problem`): only the
``score`` mode (cloze and generate are not frozen); random demonstrations only (nearest-neighbour ones are chosen
per row from the corpus); templates may use the text and the reserved names but no other column (``batch`` reads
the text column only); a run stopped before its end is not frozen.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from llm_backend.batch.frozen import (
    ClassifierError,
    ClassifierRunner,
    Component,
    FrozenClassifier,
    _model_ref,
    corpus_fingerprint,
)
from llm_backend.batch.frozen_prompt import PromptFreezeError, PromptSetup, check_template_columns, parse_prompt
from llm_backend.core.progress import Progress, report

#: Rows of the prototyping corpus re-scored by the frozen classifier at freeze time (an LM pass each).
CHECK_ROWS = 8
#: Probability tolerance of that check: the frozen path shares the run's prompt prefix and tokens; only batch
#: padding differs, which moves log-probabilities by float rounding (CPU fp32).
CHECK_ATOL = 1e-4
#: The same check on a GPU in bf16/fp16, where padding moves probabilities by up to about 1e-2.
CHECK_ATOL_HALF = 0.05


def _canonical_examples(result: Any) -> tuple[list[int], list[int]]:
    """The demonstration list most rows of the run saw, and the run positions that saw exactly it."""
    keys = [tuple(e) for e in result.examples]
    if not keys:
        return [], []
    best, _ = Counter(keys).most_common(1)[0]
    return list(best), [p for p, key in enumerate(keys) if key == best]


def export_problem(result: Any) -> str | None:
    """Why this prompt run cannot be frozen (shown next to a disabled button), or None when it can."""
    if result is None or result.config is None or not len(result.rows):
        return "Run a template first; the classifier is frozen from the run shown."
    if result.mode != "score":
        return (f"Only score-mode runs can be exported (this run is in {result.mode} mode): cloze and generated "
                "answers are not frozen.")
    if result.scores is None or result.offsets is None:
        return "This run has no scores to freeze."
    if not result.complete:
        return "This run was stopped before the end; run it to the end, then export."
    if result.model_spec is None or result.model_spec.role != "causal_lm":
        return "Only causal-LM prompt runs can be exported."
    if any(result.examples) and result.config.selection != "random":
        return ("Nearest-neighbour demonstrations are chosen per row from the prototyping corpus, so they cannot be "
                "frozen. Use random (seeded) selection, or few-shot 0.")
    try:
        check_template_columns(result.template.template)
    except PromptFreezeError as exc:
        return str(exc)
    return None


def freeze_prompt_result(result: Any, loaded: Any, *, name: str = "", source: dict[str, Any] | None = None,
                         check_rows: int = CHECK_ROWS, progress: Progress = None) -> Any:
    """A frozen classifier from a finished prompt run (:meth:`TemplateRun.result`) in ``score`` mode.

    The demonstrations stored are those most rows saw (with random selection, every row except the demonstration
    rows themselves, which cannot be their own example); the offsets are the run's. The frozen classifier then
    re-scores ``check_rows`` rows that saw those demonstrations and must give the run's probabilities.
    """
    from llm_backend.data.labels import make_labels
    from llm_backend.scorers.base import to_probabilities

    problem = export_problem(result)
    if problem:
        raise PromptFreezeError(problem)
    cfg = result.config
    tpl = result.template
    demo_ids, same_rows = _canonical_examples(result)
    spec = result.model_spec
    if loaded.spec.key != spec.key:
        raise PromptFreezeError("The loaded LM is not the one the run used.")
    demos = [{"text": result.example_rows[i][0], "label": result.example_rows[i][1]} for i in demo_ids]
    prompt = PromptSetup(tpl.template, {k: list(v) for k, v in tpl.verbalizer.items()}, demos, cfg.normalize,
                         cfg.aggregate, bool(cfg.use_chat), tpl.name).to_json()
    labels = make_labels(list(tpl.verbalizer))
    prompt = parse_prompt(prompt, [l.name for l in labels])
    offsets = np.asarray(result.offsets, dtype=np.float64)
    comp = Component("prompt", _model_ref(spec), "logprob", result.calibration_applied, offsets, prompt=prompt)
    src = {"method": "prompt", "model": spec.name, "calibration": cfg.calibration,
           "calibration_applied": result.calibration_applied, "template_name": tpl.name,
           "few_shot": {"k": len(demos), "selection": cfg.selection, "seed": cfg.seed,
                        "rows_with_these_demonstrations": len(same_rows), "rows": len(result.rows)},
           "corpus": {"n_texts": len(result.texts), "fingerprint": corpus_fingerprint(result.texts)}}
    if result.metrics:
        src["metrics"] = {k: result.metrics[k] for k in ("accuracy", "macro_f1", "n") if k in result.metrics}
    src.update(source or {})
    clf = FrozenClassifier(labels, [comp], False, 0.5, None, None, 0, src, name)
    rows = same_rows[: max(0, check_rows)]
    if rows:
        runner = ClassifierRunner(clf, cache_entries=0, loaded=[loaded])
        got = runner.probabilities(runner.raw_scores([result.texts[p] for p in rows]))
        want = to_probabilities(np.asarray(result.scores)[rows], "logprob")
        fp32 = getattr(getattr(loaded, "device", None), "kind", "cpu") == "cpu"
        # Half precision on a GPU rounds padded batches differently: same top label, probabilities within 0.05.
        same = np.allclose(got, want, atol=CHECK_ATOL) if fp32 else (
            np.allclose(got, want, atol=CHECK_ATOL_HALF) and (got.argmax(1) == want.argmax(1)).all())
        if not same:
            worst = float(np.max(np.abs(got - want)))
            raise ClassifierError(f"The frozen prompt does not reproduce the run's probabilities on {len(rows)} rows "
                                  f"(max difference {worst:.2e}). If the settings changed since the run, run again and "
                                  "then export.")
    report(progress, 1, 1)
    return clf
