""""Why this label" for one row of a prompt-template run (the Prompt templates page, bench/explain_faithfulness.py).

A finished run keeps, per row, the exact prompt the LM saw and the calibrated label scores the page showed
(:class:`~llm_backend.prompts.runner.PromptRunResult`). :class:`PromptRowScorer` turns one such row into a scorer
over *texts*: any text is put in the row's text's place in that same prompt (same instruction, chat format and
few-shot demonstrations), scored with the run's answer words, normalisation and aggregation, and shifted by the
run's calibration offsets. So the explained number is the probability the run showed for that row, and
:func:`~llm_backend.explain.explainer.explain_text` explains it with the LM's gradients
(:func:`~llm_backend.explain.gradients.lm_prompt_for` reads :meth:`PromptRowScorer.lm_prompt`), or by occlusion.

Calibration offsets are recovered, not re-derived: ``offsets = raw score of the row's prompt now − calibrated score
the run stored``. Centering, contextual calibration and PMI all subtract one vector per label, so this gives the
run's own vector whatever the method, and a variant of the text is calibrated the way the run would have.

Cloze runs (masked LM) have no gradient path here: occlusion, with a note. Generate runs have no label scores:
a clear error.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from llm_backend.core.errors import UserError
from llm_backend.data.labels import Label, make_labels
from llm_backend.explain.attribution import Attribution
from llm_backend.explain.gradients import LMPrompt
from llm_backend.models.loaded import LoadedModel


def _text_span(prompt: str, text: str) -> tuple[int, int]:
    """Where the row's text sits in its prompt: the last occurrence (demonstrations come before the row).

    A text cut to fit the context ends with " …" in the prompt: the longest prefix of the text found there is it.
    """
    at = prompt.rfind(text)
    if text and at >= 0:
        return at, at + len(text)
    lo, hi, best = 1, len(text), None
    while lo <= hi:  # the longest prefix of text present in the prompt (presence is monotone in the length)
        mid = (lo + hi) // 2
        pos = prompt.rfind(text[:mid])
        if pos >= 0:
            best, lo = (pos, mid), mid + 1
        else:
            hi = mid - 1
    if best is None or best[1] < min(len(text), 8):
        raise UserError("The row's text could not be found in its prompt, so it cannot be explained.")
    start, n = best
    end = start + len(text[:n].rstrip())  # the run cut at a token boundary, stripped, then wrote " …"
    if prompt.startswith(" …", end):
        end += 2
    return start, end


class PromptRowScorer:
    """Row ``pos`` of a prompt-template run as a scorer of texts (see the module docstring)."""

    kind = "logprob"

    def __init__(self, result: Any, pos: int, loaded: LoadedModel) -> None:
        if result.mode == "generate":
            raise UserError("A generate run has no label scores to explain (its labels come from free text). Run "
                            "the template in 'score labels' mode to see why the LM prefers a label.")
        if result.scores is None or not 0 <= pos < len(result.rows):
            raise UserError(f"Row {pos} is not in this run (it has {len(result.rows)} rows).")
        cfg = getattr(result, "config", None)
        self.result, self.pos, self.loaded = result, pos, loaded
        self.mode = result.mode
        self.normalize = getattr(cfg, "normalize", "mean")
        self.aggregate = getattr(cfg, "aggregate", "max")
        self.verbalizer = dict(result.template.verbalizer)
        self.name = f"prompt template '{result.template.name}'"
        self.prompt = result.prompts[pos]
        self.start, self.end = _text_span(self.prompt, result.texts[pos])
        #: the text as the run scored it (cut like the run cut it)
        self.text = self.prompt[self.start : self.end]
        self.no_gradients_reason = ("a cloze run reads a masked LM's guess at one position; no gradient path is "
                                    "built for it") if self.mode == "cloze" else None
        from llm_backend.prompts.lm_scoring import has_chat_template

        chat = self.mode == "score" and getattr(cfg, "use_chat", True) and has_chat_template(loaded.tokenizer)
        self.candidates, self.owners = [], []
        for j, words in enumerate(self.verbalizer.values()):
            for w in words:
                self.owners.append(j)
                self.candidates.append(w if chat else " " + w)
        self.offsets = np.zeros(len(self.verbalizer))
        self._memo: dict[str, np.ndarray] = {}  # raw scores by text: the row's own text is scored once, not 3 times
        self.offsets = self._raw([self.text])[0] - np.asarray(result.scores[pos], dtype=np.float64)

    def labels(self) -> list[Label]:
        return make_labels(list(self.verbalizer))

    def prompt_with(self, text: str) -> str:
        return self.prompt[: self.start] + text + self.prompt[self.end :]

    def _raw(self, texts: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if todo:
            for t, row in zip(todo, self._raw_uncached(todo)):
                self._memo[t] = row
        return np.array([self._memo[t] for t in texts]).reshape(len(texts), len(self.verbalizer))

    def _raw_uncached(self, texts: Sequence[str]) -> np.ndarray:
        prompts = [self.prompt_with(t) for t in texts]
        if self.mode == "cloze":
            from llm_backend.prompts.cloze import cloze_scores

            return cloze_scores(self.loaded, prompts, self.verbalizer)
        from llm_backend.prompts.lm_scoring import continuation_logprobs

        raw = continuation_logprobs(self.loaded, prompts, self.candidates, normalize=self.normalize)
        owners = np.asarray(self.owners)
        out = np.zeros((len(prompts), len(self.verbalizer)))
        for j in range(out.shape[1]):
            cols = raw[:, owners == j]
            out[:, j] = cols.max(axis=1) if self.aggregate == "max" else cols.mean(axis=1)
        return out

    def score(self, texts: Sequence[str], labels: Sequence[Label] | None = None) -> np.ndarray:
        """Calibrated label scores of ``texts`` in this row's prompt (the run's labels, in the run's order)."""
        if labels is not None and [l.name for l in labels] != list(self.verbalizer):
            raise UserError("A prompt run's row is explained over the run's own labels.")
        return self._raw(texts) - self.offsets

    def lm_prompt(self, text: str, labels: Sequence[Label]) -> LMPrompt:
        """The prompt with ``text`` in the row's place, for the LM gradient path."""
        return LMPrompt(self.prompt_with(text), self.start, self.start + len(text), list(self.candidates),
                        list(self.owners), self.normalize, self.aggregate, self.offsets.copy())


def explain_prompt_row(result: Any, pos: int, loaded: LoadedModel, *, label: str | None = None,
                       method: str = "auto", n_steps: int = 16, scorer: PromptRowScorer | None = None) -> Attribution:
    """Word weights for a label of row ``pos`` of a prompt run (default: the label the run predicted).

    ``scorer``: a :class:`PromptRowScorer` of that row already built (the bench reuses it for its deletion test).
    """
    from llm_backend.explain.explainer import explain_text

    scorer = scorer or PromptRowScorer(result, pos, loaded)
    attr = explain_text(scorer, scorer.text, scorer.labels(), label=label or result.pred[pos], method=method,
                        n_steps=n_steps)
    attr.notes.insert(0, f"Explained: the calibrated probability the run showed for row {result.rows[pos]} "
                         f"(the same prompt, answer words and calibration; only the text's words vary).")
    return attr
