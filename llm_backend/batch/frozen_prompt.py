"""Frozen prompt-template classifiers: a causal-LM verbalizer prompt (prompt page / ``prompt --mode score``) saved
so that any row scores on its own.

A prompt run depends on its corpus in two ways: few-shot demonstrations are drawn from the corpus's gold rows, and
calibration offsets (centering means, content-free or domain-premise scores) are learnt on it. Freezing stores the
*results*: the demonstrations most rows saw (the fixed, shared part of every prompt), the offsets as numbers, the
Jinja source, the verbalizer, and how multi-token answers and several answer words per label are scored; plus a
reference to the LM (registry name / folder, never its weights). Everything is JSON inside ``classifier.json`` (the
offsets go to the safetensors file like every other component), covered by the artifact's fingerprint.

Scoring a row never looks at another row:

- its prompt is built by the same code as the prompt run (:class:`llm_backend.prompts.runner.TemplateRun`, given
  the fixed demonstrations), text cut to the context as there;
- the shared start of every prompt (chat header, instruction, demonstrations) is fixed once from the template alone
  (not from the rows of a batch) and its KV cache computed once per worker; each row's own tokens then run after it.
  Rows are padded into batches; padding is masked, so a row's score changes only by float rounding with its
  batch-mates (``tests/batch/test_batch_prompt.py`` checks any split gives the same scores within 1e-4).

Freezing a run is :mod:`llm_backend.batch.freeze_prompt`; this module holds what loading and scoring need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from llm_backend.core.errors import TemplateError, UserError
from llm_backend.core.progress import Progress, report

#: Limits when loading someone else's artifact (a real one holds a template of a few hundred characters and at most
#: a few dozen demonstrations).
MAX_TEMPLATE_CHARS = 20_000
MAX_DEMONSTRATIONS = 64
MAX_DEMO_CHARS = 20_000
MAX_WORDS = 50
AGGREGATES = ("max", "mean")
_GOLD = "__zss_demo_label"
#: The text of the fixed full prompt the shared start is measured against (any short text does).
PROBE_TEXT = "N/A"


class PromptFreezeError(UserError):
    """A prompt run that cannot be frozen (mode, demonstration choice, template columns)."""


class PromptArtifactError(UserError):
    """The prompt stored in a classifier folder is not valid (``load_classifier`` reports it as a ClassifierError)."""


@dataclass
class PromptSetup:
    """The fixed part of a prompt classifier (validated)."""

    template: str
    verbalizer: dict[str, list[str]]
    demonstrations: list[dict[str, str]]
    normalize: str = "mean"
    aggregate: str = "max"  # freeze always writes the run's own value; old artifacts carry theirs
    use_chat: bool = True
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "verbalizer": {k: list(v) for k, v in self.verbalizer.items()},
                "demonstrations": [{"text": d["text"], "label": d["label"]} for d in self.demonstrations],
                "normalize": self.normalize, "aggregate": self.aggregate, "use_chat": bool(self.use_chat),
                "name": self.name}


def _bad(what: str) -> UserError:
    return PromptArtifactError(f"The classifier's prompt is not valid: {what}.")


def check_template_columns(source: str) -> None:
    """A frozen prompt may use the text and the reserved names, not other columns (``batch`` reads only the text)."""
    from llm_backend.prompts.templates import check_template, placeholders

    if "row" in placeholders(source):
        raise PromptFreezeError("The template reads other columns through {{ row[...] }}; a frozen classifier gets only "
                                "the text column. Use {{ text }} only to export it.")
    try:
        check_template(source, (), mode="score")
    except TemplateError as exc:
        raise PromptFreezeError(f"The template uses more than the text column, which batch scoring does not read: "
                                f"{exc}") from None


def parse_prompt(value: Any, label_names: Sequence[str]) -> dict[str, Any]:
    """Validate the ``prompt`` object of a component (hostile input): types, sizes, the template through the
    sandbox's parser, the verbalizer against the labels, demonstrations against the verbalizer."""
    from llm_backend.prompts.lm_scoring import NORMALIZE
    from llm_backend.prompts.templates import check_verbalizer

    if not isinstance(value, dict):
        raise _bad("'prompt' must be an object")
    src = value.get("template")
    if not isinstance(src, str) or not src.strip() or len(src) > MAX_TEMPLATE_CHARS:
        raise _bad(f"the template must be text of at most {MAX_TEMPLATE_CHARS:,} characters")
    try:
        check_template_columns(src)  # parses through the locked sandbox: syntax, names, filters
    except (TemplateError, PromptFreezeError) as exc:
        raise _bad(f"template: {str(exc)[:300]}") from None
    verb = value.get("verbalizer")
    if not isinstance(verb, dict) or not all(isinstance(w, list) and len(w) <= MAX_WORDS
                                             and all(isinstance(x, str) and len(x) <= 300 for x in w)
                                             for w in verb.values()):
        raise _bad("the verbalizer must map labels to lists of answer words")
    try:
        verb = check_verbalizer(verb)
    except TemplateError as exc:
        raise _bad(f"verbalizer: {exc}") from None
    if list(verb) != list(label_names):
        raise _bad("the verbalizer's labels are not the classifier's labels")
    demos = value.get("demonstrations") or []
    if not isinstance(demos, list) or len(demos) > MAX_DEMONSTRATIONS:
        raise _bad(f"demonstrations must be a list of at most {MAX_DEMONSTRATIONS}")
    clean = []
    for d in demos:
        if not (isinstance(d, dict) and isinstance(d.get("text"), str) and len(d["text"]) <= MAX_DEMO_CHARS
                and d.get("label") in verb):
            raise _bad("each demonstration needs a text and one of the labels")
        clean.append({"text": d["text"], "label": d["label"]})
    normalize, aggregate, chat = value.get("normalize"), value.get("aggregate"), value.get("use_chat")
    if normalize not in NORMALIZE:
        raise _bad(f"normalize must be one of {', '.join(NORMALIZE)}")
    if aggregate not in AGGREGATES:
        raise _bad(f"aggregate must be one of {', '.join(AGGREGATES)}")
    if not isinstance(chat, bool):
        raise _bad("use_chat must be true or false")
    name = value.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise _bad("name must be text of at most 200 characters")
    return PromptSetup(src, verb, clean, normalize, aggregate, chat, name).to_json()


class PromptScorer:
    """Scores texts with a frozen prompt: raw (uncalibrated) verbalizer log-likelihoods, shape (n, labels)."""

    name = "prompt"
    kind = "logprob"

    def __init__(self, loaded: Any, prompt: dict[str, Any]) -> None:
        from llm_backend.prompts.lm_scoring import PrefixStore
        from llm_backend.prompts.templates import PromptTemplate

        self.loaded = loaded
        self.setup = PromptSetup(**prompt)
        self.template = PromptTemplate(self.setup.name or "frozen prompt", self.setup.template, self.setup.verbalizer)
        self.store = PrefixStore(max_items=1)
        self._prefix: tuple[int, ...] | None = None
        self.notes: list[str] = []

    def template_run(self, texts: Sequence[str]) -> Any:
        """A :class:`TemplateRun` over the demonstrations + ``texts`` in which every text gets the demonstrations."""
        from llm_backend.prompts.runner import RunConfig, TemplateRun

        s = self.setup
        n_demo = len(s.demonstrations)
        df = pd.DataFrame({"text": [d["text"] for d in s.demonstrations] + list(texts),
                           _GOLD: [d["label"] for d in s.demonstrations] + [""] * len(texts)})
        cfg = RunConfig(mode="score", few_shot=0, calibration="none", normalize=s.normalize, aggregate=s.aggregate,
                        use_chat=s.use_chat, share_prefix=True)
        run = TemplateRun(self.template, df, "text", _GOLD, cfg, lm=self.loaded, rows=range(n_demo, len(df)))
        run.examples = [list(range(n_demo)) for _ in run.rows]
        return run

    def _fixed_prefix(self, cands: Sequence[str]) -> tuple[int, ...]:
        """Token ids of the row-independent prompt start, with its KV cache computed once.

        The same rule as the prompt run's (:func:`llm_backend.prompts.lm_scoring.shared_prefix` with the
        demonstrations' shared start as hint): the tokens the hint shares with a full prompt, minus one (the last
        may merge with a text's first characters). The full prompt is a fixed probe, not a row of the batch.
        """
        from llm_backend.prompts.lm_scoring import MIN_SHARED_TOKENS, _common_prefix_len, _encode, _prepare, run_prefix

        if self._prefix is None:
            probe = self.template_run([PROBE_TEXT])
            seq = _prepare(self.loaded, [probe.prompt_for(0)], cands, None).prompt_ids[0]
            tok = self.loaded.tokenizer
            hint_ids = _encode(tok, probe.shared_start(0), special=False)
            bos = getattr(tok, "bos_token_id", None)
            if seq[:1] == [bos] and hint_ids[:1] != [bos]:
                hint_ids = [bos] + hint_ids
            n = min(_common_prefix_len([hint_ids, seq]) - 1, len(seq) - 1)
            prefix = tuple(seq[:max(0, n)])
            if len(prefix) >= MIN_SHARED_TOKENS:
                import torch

                with self.loaded.lock, torch.inference_mode():
                    self.store.put(prefix, run_prefix(self.loaded, prefix))
            else:
                prefix = ()
            self._prefix = prefix
        return self._prefix

    def score(self, texts: Sequence[str], progress: Progress = None) -> np.ndarray:
        from llm_backend.prompts.lm_scoring import _prepare, continuation_logprobs

        k = len(self.setup.verbalizer)
        if not texts:
            return np.zeros((0, k))
        run = self.template_run(texts)
        prompts = [run.prompt_for(p) for p in range(len(texts))]
        cands, owners = run._candidates()  # the prompt run's own candidate strings (chat: no leading space)
        prefix = self._fixed_prefix(cands)
        ids = _prepare(self.loaded, prompts, cands, None).prompt_ids
        n = len(prefix)
        shared = [i for i, s in enumerate(ids) if n and len(s) > n and tuple(s[:n]) == prefix]
        alone = sorted(set(range(len(prompts))) - set(shared))
        raw = np.zeros((len(prompts), len(cands)))
        self.notes = []
        for rows, share in ((shared, True), (alone, False)):
            if rows:
                # share=True finds the fixed prefix in the store (every row starts with it); rows that do not (a
                # tokenizer merge at the boundary) run in full, so no row's prefix depends on its batch-mates.
                raw[rows] = continuation_logprobs(self.loaded, [prompts[i] for i in rows], cands,
                                                  normalize=self.setup.normalize, share_prefix=share,
                                                  prefix_store=self.store if share else None, notes=self.notes)
        from llm_backend.prompts.runner import aggregate_words

        out = aggregate_words(raw, owners, k, self.setup.aggregate)  # the artifact's own aggregation, not the default
        report(progress, len(texts), len(texts))
        return out
