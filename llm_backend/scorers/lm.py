"""LM verbalizer: ask a causal (instruct) LM which label fits, and read how likely it is to answer each label.

The prompt lists the task, the candidate label phrases and the text, and asks for the label; the score of a label is
the length-normalised log-likelihood of its words as the assistant's answer (kind "logprob"). Nothing is generated,
so the answer can never fall outside the label set, and one prompt pass scores every label
(:func:`llm_backend.prompts.lm_scoring.continuation_logprobs`). A label with several phrasings gets the mean or max over them.

The wording is deliberately generic: it names no domain and is never tuned to one data set.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from llm_backend.core.config import get_settings
from llm_backend.core.errors import LabelError, TemplateError, UserError
from llm_backend.core.progress import Progress
from llm_backend.data.labels import Label
from llm_backend.models.loaded import LoadedModel
from llm_backend.prompts.lm_scoring import (
    build_chat_prompt,
    continuation_logprobs,
    model_context_length,
)

DEFAULT_TEMPLATE = (
    "Classify the text below into exactly one of these categories:\n{labels}\n\n"
    "Text: {text}\n\n"
    "Which category fits the text best? Answer with the category name only."
)
AGGREGATES = ("mean", "max")


def truncate_text_to_tokens(tokenizer, text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_tokens`` tokens (at a token boundary); returns (text, was_cut)."""
    if max_tokens <= 0:
        return "", bool(text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, False
    return tokenizer.decode(ids[:max_tokens], skip_special_tokens=True).rstrip() + " …", True


class LMVerbalizerScorer:
    """Scores labels by the LM's log-likelihood of answering with the label's words (kind "logprob")."""

    name = "lm"
    kind = "logprob"

    def __init__(self, loaded: LoadedModel, template: str = DEFAULT_TEMPLATE, kind: str = "logprob", *,
                 aggregate: str = "max", normalize: str = "mean", use_descriptions: bool = True,
                 use_chat_template: bool = True, answer_prefix: str = "", label_style: str = "list") -> None:
        if "{text}" not in template:
            raise TemplateError("The LM prompt must contain the {text} placeholder.")
        if aggregate not in AGGREGATES:
            raise UserError(f"aggregate must be one of {', '.join(AGGREGATES)}.")
        self.loaded = loaded
        self.template = template
        self.kind = kind
        self.aggregate = aggregate
        self.normalize = normalize
        self.use_descriptions = use_descriptions
        self.use_chat_template = use_chat_template
        self.answer_prefix = answer_prefix
        self.label_style = label_style
        #: Messages from the last :meth:`score` call (texts cut to fit, prompts shortened).
        self.notes: list[str] = []

    def _label_block(self, labels: Sequence[Label]) -> str:
        if self.label_style == "inline":
            return ", ".join(lab.phrase for lab in labels)
        lines = []
        for lab in labels:
            desc = f": {lab.description}" if self.use_descriptions and lab.description else ""
            lines.append(f"- {lab.phrase}{desc}")
        return "\n".join(lines)

    def _render(self, text: str, label_block: str) -> str:
        # str.replace, not str.format: user text and label descriptions may contain braces.
        user = self.template.replace("{labels}", label_block).replace("{text}", text)
        if self.use_chat_template:
            return build_chat_prompt(self.loaded.tokenizer, user, self.answer_prefix)
        return user + "\n" + (self.answer_prefix or "Answer:")

    def prompts(self, texts: Sequence[str], labels: Sequence[Label]) -> list[str]:
        """The exact prompts the model sees (texts cut to ``max_text_chars`` and to what fits the context)."""
        tok = self.loaded.tokenizer
        block = self._label_block(labels)
        overhead = len(tok(self._render("", block), add_special_tokens=False)["input_ids"])
        longest_answer = max(len(tok(" " + t, add_special_tokens=False)["input_ids"]) for l in labels for t in l.texts())
        room = model_context_length(self.loaded) - overhead - longest_answer - 2
        if room < 16:
            raise LabelError("The labels and their descriptions leave no room for the text in the model's context; "
                             "shorten the descriptions or use fewer labels.")
        limit = get_settings().max_text_chars
        out, cut_chars, cut_tokens = [], 0, 0
        for text in texts:
            text = "" if text is None else str(text)
            if len(text) > limit:
                text, cut_chars = text[:limit] + " …", cut_chars + 1
            text, cut = truncate_text_to_tokens(tok, text, room)
            cut_tokens += cut
            out.append(self._render(text, block))
        if cut_chars:
            self.notes.append(f"{cut_chars} text(s) longer than {limit} characters were cut to that length.")
        if cut_tokens:
            self.notes.append(f"{cut_tokens} text(s) were cut to fit the model's context ({room} tokens for the text).")
        return out

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        labels = list(labels)
        if not labels:
            raise LabelError("The label set is empty: add at least two labels.")
        self.notes = []
        if len(texts) == 0:
            return np.zeros((0, len(labels)))
        prompts = self.prompts(texts, labels)
        # Every phrasing of every label is one candidate; the chat template ends the prompt at the answer's start.
        owners: list[int] = []
        candidates: list[str] = []
        for j, lab in enumerate(labels):
            for phrasing in lab.texts():
                owners.append(j)
                spaced = not self.use_chat_template or self.answer_prefix.endswith(":")
                candidates.append(" " + phrasing if spaced else phrasing)
        raw = continuation_logprobs(self.loaded, prompts, candidates, normalize=self.normalize, progress=progress,
                                    notes=self.notes)
        owners_arr = np.asarray(owners)
        out = np.zeros((len(texts), len(labels)))
        for j in range(len(labels)):
            cols = raw[:, owners_arr == j]
            out[:, j] = cols.max(axis=1) if self.aggregate == "max" else cols.mean(axis=1)
        return out
