"""Running a prompt template over a dataset: score (verbalizer log-likelihood), cloze (masked LM) or generate.

:class:`TemplateRun` prepares everything once (validation, rows, few-shot examples, calibration offsets) and then
runs in chunks, so the page can show progress, stop, and keep partial results; the CLI and the benchmark call
:meth:`TemplateRun.run_all`. Prompts are built the same way everywhere:

- causal LMs with a chat template get the rendered prompt as the user message and the answer as the assistant's
  reply; few-shot examples (unless the template places ``examples``/``examples_block`` itself) become earlier
  user/assistant turns, each a whole copy of the template (a template with a long label list should place the
  examples itself, so the list appears once: the run notes it when the repeated part is long);
- other models get plain text: examples as rendered prompts followed by their answer, then the row's prompt.

A prompt over the model's context has its *text* part cut (never the instructions) and the run says so.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from llm_backend.core.config import get_settings
from llm_backend.core.errors import ModelError, TemplateError, UserError
from llm_backend.core.progress import Progress, report
from llm_backend.evaluation.metrics import agreement, evaluate
from llm_backend.models.loaded import LoadedModel
from llm_backend.prompts.few_shot import select_examples
from llm_backend.prompts.generation import UNMAPPED, asks_for_one_word, generate_texts, map_to_label
from llm_backend.prompts.lm_scoring import (
    NORMALIZE,
    PrefixStore,
    continuation_logprobs,
    has_chat_template,
    model_context_length,
)
from llm_backend.prompts.templates import (
    EXAMPLE_MAX_CHARS,
    MASK_MARK,
    PromptTemplate,
    check_gold_covered,
    check_template,
    render,
    row_context,
)
from llm_backend.scorers.base import to_probabilities
from llm_backend.scorers.calibration import CONTENT_FREE_INPUTS, MIN_TEXTS_FOR_CENTERING, calibrate

MODES = ("score", "cloze", "generate")
#: Calibrations of a prompt run. "centering" (the default) subtracts each label's mean score over the rows run; with
#: fewer than MIN_TEXTS_FOR_CENTERING rows it falls back to "contextual". "contextual" subtracts the scores the same
#: prompt gets with content-free texts ("N/A", "[blank]", ""); "pmi" (domain-conditional PMI, Holtzman et al. 2021)
#: subtracts each label's score after the template's question alone, without the text.
PROMPT_CALIBRATIONS = ("centering", "contextual", "pmi", "none")
PROMPT_CALIBRATION_TITLES = {
    "centering": "prior centering (each label's mean over the rows; contextual below 10 rows)",
    "contextual": "contextual (subtract scores on content-free texts)",
    "pmi": "domain-conditional PMI (subtract the score after the question alone)",
    "none": "none (raw log-likelihoods)",
}
DEFAULT_PROMPT_CALIBRATION = "centering"
#: The causal LM prompt runs (CLI ``prompt``/``freeze`` and the Prompt templates page) use unless told otherwise.
#: Gemma 3 270M (base) against SmolLM2-135M-Instruct on the same rows, run side by side (bench/prompt_templates.py,
#: bench/sentiment_recipe.py; docs/prompt-templates.md has the table): AG News topic 0.665 vs 0.36 accuracy (200
#: rows, k=0), the judged "Review: ... positive or negative?" recipe 0.664 vs 0.621, and no slower on CPU despite twice
#: the parameters (shorter prompts: no chat template). SmolLM2 stays registered and selectable (and is what the
#: test suite runs on: it loads in seconds where Gemma's first use assembles and dequantises ~1 GB).
DEFAULT_PROMPT_LM = "Gemma-3-270M"
#: How several answer words of one label make its score: the best word's ("max") or their mean ("mean").
#: "mean" is the default: with the default LM (Gemma 3 270M) and the default calibration (centering) it scored at
#: least as well as "max" on the dev half of every template with several words per label (bench/prompt_templates.py
#: --aggregation, bench/sentiment_recipe.py; docs/prompt-templates.md): AG News topic dev 0.82 vs 0.74 (held-out
#: 0.70 vs 0.58), 3-way product reviews dev 0.51 vs 0.34 (held-out 0.53 vs 0.40), the judged two-way recipe dev
#: 0.80 vs 0.70 (held-out 0.74 vs 0.66); SmolLM2 on AG News agrees (dev 0.39 vs 0.32). Without calibration
#: ("none") "max" is the better one on the same rows (Gemma raw AG News 0.51 vs 0.31, reviews 0.52 vs 0.39): the mean
#: relies on the default centering. Templates with one word per label (intent) are unaffected.
AGGREGATES = ("max", "mean")
DEFAULT_AGGREGATE = "mean"
#: A verbalizer word split into at least this many tokens gets a warning: its score is mostly about spelling.
MANY_PIECES = 4
#: A template whose fixed part (all but the text) is at least this many tokens gets a note when its few-shot examples
#: are rendered as whole copies of it. The 77-intent list is 339 SmolLM2 tokens (the intent template's fixed part
#: 396): repeated per example, k=1 made 7,456-token prompts that kept only 18 of the 32 capped examples (Gemma: all
#: 32 in ~11.9k tokens), where the shipped template, placing its examples itself, makes 1,174 tokens with all 32.
#: The shipped topic and sentiment templates (fixed parts under 70 tokens) stay below.
REPEATED_TEMPLATE_TOKENS = 200
_TEXT_MARK = "\u2063ZSS_TEXT\u2063"
MODE_TITLES = {"score": "score labels (causal LM verbalizer)", "cloze": "cloze (masked LM fills [MASK])",
               "generate": "generate free text (instruct LM), then map to a label"}


@dataclass
class RunConfig:
    mode: str = "score"
    few_shot: int | None = None  # examples per label; None = the template's own setting
    selection: str = "random"  # or "nearest"
    seed: int = 0
    calibration: str = DEFAULT_PROMPT_CALIBRATION  # see PROMPT_CALIBRATIONS (score and cloze)
    aggregate: str = DEFAULT_AGGREGATE  # several answer words per label: see AGGREGATES
    normalize: str = "mean"  # answer words of several tokens: mean log-prob per token, sum, or first token only
    share_prefix: bool = True  # run the row-independent prompt start once and reuse its KV cache
    use_chat: bool = True  # apply the chat template when the LM has one
    max_new_tokens: int = 16
    temperature: float = 0.0
    limit: int | None = None
    max_examples: int = 32  # cap on examples per prompt (many labels x k would not fit)


@dataclass
class PromptRunResult:
    """One template's run: predictions (and scores or generations), prompts, metrics and notes."""

    template: PromptTemplate
    mode: str
    rows: list[int]  # positions in the dataset
    texts: list[str]
    gold: list[str] | None
    pred: list[str]
    labels: list[str]
    prompts: list[str]
    scores: np.ndarray | None = None  # calibrated scores (score/cloze)
    generated: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    seconds: float = 0.0
    complete: bool = True
    #: What a frozen classifier needs to reproduce the run (``llm_backend.batch.frozen_prompt``): the calibration
    #: really applied and its per-label offsets, the run's settings and model, and each row's demonstrations (as
    #: dataset positions, with their texts and gold labels).
    calibration_applied: str = "none"
    offsets: np.ndarray | None = None
    config: RunConfig | None = None
    model_spec: Any = None
    examples: list[list[int]] = field(default_factory=list)
    example_rows: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def n_unmapped(self) -> int:
        return sum(p == UNMAPPED for p in self.pred)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"row": self.rows, "text": self.texts})
        if self.gold is not None:
            df["gold"] = self.gold
        df["pred"] = self.pred
        if self.generated is not None:
            df["generated"] = self.generated
        if self.scores is not None and len(self.scores):
            probs = to_probabilities(self.scores, "logprob")
            df["confidence"] = probs.max(axis=1).round(4)
            for j, lab in enumerate(self.labels):
                df[f"p[{lab}]"] = probs[:, j].round(4)
        return df


def _cut_chars(text: str, limit: int) -> tuple[str, bool]:
    return (text[:limit].rstrip() + " …", True) if len(text) > limit else (text, False)


class TemplateRun:
    """A prepared run of one template on one dataset; call :meth:`run_chunk` repeatedly or :meth:`run_all`."""

    def __init__(self, template: PromptTemplate, df: pd.DataFrame, text_column: str, gold_column: str | None = None,
                 config: RunConfig | None = None, *, lm: LoadedModel | None = None,
                 masked_lm: LoadedModel | None = None, embedder: LoadedModel | None = None,
                 rows: Sequence[int] | None = None) -> None:
        from llm_backend.core.workshop import RunTimer

        self.timer = RunTimer("This prompt run")
        self.t = template
        self.cfg = config or RunConfig(mode=template.mode)
        mode = self.cfg.mode
        if mode not in MODES:
            raise UserError(f"Unknown mode '{mode}': use {', '.join(MODES)}.")
        if text_column not in df.columns:
            raise UserError(f"The text column '{text_column}' is not in the data.")
        if gold_column is not None and gold_column not in df.columns:
            raise UserError(f"The gold column '{gold_column}' is not in the data.")
        self.model = masked_lm if mode == "cloze" else lm
        if self.model is None:
            raise UserError(f"Mode '{mode}' needs a {'masked' if mode == 'cloze' else 'causal'} language model.")
        self.calibration = _check_prompt_calibration(self.cfg.calibration) if mode != "generate" else "none"
        if self.cfg.aggregate not in AGGREGATES:
            raise UserError(f"Unknown word aggregation '{self.cfg.aggregate}': use {', '.join(AGGREGATES)}.")
        if self.cfg.normalize not in NORMALIZE:
            raise UserError(f"Unknown answer scoring '{self.cfg.normalize}': use {', '.join(NORMALIZE)}.")
        self.used = check_template(template.template, df.columns, mode=mode)
        self.df = df.reset_index(drop=True)
        self.text_column, self.gold_column = text_column, gold_column
        self.all_texts = ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in self.df[text_column]]
        self.all_gold = ([str(v).strip() if v is not None and str(v) != "nan" else "" for v in self.df[gold_column]]
                         if gold_column else None)
        self.notes: list[str] = []
        if self.all_gold is not None:
            check_gold_covered(template.verbalizer, self.all_gold)
        positions = list(rows) if rows is not None else list(range(len(self.df)))
        if self.cfg.limit is not None:
            positions = positions[: max(0, int(self.cfg.limit))]
        if not positions:
            raise UserError("There are no rows to run on.")
        self.rows = positions
        self.k = template.few_shot if self.cfg.few_shot is None else int(self.cfg.few_shot)
        self.chat = mode in ("score", "generate") and self.cfg.use_chat and has_chat_template(self.model.tokenizer)
        self.inline_examples = bool({"examples", "examples_block"} & self.used)
        if self.k > 0 and self.all_gold is None:
            raise UserError("Few-shot examples need a gold column with labels. Choose one, or set few-shot to 0.")
        self.examples = self._choose_examples(embedder)
        self.budget = self._context_budget()
        self.truncated = 0
        self.dropped_examples = 0  # prompts that kept fewer examples to fit the context
        self.dropped_described: dict[int, str] = {}  # example row -> how it is named in the note
        self._fitted: dict[tuple[int, ...], list[int]] = {}
        self.prefix_store = PrefixStore()
        self._shared_keys: set[tuple[int, ...]] = set()  # demonstrations shared by several rows
        self._hints: dict[tuple[int, ...], str] = {}  # their prompt start (the prefix hint)
        self._main: list[tuple[int, ...] | None] = []  # the run's most common demonstrations, once known
        self._check_fixed_part()
        if mode == "score":
            self.notes.extend(verbalizer_notes(self.model.tokenizer, template.verbalizer, self.cfg.normalize))
        self.scores = np.zeros((len(self.rows), len(template.verbalizer)))
        #: score mode: each row's log-likelihood of every answer word (columns as :meth:`answer_words`), before
        #: the words of a label are aggregated, so a benchmark can compare aggregations from one scoring pass.
        self.word_scores = np.zeros((len(self.rows), len(self._candidates()[0]) if mode == "score" else 0))
        self.generated: list[str] = [""] * len(self.rows)
        self.prompts: list[str | None] = [None] * len(self.rows)
        self.done = 0
        self.seconds = 0.0
        self.offsets: np.ndarray | None = None
        self._offsets_kind = ""

    # ------------------------------------------------------------------------------------------ preparation
    def _choose_examples(self, embedder: LoadedModel | None) -> list[list[int]]:
        if self.k <= 0:
            return [[] for _ in self.rows]
        emb = None
        if self.cfg.selection == "nearest":
            if embedder is None:
                raise UserError("Nearest-neighbour examples need the sentence embedder.")
            from llm_backend.models.embedding_cache import embed_texts

            emb = embed_texts(embedder, self.all_texts)
        choice = select_examples(self.rows, self.all_texts, self.all_gold or [], self.t.labels, self.k,
                                 method=self.cfg.selection, seed=self.cfg.seed, embeddings=emb,
                                 max_total=self.cfg.max_examples)
        self.notes.extend(choice.notes)
        return choice.indices

    def _context_budget(self) -> int:
        if self.cfg.mode == "cloze":
            tok_max = getattr(self.model.tokenizer, "model_max_length", 512) or 512
            return min(int(tok_max), 512) - 2
        longest = max(len(self.model.tokenizer(" " + w, add_special_tokens=False)["input_ids"])
                      for words in self.t.verbalizer.values() for w in words)
        extra = self.cfg.max_new_tokens if self.cfg.mode == "generate" else longest
        return model_context_length(self.model) - extra - 2

    def _mask(self) -> str:
        if self.cfg.mode == "cloze":
            from llm_backend.prompts.cloze import mask_token

            return mask_token(self.model)
        return MASK_MARK

    def _example_dict(self, i: int) -> dict[str, str]:
        label = (self.all_gold or [""] * (i + 1))[i]
        text, _ = _cut_chars(self.all_texts[i], EXAMPLE_MAX_CHARS)
        return {"text": text, "label": label, "answer": self.t.verbalizer[label][0]}

    def _ctx(self, i: int | None, text: str) -> dict[str, Any]:
        row = self.df.iloc[i].to_dict() if i is not None else {c: "N/A" for c in self.df.columns}
        return row_context(row, text)

    def _assemble(self, i: int | None, text: str, example_ids: Sequence[int]) -> str:
        """The full prompt for row ``i`` (None = content-free) with ``text`` as its text."""
        exs = [self._example_dict(e) for e in example_ids]
        body = render(self.t.template, self._ctx(i, text), self.t.verbalizer,
                      examples=exs if self.inline_examples else (), mask=self._mask())
        return self._assemble_body(body, example_ids)

    def _assemble_body(self, body: str, example_ids: Sequence[int]) -> str:
        """``body`` (the row's rendered template) after the demonstrations, in the model's format."""
        exs = [self._example_dict(e) for e in example_ids]
        mask = self._mask()
        v = self.t.verbalizer
        demos = [] if self.inline_examples else exs
        if self.chat:
            messages: list[dict[str, str]] = []
            for e, ex in zip(example_ids, demos):
                messages.append({"role": "user", "content": render(self.t.template, self._ctx(e, ex["text"]), v, mask=mask)})
                messages.append({"role": "assistant", "content": ex["answer"]})
            messages.append({"role": "user", "content": body})
            return str(self.model.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        parts = []
        for e, ex in zip(example_ids, demos):
            if self.cfg.mode == "cloze":  # the example's mask is filled with its answer
                parts.append(render(self.t.template, self._ctx(e, ex["text"]), v, mask=ex["answer"]))
            else:
                parts.append(f"{render(self.t.template, self._ctx(e, ex['text']), v)} {ex['answer']}")
        parts.append(body)
        return "\n\n".join(parts)

    def count_tokens(self, prompt: str) -> int:
        return len(self.model.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _check_fixed_part(self) -> None:
        """Refuse a template whose fixed part (everything but the text and the examples) leaves no room for text;
        say when few-shot examples would each repeat a long fixed part (see :data:`REPEATED_TEMPLATE_TOKENS`)."""
        i = self.rows[0]
        fixed = self.count_tokens(self._assemble(i, "", []))
        if fixed > self.budget - 16:
            raise TemplateError(f"The template without its text is already {fixed} tokens, more than the model's "
                                f"context leaves for the prompt ({self.budget} tokens): shorten the template (long "
                                "label lists count too) or use a model with a longer context.")
        if self.k > 0 and not self.inline_examples and fixed >= REPEATED_TEMPLATE_TOKENS:
            self.notes.append(
                f"Each few-shot example repeats the whole template (about {fixed} tokens, its label list included). "
                "Place the examples in the template itself ({{ examples_block }}, or a loop "
                "{% for ex in examples %}...{{ ex.text }}...{{ ex.answer }}...{% endfor %}) to list the labels once "
                "and show each example as a short text/answer pair, as the shipped intent template does.")

    def _fit_examples(self, i: int, exs: list[int]) -> list[int]:
        """The examples that fit next to a text, dropping the longest first (the same list always gives the same
        answer, so rows sharing demonstrations keep sharing them, and their KV cache)."""
        key = tuple(exs)
        if key in self._fitted:
            return self._fitted[key]
        kept = list(exs)
        fixed = self.count_tokens(self._assemble(i, "", []))
        room_for_text = min(512, max(16, (self.budget - fixed) // 2))
        limit = self.budget - room_for_text
        n = self.count_tokens(self._assemble(i, "", kept))
        if n > limit and kept:
            sizes = {e: self.count_tokens(self._assemble(None, self._example_dict(e)["text"], [])) for e in kept}
            while n > limit and kept:
                longest = max(kept, key=lambda e: (sizes[e], e))
                kept.remove(longest)
                label = (self.all_gold or [""] * (longest + 1))[longest]
                self.dropped_described[longest] = f"row {longest} ({label}, about {sizes[longest]} tokens)"
                n = self.count_tokens(self._assemble(i, "", kept))
        self._fitted[key] = kept
        return kept

    def prompt_for(self, pos: int) -> str:
        """The prompt of the ``pos``-th row of this run, with its text cut when the prompt would not fit."""
        if self.prompts[pos] is not None:
            return self.prompts[pos]  # type: ignore[return-value]
        i = self.rows[pos]
        text, cut = _cut_chars(self.all_texts[i], get_settings().max_text_chars)
        exs = self._fit_examples(i, list(self.examples[pos]))
        if len(exs) < len(self.examples[pos]):
            self.dropped_examples += 1
            self.examples[pos] = exs
        prompt = self._assemble(i, text, exs)
        n = self.count_tokens(prompt)
        tok = self.model.tokenizer
        for _ in range(4):  # cut the text part by the overflow (plus a margin) until the whole prompt fits
            if n <= self.budget:
                break
            ids = tok(text, add_special_tokens=False)["input_ids"]
            keep = len(ids) - (n - self.budget) - 8
            if keep <= 0:
                raise TemplateError(f"The prompt without its text is already longer than the model's context "
                                    f"({self.budget} tokens): use fewer few-shot examples or a shorter template.")
            text = tok.decode(ids[:keep], skip_special_tokens=True).rstrip() + " …"
            cut = True
            prompt = self._assemble(i, text, exs)
            n = self.count_tokens(prompt)
        self.truncated += cut
        self.prompts[pos] = prompt
        return prompt

    def shared_start(self, pos: int) -> str:
        """The part of row ``pos``'s prompt that comes before its text: the same for every row with the same
        examples (instruction, chat header, demonstrations), so its KV cache is computed once per run."""
        prompt = self._assemble(self.rows[pos], _TEXT_MARK, self.examples[pos])
        return prompt.split(_TEXT_MARK, 1)[0]

    # ---------------------------------------------------------------------------------------------- running
    def _candidates(self) -> tuple[list[str], np.ndarray]:
        owners, cands = [], []
        for j, words in enumerate(self.t.verbalizer.values()):
            for w in words:
                owners.append(j)
                cands.append(w if self.chat else " " + w)
        return cands, np.asarray(owners)

    def answer_words(self) -> list[tuple[str, str]]:
        """(label, answer word) of each column of :attr:`word_scores`."""
        return [(lab, w) for lab, words in self.t.verbalizer.items() for w in words]

    def _main_examples(self) -> tuple[int, ...] | None:
        """The demonstrations most rows of the whole run share (None when no two rows share theirs), registered
        with their prompt start as prefix hint; chosen over all rows, not per chunk, so a first chunk of rows that
        are themselves demonstrations already reads the shared prefix."""
        if not self._main:
            counts: dict[tuple[int, ...], int] = {}
            for e in self.examples:
                counts[tuple(e)] = counts.get(tuple(e), 0) + 1
            top = max(counts, key=lambda k: counts[k]) if counts else None
            main = None
            if top is not None and counts[top] > 1:
                pos = next(p for p, e in enumerate(self.examples) if tuple(e) == top)
                self.prompt_for(pos)  # fits its demonstrations to the context first (the same for every such row)
                main = tuple(self.examples[pos])
                if main not in self._shared_keys:
                    self._shared_keys.add(main)
                    self._hints[main] = self.shared_start(pos)
            self._main.append(main)
        return self._main[0]

    def _score_prompts(self, prompts: list[str], progress: Progress = None,
                       positions: Sequence[int] | None = None, start: int | None = None) -> np.ndarray:
        if self.cfg.mode == "cloze":
            from llm_backend.prompts.cloze import cloze_scores

            return cloze_scores(self.model, prompts, self.t.verbalizer, progress=progress, notes=self.notes)
        cands, owners = self._candidates()
        groups, hints = None, None
        if positions is not None and self.cfg.share_prefix:
            # Rows with the same demonstrations share their prompt start. A lone row (its demonstrations are the
            # run's shared ones with one replaced: it is itself a demonstration) joins the group of the most common
            # demonstrations and reads their cached keys up to the slot where its own prompt departs from them,
            # recomputing only the rest (lm_scoring.visible_prefix_len). When no two rows of the run share their
            # demonstrations (nearest neighbours), lone rows go together (they share the chat header and the
            # instruction).
            keys = [tuple(self.examples[p]) for p in positions]
            main = self._main_examples()
            counts = {k: keys.count(k) for k in set(keys)}
            for p, key in zip(positions, keys):
                if counts[key] > 1 and key not in self._shared_keys:
                    self._shared_keys.add(key)
                    self._hints[key] = self.shared_start(p)
            fallback = main if main is not None else "lone rows"
            groups = [key if key in self._shared_keys else fallback for key in keys]
            hints = {key: self._hints[key] for key in set(groups) if key in self._hints}
        raw = continuation_logprobs(self.model, prompts, cands, progress=progress, notes=self.notes,
                                    normalize=self.cfg.normalize, share_prefix=self.cfg.share_prefix,
                                    groups=groups, prefix_hints=hints, prefix_store=self.prefix_store)
        if start is not None:
            self.word_scores[start:start + len(prompts)] = raw
        return aggregate_words(raw, owners, len(self.t.verbalizer), self.cfg.aggregate)

    def run_chunk(self, size: int = 16, progress: Progress = None) -> int:
        """Run the next ``size`` rows; returns how many rows are done."""
        start, stop = self.done, min(self.done + size, len(self.rows))
        if start >= stop:
            return self.done
        self.timer.check()  # the workshop's time limit per run (pages and CLI alike); rows done so far are kept
        t0 = time.perf_counter()
        prompts = [self.prompt_for(p) for p in range(start, stop)]
        if self.cfg.mode == "generate":
            keys = {tuple(self.examples[p]) for p in range(start, stop)}
            hint = self.shared_start(start) if len(keys) == 1 else None
            stop_words = self.t.verbalizer if asks_for_one_word(self.t.template) else None
            self.generated[start:stop] = generate_texts(
                self.model, prompts, max_new_tokens=self.cfg.max_new_tokens, temperature=self.cfg.temperature,
                seed=self.cfg.seed + start, stop_words=stop_words, share_prefix=self.cfg.share_prefix,
                prefix_hint=hint, prefix_store=self.prefix_store, notes=self.notes)
        else:
            self.scores[start:stop] = self._score_prompts(prompts, positions=range(start, stop), start=start)
        self.done = stop
        self.seconds += time.perf_counter() - t0
        report(progress, self.done, len(self.rows))
        return self.done

    def run_all(self, progress: Progress = None, should_stop: Callable[[], bool] | None = None,
                chunk: int = 16) -> PromptRunResult:
        while self.done < len(self.rows):
            if should_stop is not None and should_stop():
                break
            self.run_chunk(chunk, progress)
        return self.result()

    def domain_prompt(self) -> str:
        """The template's question alone (the part after the text), in the same format (chat or plain, with the
        same demonstrations): the domain premise of domain-conditional PMI."""
        ex = self.examples[0] if self.examples else []
        body = render(self.t.template, self._ctx(None, _TEXT_MARK), self.t.verbalizer, mask=self._mask())
        question = body.split(_TEXT_MARK, 1)[-1].strip() or body.replace(_TEXT_MARK, "").strip()
        return self._assemble_body(question, [] if self.inline_examples else ex)

    def content_free_prompts(self) -> list[str]:
        """The prompt with the content-free inputs ("N/A", "[blank]", "") as its text: contextual calibration."""
        ex = self.examples[0] if self.examples else []
        return [self._assemble(None, cf, ex) for cf in CONTENT_FREE_INPUTS]

    def _domain_offsets(self) -> np.ndarray:
        return self._score_prompts([self.domain_prompt()]).mean(axis=0)

    def _content_free_offsets(self) -> np.ndarray:
        return self._score_prompts(self.content_free_prompts()).mean(axis=0)

    def result(self) -> PromptRunResult:
        """Results for the rows done so far (partial when stopped), calibrated, with metrics when gold exists."""
        n = self.done
        labels = self.t.labels
        notes = list(dict.fromkeys(self.notes))
        scores = None
        method, offsets = "none", None
        if self.cfg.mode == "generate":
            gen = self.generated[:n]
            pred = [map_to_label(g, self.t.verbalizer) for g in gen]
            unm = sum(p == UNMAPPED for p in pred)
            if unm:
                notes.append(f"{unm} of {n} generated answer(s) mention no label word: counted as '{UNMAPPED}'.")
        else:
            gen = None
            raw = self.scores[:n]
            method = self.calibration
            offsets = np.zeros(len(labels))
            if method == "centering" and 0 < n < MIN_TEXTS_FOR_CENTERING:
                method = "contextual"
                notes.append(f"Prior centering needs at least {MIN_TEXTS_FOR_CENTERING} rows (got {n}): used "
                             "contextual calibration instead.")
            if method in ("contextual", "pmi") and n:
                if self.offsets is None or self._offsets_kind != method:
                    self.offsets = self._content_free_offsets() if method == "contextual" else self._domain_offsets()
                    self._offsets_kind = method
                scores = raw - self.offsets
                offsets = np.asarray(self.offsets, dtype=np.float64)
                if method == "contextual":
                    notes.append("Contextual calibration: subtracted each label's score on content-free inputs "
                                 f"({', '.join(repr(c) for c in CONTENT_FREE_INPUTS)}).")
                else:
                    notes.append("Domain-conditional PMI: subtracted each label's score after the template's "
                                 "question alone (no text).")
            else:
                scores, info = calibrate(raw, method)
                method = info.applied
                if len(info.offsets) == len(labels):
                    offsets = np.asarray(info.offsets, dtype=np.float64)
                if info.note:
                    notes.append(info.note)
            pred = [labels[j] for j in scores.argmax(axis=1)] if n else []
        if self.dropped_examples:
            named = list(self.dropped_described.values())
            shown = "; ".join(named[:6]) + (f" and {len(named) - 6} more" if len(named) > 6 else "")
            notes.append(f"{self.dropped_examples} prompt(s) kept fewer few-shot examples than asked, to fit the "
                         f"model's context: dropped the longest ({shown}).")
        if self.truncated:
            notes.append(f"{self.truncated} text(s) were cut to fit the model's context or the "
                         f"{get_settings().max_text_chars}-character limit.")
        gold = [self.all_gold[i] for i in self.rows[:n]] if self.all_gold is not None else None
        metrics = evaluate(gold, pred, labels) if gold is not None and n else None
        if n < len(self.rows):
            notes.append(f"Stopped after {n} of {len(self.rows)} rows.")
        examples = [list(e) for e in self.examples[:n]]
        used = sorted({i for e in examples for i in e})
        example_rows = {i: (self.all_texts[i], (self.all_gold or [""] * (i + 1))[i]) for i in used}
        return PromptRunResult(self.t, self.cfg.mode, self.rows[:n], [self.all_texts[i] for i in self.rows[:n]], gold,
                               pred, labels, [p or "" for p in self.prompts[:n]], scores, gen, notes, metrics,
                               self.seconds, n == len(self.rows),
                               calibration_applied=method, offsets=offsets, config=self.cfg,
                               model_spec=self.model.spec, examples=examples, example_rows=example_rows)


def aggregate_words(raw: np.ndarray, owners: np.ndarray, n_labels: int, how: str = DEFAULT_AGGREGATE) -> np.ndarray:
    """Label scores from answer-word scores: column ``c`` of ``raw`` belongs to label ``owners[c]``; a label's score
    is its best word's ("max") or the mean of its words' ("mean")."""
    owners = np.asarray(owners)
    out = np.zeros((raw.shape[0], n_labels))
    for j in range(n_labels):
        cols = raw[:, owners == j]
        out[:, j] = cols.max(axis=1) if how == "max" else cols.mean(axis=1)
    return out


def default_prompt_model(registry: Any, role: str = "causal_lm") -> Any:
    """The spec prompt runs use by default: for causal LMs the operator's ``ZSS_PROMPT_LM`` when set, else
    :data:`DEFAULT_PROMPT_LM` when it is registered (else the first registered causal LM)."""
    if role == "causal_lm":
        names = [s.name for s in registry.by_role("causal_lm")]
        chosen = get_settings().prompt_lm
        if chosen:
            if chosen not in names:
                raise ModelError(f"ZSS_PROMPT_LM names '{chosen}', which is not a registered causal language model. "
                                 f"Use one of: {', '.join(names) or 'none registered'}.")
            return registry.get(chosen)
        if DEFAULT_PROMPT_LM in names:
            return registry.get(DEFAULT_PROMPT_LM)
    return registry.default(role)


def _check_prompt_calibration(method: str) -> str:
    method = (method or DEFAULT_PROMPT_CALIBRATION).strip().lower()
    if method not in PROMPT_CALIBRATIONS:
        raise UserError(f"Unknown calibration '{method}'. Choose one of: {', '.join(PROMPT_CALIBRATIONS)}.")
    return method


def verbalizer_notes(tokenizer: Any, verbalizer: dict[str, list[str]], normalize: str = "mean") -> list[str]:
    """Warnings about answer words the tokenizer splits into many pieces (their score is mostly about spelling)."""
    split: list[str] = []
    for words in verbalizer.values():
        for phrase in words:
            for word in str(phrase).split():
                n = len(tokenizer(" " + word, add_special_tokens=False)["input_ids"])
                if n >= MANY_PIECES:
                    split.append(f"'{word}' ({n} tokens)")
    if not split:
        return []
    how = {"mean": "by their mean log-probability per token", "sum": "by the sum of their tokens' log-probabilities",
           "first": "by their first token only"}[normalize]
    shown = ", ".join(dict.fromkeys(split[:6])) + (f" and {len(split) - 6} more" if len(split) > 6 else "")
    return [f"{len(split)} answer word(s) are split into {MANY_PIECES} or more tokens by this model: {shown}. They "
            f"are scored {how}; a common single word per label usually scores more reliably."]


def preview(template: PromptTemplate, df: pd.DataFrame, text_column: str, pos: int, *, gold_column: str | None = None,
            config: RunConfig | None = None, lm: LoadedModel | None = None, masked_lm: LoadedModel | None = None,
            embedder: LoadedModel | None = None) -> tuple[str, int]:
    """The exact prompt for one row and its token count (what the page shows live while editing)."""
    run = TemplateRun(template, df, text_column, gold_column, config, lm=lm, masked_lm=masked_lm, embedder=embedder,
                      rows=[pos])
    prompt = run.prompt_for(0)
    return prompt, run.count_tokens(prompt)


def compare(results: Sequence[PromptRunResult]) -> dict[str, Any]:
    """Side-by-side view of up to 4 runs on their common rows: metrics, pairwise agreement, disagreeing rows."""
    if not results:
        raise UserError("Run at least one template before comparing.")
    if len(results) > 4:
        raise UserError("Compare at most 4 templates at a time.")
    names = [r.template.name for r in results]
    if len(set(names)) != len(names):
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    common = sorted(set.intersection(*(set(r.rows) for r in results)))
    if not common:
        raise UserError("These runs share no rows: run the templates on the same rows to compare them.")
    preds = {n: dict(zip(r.rows, r.pred)) for n, r in zip(names, results)}
    summary = []
    for n, r in zip(names, results):
        row: dict[str, Any] = {"template": n, "mode": r.mode, "rows": len(r.rows), "seconds": round(r.seconds, 1)}
        if r.gold is not None:
            gold_map = dict(zip(r.rows, r.gold))
            m = evaluate([gold_map[i] for i in common], [preds[n][i] for i in common], r.labels)
            row.update(accuracy=m["accuracy"], macro_f1=m["macro_f1"])
        if r.mode == "generate":
            row["unmapped"] = r.n_unmapped
        summary.append(row)
    agree = pd.DataFrame(index=names, columns=names, dtype=float)
    for a in names:
        for b in names:
            agree.loc[a, b] = agreement([preds[a][i] for i in common], [preds[b][i] for i in common])
    first = results[0]
    text_map = dict(zip(first.rows, first.texts))
    gold_map = dict(zip(first.rows, first.gold)) if first.gold is not None else None
    dis = []
    for i in common:
        ps = [preds[n][i] for n in names]
        if len(set(ps)) > 1:
            rec: dict[str, Any] = {"row": i, "text": text_map[i]}
            if gold_map is not None:
                rec["gold"] = gold_map[i]
            rec.update(dict(zip(names, ps)))
            dis.append(rec)
    return {"names": names, "rows": common, "summary": pd.DataFrame(summary), "agreement": agree,
            "disagreements": pd.DataFrame(dis)}
