"""Gradient attributions (captum) for the scorers that run a differentiable transformer: LM verbalizer, NLI and
fine-tuned sequence classifiers.

The attributed quantity is the same as occlusion's: the probability of one label over the label set, built here
from the model's outputs the way the scorer builds its scores (mean token log-likelihood of each label's words for
the LM, entailment logits averaged over hypotheses for NLI, class logits for a fine-tuned model), then
:func:`~llm_backend.scorers.base.to_probabilities`'s softmax. Only the *text's* token embeddings are inputs to the
attribution; prompt, label list and hypotheses are held fixed, so every weight belongs to a word of the text.

Two captum methods: :class:`captum.attr.InputXGradient` (one forward and backward: interactive) and
:class:`captum.attr.IntegratedGradients` (``n_steps`` passes from an all-zero embedding baseline: slower, satisfies
completeness). Token weights are summed over the embedding dimension and then over each word's tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from llm_backend.data.labels import Label
from llm_backend.explain.occlusion import token_limit_chars
from llm_backend.explain.words import split_words, tokens_to_words

GRADIENT_METHODS = ("gradient_x_input", "integrated_gradients")
#: Most (rows x tokens) one gradient pass may hold: the LM runs one row per label phrasing, and activations for
#: backward grow with both; beyond this (e.g. 77 labels) the explainer falls back to occlusion and says so.
GRADIENT_TOKEN_BUDGET = 6144


class GradientTooLarge(ValueError):
    """The gradient pass would not fit the budget; the message is meant for the user."""
_MARKER = "\u2063ZSSTEXT\u2063"  # invisible separator: never in user text, marks where the text sits in a prompt


@dataclass
class _Problem:
    """A batch of model rows that all contain the same run of text tokens, and how to read the label probability."""

    model: Any
    input_ids: Any  # (R, L) long
    attention_mask: Any  # (R, L)
    text_start: list[int]  # per row: position of the first text token
    n_text: int
    text_offsets: list[tuple[int, int]]  # character spans of the text tokens inside ``scored_text``
    target: Callable[[Any], Any]  # model output -> scalar tensor (the label's probability)
    scored_text: str
    extra: dict[str, Any] = field(default_factory=dict)  # token_type_ids and the like
    notes: list[str] = field(default_factory=list)
    #: (inputs_embeds, attention_mask, extra) -> output; default: the model itself
    runner: Callable[..., Any] | None = None


def gradient_unavailable_reason(scorer: Any) -> str | None:
    """None when :func:`gradient_attribution` can explain ``scorer``; else why not (the caller falls back)."""
    from llm_backend.scorers.lm import LMVerbalizerScorer
    from llm_backend.scorers.nli import NLIScorer

    if hasattr(scorer, "lm_prompt"):  # a prompt-template run's row (explain/prompt_runs.py)
        if getattr(scorer, "no_gradients_reason", None):
            return scorer.no_gradients_reason
        tok = scorer.loaded.tokenizer
    elif isinstance(scorer, (LMVerbalizerScorer, NLIScorer)):
        tok = scorer.loaded.tokenizer
    else:
        inner = getattr(scorer, "model", None)
        if inner is None or not hasattr(inner, "max_length") or not hasattr(inner, "tokenizer"):
            name = getattr(scorer, "name", type(scorer).__name__)
            return (f"the {name} scorer compares sentence embeddings (or averages several methods), so it has no "
                    "single differentiable path from words to the label")
        tok = inner.tokenizer
    if not getattr(tok, "is_fast", False):
        return "its tokenizer gives no character offsets, so tokens cannot be mapped back to words"
    return None


def _text_token_range(offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    idx = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
    if not idx:
        return 0, 0
    return idx[0], idx[-1] + 1


@dataclass
class LMPrompt:
    """What an LM verbalizer scores for one text: the prompt, where the text sits in it, and the answers.

    Built by :func:`lm_prompt_for` from the zero-shot LM scorer, and by
    :class:`llm_backend.explain.prompt_runs.PromptRowScorer` from a prompt-template run's row, so both are
    explained by the same gradient code.
    """

    prompt: str  # the full prompt with the text in it (as the scorer ran it, text cut where it was cut)
    text_start: int  # character where the text starts in ``prompt``
    text_end: int  # and where it ends
    candidates: list[str]  # answer strings, one per (label, phrasing), as appended after the prompt
    owners: list[int]  # label index of each candidate
    normalize: str = "mean"  # how a candidate of several tokens is scored: mean, sum or first token
    aggregate: str = "max"  # several phrasings of one label: max or mean
    offsets: np.ndarray | None = None  # per-label score offsets (calibration) subtracted before the softmax
    notes: list[str] = field(default_factory=list)


def locate_text(prompt: str, marked: str, marker: str = _MARKER) -> tuple[int, int]:
    """(start, end) of the text in ``prompt``, given the same prompt with ``marker`` in the text's place."""
    p0 = marked.index(marker)
    suffix_len = len(marked) - p0 - len(marker)
    return p0, len(prompt) - suffix_len


def lm_prompt_for(scorer: Any, text: str, labels: Sequence[Label]) -> LMPrompt:
    """The zero-shot LM verbalizer's prompt and answers for ``text`` (as :meth:`LMVerbalizerScorer.score` builds them)."""
    if hasattr(scorer, "lm_prompt"):
        return scorer.lm_prompt(text, labels)
    scorer.notes = []
    prompt = scorer.prompts([text], labels)[0]
    notes = list(scorer.notes)
    start, end = locate_text(prompt, scorer.prompts([_MARKER], labels)[0])
    owners, cands = [], []
    for j, lab in enumerate(labels):
        for phrasing in lab.texts():
            spaced = not scorer.use_chat_template or scorer.answer_prefix.endswith(":")
            owners.append(j)
            cands.append(" " + phrasing if spaced else phrasing)
    return LMPrompt(prompt, start, end, cands, owners, scorer.normalize, scorer.aggregate, None, notes)


def _lm_problem(scorer: Any, text: str, labels: Sequence[Label], label_index: int) -> _Problem:
    """One prompt pass (the only one the text's embeddings enter), then the answers' later tokens from its cache.

    Scoring every answer as its own full row would run the prompt once per (label, phrasing); running it once and
    continuing multi-token answers from its past key/values (gradients flow through the cache) is the same
    computation as :func:`~llm_backend.prompts.lm_scoring.continuation_logprobs`, about ``n_answers`` times cheaper.
    """
    import torch

    from llm_backend.prompts.lm_scoring import derive_cache

    spec = lm_prompt_for(scorer, text, labels)
    loaded = scorer.loaded
    tok = loaded.tokenizer
    prompt = spec.prompt
    scored = prompt[spec.text_start : spec.text_end]
    base = prompt.rstrip(" ")
    bos = getattr(tok, "bos_token", None)
    enc = tok(base, add_special_tokens=not (bos and base.startswith(bos)), return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    t0, t1 = _text_token_range(offsets, spec.text_start, spec.text_end)
    cands = [list(tok(prompt[len(base):] + c, add_special_tokens=False)["input_ids"]) for c in spec.candidates]
    if any(not c for c in cands):
        raise ValueError("an answer is empty after tokenization")
    p = len(ids)
    longest = max(len(c) for c in cands)
    if p + longest > GRADIENT_TOKEN_BUDGET or len(cands) * longest > GRADIENT_TOKEN_BUDGET:
        raise GradientTooLarge(f"{len(cands)} label phrasings after a {p}-token prompt is too large a gradient pass "
                               "on this machine")
    multi = [r for r, c in enumerate(cands) if len(c) > 1]
    width = max((len(cands[r]) - 1 for r in multi), default=0)
    model = loaded.model
    owners_t = torch.tensor(spec.owners)
    n_labels = len(labels)
    offsets_t = torch.tensor(np.zeros(n_labels) if spec.offsets is None else np.asarray(spec.offsets, dtype=np.float64))

    def runner(inputs_embeds: Any, attention_mask: Any, **_: Any) -> Any:
        head = model.get_output_embeddings()
        out = model.base_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=bool(multi))
        first = torch.log_softmax(head(out.last_hidden_state[:, -1]).double(), dim=-1)[0]  # (V,)
        later = None
        if multi:
            device = inputs_embeds.device
            c_ids = torch.zeros((len(multi), width), dtype=torch.long)
            c_mask = torch.zeros((len(multi), width), dtype=torch.long)
            for q, r in enumerate(multi):
                c_ids[q, : len(cands[r]) - 1] = torch.tensor(cands[r][:-1])
                c_mask[q, : len(cands[r]) - 1] = 1
            mask = torch.cat([attention_mask.expand(len(multi), -1), c_mask.to(device)], dim=1)
            pos = (p + torch.arange(width)).unsqueeze(0).expand(len(multi), -1).to(device)
            h = model.base_model(input_ids=c_ids.to(device), attention_mask=mask, position_ids=pos,
                                 past_key_values=derive_cache(out.past_key_values, repeat=len(multi))).last_hidden_state
            later = torch.log_softmax(head(h).double(), dim=-1)  # (M, width, V)
        return first, later

    def target(outputs: Any) -> Any:
        first, later = outputs
        per_cand = []
        for r, c in enumerate(cands):
            lps = [first[c[0]]]
            if len(c) > 1:
                q = multi.index(r)
                lps += [later[q, i, c[i + 1]] for i in range(len(c) - 1)]
            lp = torch.stack(lps)
            per_cand.append(lp[0] if spec.normalize == "first" else lp.mean() if spec.normalize == "mean" else lp.sum())
        cand_scores = torch.stack(per_cand)
        owners_d = owners_t.to(cand_scores.device)
        label_scores = []
        for j in range(n_labels):
            s = cand_scores[owners_d == j]
            label_scores.append(s.max() if spec.aggregate == "max" else s.mean())
        z = torch.stack(label_scores) - offsets_t.to(cand_scores.device)
        return torch.softmax(z, dim=0)[label_index]

    ids_t = torch.tensor([ids], dtype=torch.long)
    rel = [(max(s - spec.text_start, 0), max(min(e, spec.text_end) - spec.text_start, 0)) for s, e in offsets[t0:t1]]
    return _Problem(model, ids_t, torch.ones_like(ids_t), [t0], t1 - t0, rel, target, scored, notes=spec.notes,
                    runner=runner)


def _pair_problem(model: Any, tok: Any, text: str, seconds: Sequence[str] | None, max_length: int,
                  head: Callable[[Any], Any]) -> _Problem:
    """Rows of (text[, second segment]) for an encoder classifier; the text is cut so every row keeps all of it."""

    longest_second = max((len(tok(s, add_special_tokens=False)["input_ids"]) for s in seconds), default=0) if seconds else 0
    room = max_length - longest_second - (3 if seconds else 2)
    limit = token_limit_chars(tok, text, room)
    notes = []
    scored = text if limit is None else text[:limit]
    if limit is not None:
        notes.append(f"The text is longer than the model reads ({room} tokens): only the first {limit} characters "
                     "were scored and are attributed.")
    firsts = [scored] * (len(seconds) if seconds else 1)
    enc = tok(firsts, list(seconds) if seconds else None, padding=True, return_tensors="pt",
              return_offsets_mapping=True)
    offsets = enc.pop("offset_mapping")
    starts, counts = [], []
    for r in range(len(firsts)):
        pos = [i for i, sid in enumerate(enc.sequence_ids(r)) if sid == 0]
        starts.append(pos[0] if pos else 0)
        counts.append(len(pos))
    if len(set(counts)) != 1:
        raise ValueError("text tokens differ between rows")
    n = counts[0]
    rel = [tuple(int(v) for v in offsets[0, starts[0] + i].tolist()) for i in range(n)]
    extra = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
    return _Problem(model, enc["input_ids"], enc["attention_mask"], starts, n, rel, head, scored, extra, notes)


def _nli_problem(scorer: Any, text: str, labels: Sequence[Label], label_index: int) -> _Problem:
    import torch

    hyps = scorer.hypotheses(labels)
    flat = [h for hs in hyps for h in hs]
    owners = torch.tensor([j for j, hs in enumerate(hyps) for _ in hs])
    entail = scorer.entail_id

    def head(out: Any) -> Any:
        e = out.logits.double()[:, entail]
        own = owners.to(e.device)
        per_label = torch.stack([e[own == j].mean() for j in range(len(labels))])
        return torch.softmax(per_label, dim=0)[label_index]

    return _pair_problem(scorer.loaded.model, scorer.loaded.tokenizer, text, flat, scorer.max_length, head)


def _sequence_problem(scorer: Any, text: str, labels: Sequence[Label], label_index: int) -> _Problem:
    import torch

    inner = scorer.model
    index = {c: i for i, c in enumerate(inner.classes)}
    folded = {c.strip().casefold(): i for c, i in index.items()}
    cols = [index.get(l.name, folded.get(l.name.strip().casefold())) for l in labels]
    if cols[label_index] is None:
        raise ValueError("label unknown to the model")

    def head(out: Any) -> Any:
        logits = out.logits.double()[0]
        z = torch.stack([logits[c] if c is not None else logits.new_tensor(-1e9) for c in cols])
        return torch.softmax(z, dim=0)[label_index]

    return _pair_problem(inner.model, inner.tokenizer, text, None, inner.max_length, head)


def _problem(scorer: Any, text: str, labels: Sequence[Label], label_index: int) -> _Problem:
    from llm_backend.scorers.lm import LMVerbalizerScorer
    from llm_backend.scorers.nli import NLIScorer

    if isinstance(scorer, LMVerbalizerScorer) or hasattr(scorer, "lm_prompt"):
        return _lm_problem(scorer, text, labels, label_index)
    if isinstance(scorer, NLIScorer):
        return _nli_problem(scorer, text, labels, label_index)
    return _sequence_problem(scorer, text, labels, label_index)


def _lock(scorer: Any) -> Any:
    loaded = getattr(scorer, "loaded", None)
    inner = getattr(scorer, "model", None)
    return getattr(inner, "lock", None) or loaded.lock


def gradient_attribution(scorer: Any, text: str, labels: Sequence[Label], label_index: int,
                         method: str = "gradient_x_input", n_steps: int = 16) -> tuple[str, list, np.ndarray, list[str]]:
    """(scored text, its words, one weight per word, notes) from captum on the text's token embeddings."""
    import torch
    from captum.attr import InputXGradient, IntegratedGradients

    labels = list(labels)
    with _lock(scorer):
        prob = _problem(scorer, text, labels, label_index)
        model = prob.model
        was_training = model.training
        model.eval()
        embed = model.get_input_embeddings()
        try:
            with torch.enable_grad():
                device = next(model.parameters()).device
                ids = prob.input_ids.to(device)
                mask = prob.attention_mask.to(device)
                extra = {k: v.to(device) for k, v in prob.extra.items()}
                base_emb = embed(ids).detach()
                s0 = prob.text_start[0]
                x0 = base_emb[0, s0 : s0 + prob.n_text].unsqueeze(0).clone().requires_grad_()

                def forward(xb: Any) -> Any:
                    outs = []
                    for b in range(xb.shape[0]):
                        rows = [torch.cat([base_emb[r, :s], xb[b], base_emb[r, s + prob.n_text :]], dim=0)
                                for r, s in enumerate(prob.text_start)]
                        run = prob.runner or model
                        out = run(inputs_embeds=torch.stack(rows), attention_mask=mask, **extra)
                        outs.append(prob.target(out))
                    return torch.stack(outs)

                if prob.n_text == 0:
                    token_attr = np.zeros(0)
                elif method == "integrated_gradients":
                    attr = IntegratedGradients(forward).attribute(x0, baselines=torch.zeros_like(x0), n_steps=n_steps,
                                                                  internal_batch_size=1)
                    token_attr = attr.sum(-1)[0].detach().float().cpu().numpy()
                else:
                    attr = InputXGradient(forward).attribute(x0)
                    token_attr = attr.sum(-1)[0].detach().float().cpu().numpy()
        finally:
            model.train(was_training)
    words = split_words(prob.scored_text)
    return prob.scored_text, words, tokens_to_words(prob.text_offsets, token_attr, words), prob.notes
