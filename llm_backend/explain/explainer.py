"""``explain_text``: "why this label" for any scorer, choosing the method the scorer allows and saying which ran.

``auto`` is occlusion for every scorer; gradients (gradient × input, integrated gradients) run on request where the
model has them. The reason is measured (bench/explain_faithfulness.py, deletion test on AG News):

- Embedding similarity, trained heads on embeddings, ensembles: occlusion (leave one word out, one batched call);
  the only method they allow.
- LM verbalizer (zero-shot page or a prompt-template row): gradient × input is **not** faithful — on 200 rows of the
  shipped News topic template with SmolLM2, deleting its top-3 words lowered the label more than deleting 3 random
  words on only 44% of rows (Wilcoxon p = 0.67) — while occlusion beat random on 98% of the same 200 rows
  (top-3: probability drop 0.152 vs 0.025, log-odds 0.75 vs 0.12, p = 1.3e-34). Occlusion is the forward pass the
  label came from: all variants of the text go through the answer-tree scorer in one call that runs the prompt's
  shared prefix once (llm_backend.prompts.lm_scoring), so it costs about one scoring pass per word, against about
  three (a forward and a backward) for gradient × input: slower, but it answers the question the picture asks.
- NLI and fine-tuned encoders: gradient × input on a fine-tuned MiniLM is *anti*-faithful — deleting its top-3
  words raised the label (top beat random on 36% of 195 rows) — while occlusion beat random on every one of
  200 rows (log-odds drop 0.064 vs 0.003, p = 7e-35). The reason is structural: a BERT-style encoder applies LayerNorm to (word + position + type
  embedding), which is invariant to scaling that sum, so ``x · ∇f`` on the word embedding equals
  ``−(position + type) · ∇f``: a picture of the position embeddings, not of the words. NLI cross-encoders share
  that architecture.
- Asked for gradients where there are none: occlusion, with a note saying so.
- One word: nothing to attribute (removing it leaves no text), said plainly, no weights invented.
- Text past the model's limit: only the part the model read is attributed, with a note giving where it was cut.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from llm_backend.core.config import get_settings
from llm_backend.core.errors import LabelError, UserError
from llm_backend.data.labels import Label
from llm_backend.scorers.base import Scorer
from llm_backend.explain.attribution import METHOD_TITLES, METHODS, Attribution
from llm_backend.explain.gradients import GRADIENT_METHODS, GradientTooLarge, gradient_attribution, gradient_unavailable_reason
from llm_backend.explain.occlusion import model_token_limit, occlusion_probabilities, token_limit_chars
from llm_backend.explain.scoring import probability_function
from llm_backend.explain.words import split_words


def check_method(method: str) -> str:
    method = (method or "auto").strip().lower().replace("-", "_").replace(" ", "_")
    if method not in METHODS:
        raise UserError(f"Unknown attribution method '{method}'. Choose one of: {', '.join(METHODS)}.")
    return method


def _label_index(label: str | None, labels: Sequence[Label], probs: np.ndarray) -> int:
    if label is None or str(label).strip() == "":
        return int(np.argmax(probs))
    names = [l.name for l in labels]
    if label in names:
        return names.index(label)
    folded = [n.strip().casefold() for n in names]
    key = str(label).strip().casefold()
    if key in folded:
        return folded.index(key)
    raise LabelError(f"'{label}' is not in the label set ({', '.join(names[:20])}).")


def _cut_for_occlusion(scorer: Any, text: str, notes: list[str]) -> str:
    """The part of ``text`` the scorer reads: the app's character cap, then the model's token limit."""
    limit = get_settings().max_text_chars
    if len(text) > limit:
        notes.append(f"The text has {len(text):,} characters; like every scored text it was cut to the first "
                     f"{limit:,}, and only that part is attributed.")
        text = text[:limit]
    tok, max_tokens = model_token_limit(scorer)
    cut = token_limit_chars(tok, text, max_tokens)
    if cut is not None:
        notes.append(f"The text is longer than the model reads ({max_tokens} tokens): only the first {cut:,} "
                     f"characters were scored, so only they are attributed.")
        text = text[:cut]
    return text


def explain_text(scorer: Scorer, text: str, labels: Sequence[Label], *, label: str | None = None,
                 method: str = "auto", corpus: Sequence[str] | None = None, n_steps: int = 16) -> Attribution:
    """Word weights for ``label`` (default: the predicted label) of ``text`` under ``scorer``.

    ``corpus`` is the dataset the text belongs to; the embedding scorer refines its label vectors on it, as a run
    over that dataset does, so the explained probability is the one the page showed.
    """
    start = time.perf_counter()
    labels = list(labels)
    if len(labels) < 2:
        raise LabelError("Explaining a label needs a label set of at least two labels.")
    text = "" if text is None else str(text)
    if not text.strip():
        raise UserError("The text is empty: there is nothing to explain.")
    method = check_method(method)
    notes: list[str] = []
    prob_fn = probability_function(scorer, labels, corpus, notes)
    reason = gradient_unavailable_reason(scorer)
    use_gradients = reason is None and method in GRADIENT_METHODS  # auto: occlusion (measured, module docstring)
    if method in GRADIENT_METHODS and reason is not None:
        notes.append(f"{METHOD_TITLES[method]} is not available for this scorer ({reason}); occlusion was used "
                     "instead.")
    name = getattr(scorer, "name", type(scorer).__name__)

    def done(scored: str, words: list, weights: np.ndarray, probs: np.ndarray, j: int, used: str) -> Attribution:
        return Attribution(text, scored, words, np.asarray(weights, dtype=np.float64),
                           labels[j].name, {l.name: float(p) for l, p in zip(labels, probs)}, used, name, notes,
                           time.perf_counter() - start)

    if use_gradients:
        full = prob_fn([text])[0]
        j = _label_index(label, labels, full)
        grad_method = method
        try:
            scored, words, weights, grad_notes = gradient_attribution(scorer, text, labels, j, grad_method, n_steps)
        except GradientTooLarge as exc:
            notes.append(f"Gradients were not computed ({exc}); occlusion was used instead.")
        except (ValueError, RuntimeError, NotImplementedError, TypeError) as exc:
            notes.append(f"Gradients failed for this text ({type(exc).__name__}); occlusion was used instead.")
        else:
            notes.extend(grad_notes)
            if scored.strip() != text.strip() and not grad_notes:
                notes.append(f"Only the first {len(scored):,} characters were scored, so only they are attributed.")
            if len(words) < 2:
                notes.append("The text has fewer than two words: there is nothing to attribute.")
                return done(scored, words, np.zeros(len(words)), full, j, "none")
            return done(scored, words, weights, full, j, grad_method)
    scored = _cut_for_occlusion(scorer, text, notes)
    words = split_words(scored)
    if len(words) < 2:
        full = prob_fn([scored])[0]
        notes.append("The text has fewer than two words: there is nothing to attribute (leaving its only word out "
                     "would leave no text to score).")
        return done(scored, words, np.zeros(len(words)), full, _label_index(label, labels, full), "none")
    full, without, group = occlusion_probabilities(scored, words, prob_fn)
    if group > 1:
        notes.append(f"The text has {len(words)} words: they were left out {group} neighbours at a time (each word "
                     "shows its group's effect shared equally), to keep one explanation to one batch of encodes.")
    j = _label_index(label, labels, full)
    return done(scored, words, (full[j] - without[:, j]) / group, full, j, "occlusion")
