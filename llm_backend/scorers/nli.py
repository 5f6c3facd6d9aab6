"""NLI entailment: "does this text entail 'This text is about {label}.'?" with any sequence-classification NLI model.

This is what the transformers ``zero-shot-classification`` pipeline does, done in bulk: every (text, hypothesis)
pair goes through the model in batches sorted by length (little padding), instead of one text at a time.

- single-label: softmax over labels of the entailment logits (the scorer returns those logits, kind "logit");
- multi-label: per label, softmax of entailment vs contradiction (:meth:`NLIScorer.multi_label_probabilities`).

No NLI model ships with the app; users point at a local folder (sidebar → Add a model, or ``--model PATH``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from llm_backend.core.errors import ModelError
from llm_backend.core.progress import Progress, report
from llm_backend.data.labels import Label
from llm_backend.models.loaded import LoadedModel
from llm_backend.scorers.embedding import DEFAULT_TEMPLATE, normalise_templates


def nli_label_ids(config: Any) -> tuple[int, int]:
    """(entailment id, contradiction id) from a model config; ModelError when the model is not an NLI model.

    The contradiction id falls back to the pipeline's rule (0, or the last class when entailment is 0) for models
    whose config names only the entailment class.
    """
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    entail = [i for i, name in id2label.items() if name.lower().startswith("entail")]
    if not entail:
        names = ", ".join(f"{i}={n}" for i, n in sorted(id2label.items())) or "none"
        raise ModelError(
            "This model is not an NLI model: its config has no 'entailment' class (its classes are: "
            f"{names}). Choose a model trained on NLI (MNLI/XNLI), whose id2label includes entailment.")
    contra = [i for i, name in id2label.items() if name.lower().startswith("contradict")]
    entail_id = entail[0]
    contra_id = contra[0] if contra else (-1 if entail_id == 0 else 0)
    if contra_id < 0:
        contra_id = len(id2label) - 1
    return entail_id, contra_id


class NLIScorer:
    """Entailment logits of (text, hypothesis) pairs, kind "logit"."""

    name = "nli"
    kind = "logit"

    def __init__(self, loaded: LoadedModel, templates: str | Sequence[str] | None = DEFAULT_TEMPLATE,
                 batch_size: int = 32, max_length: int = 512) -> None:
        self.loaded = loaded
        self.templates = normalise_templates(templates)
        self.batch_size = batch_size
        self.max_length = max_length
        self.entail_id, self.contra_id = nli_label_ids(loaded.model.config)

    def hypotheses(self, labels: Sequence[Label]) -> list[list[str]]:
        """Per label, one hypothesis per (phrasing, template); their logits are averaged."""
        return [[t.format(label=p) for p in lab.texts() for t in self.templates] for lab in labels]

    def pair_logits(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        """(n_texts, n_labels, n_classes) logits, averaged over each label's hypotheses."""
        import torch

        hyps = self.hypotheses(labels)
        flat = [(i, j, h) for i in range(len(texts)) for j, hs in enumerate(hyps) for h in hs]
        n_classes = int(self.loaded.model.config.num_labels)
        sums = np.zeros((len(texts), len(labels), n_classes), dtype=np.float64)
        counts = np.array([len(h) for h in hyps], dtype=np.float64)
        if not flat:
            return sums
        tok = self.loaded.tokenizer
        # Sort by length so each batch pads to similar lengths: most of the speed-up over the pipeline.
        order = sorted(range(len(flat)), key=lambda k: len(texts[flat[k][0]]) + len(flat[k][2]))
        device = self.loaded.device.torch_device if self.loaded.device else torch.device("cpu")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            firsts = [texts[flat[k][0]] for k in idx]
            seconds = [flat[k][2] for k in idx]
            with self.loaded.lock, torch.inference_mode():
                enc = tok(firsts, seconds, padding=True, truncation="only_first", max_length=self.max_length,
                          return_tensors="pt").to(device)
                logits = self.loaded.model(**enc).logits.float().cpu().numpy()
            for row, k in enumerate(idx):
                i, j, _ = flat[k]
                sums[i, j] += logits[row]
            report(progress, min(start + self.batch_size, len(order)), len(order))
        return sums / counts[None, :, None]

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        return self.pair_logits(texts, labels, progress)[..., self.entail_id]

    def multi_label_probabilities(self, pair_logits: np.ndarray) -> np.ndarray:
        """Per label, P(entailment) against contradiction only: labels are judged independently."""
        two = pair_logits[..., [self.contra_id, self.entail_id]]
        two = two - two.max(axis=-1, keepdims=True)
        e = np.exp(two)
        return e[..., 1] / e.sum(axis=-1)

    def scored(self, texts: Sequence[str], labels: Sequence[Label], *, calibration: str, multi_label: bool = False,
               progress: Progress = None):  # noqa: ANN201 - returns pipeline.Scored
        """Single-label: the common pipeline. Multi-label: each label judged alone on entailment-vs-contradiction
        log-odds (calibrated the same way), so one label's probability does not depend on the others."""
        from .calibration import calibrate
        from .pipeline import Scored, default_scored

        if not multi_label:
            return default_scored(self, texts, labels, calibration=calibration, progress=progress)
        pair = self.pair_logits(texts, labels, progress=progress)
        raw = pair[..., self.entail_id]
        log_odds = pair[..., self.entail_id] - pair[..., self.contra_id]
        scores, info = calibrate(log_odds, calibration, scorer=_LogOddsScorer(self), labels=labels)
        return Scored(raw, scores, 1.0 / (1.0 + np.exp(-scores)), info, [])


class _LogOddsScorer:
    """Adapter so contextual calibration of multi-label NLI works on entailment-vs-contradiction log-odds."""

    kind = "logit"

    def __init__(self, inner: NLIScorer) -> None:
        self.inner = inner
        self.name = inner.name

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        pair = self.inner.pair_logits(texts, labels, progress)
        return pair[..., self.inner.entail_id] - pair[..., self.inner.contra_id]
