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

    if isinstance(scorer, (LMVerbalizerScorer, NLIScorer)):
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


def _lm_problem(scorer: Any, text: str, labels: Sequence[Label], label_index: int) -> _Problem:
    import torch

    tok = scorer.loaded.tokenizer
    scorer.notes = []
    prompt = scorer.prompts([text], labels)[0]
    notes = list(scorer.notes)
    marked = scorer.prompts([_MARKER], labels)[0]
    p0 = marked.index(_MARKER)
    suffix_len = len(marked) - p0 - len(_MARKER)
    scored = prompt[p0 : len(prompt) - suffix_len]
    base = prompt.rstrip(" ")
    bos = getattr(tok, "bos_token", None)
    enc = tok(base, add_special_tokens=not (bos and base.startswith(bos)), return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    t0, t1 = _text_token_range(offsets, p0, p0 + len(scored))
    owners, cands = [], []
    for j, lab in enumerate(labels):
        for phrasing in lab.texts():
            spaced = not scorer.use_chat_template or scorer.answer_prefix.endswith(":")
            cand = prompt[len(base):] + (" " + phrasing if spaced else phrasing)
            owners.append(j)
            cands.append(list(tok(cand, add_special_tokens=False)["input_ids"]))
    width = len(ids) + max(len(c) for c in cands)
    if len(cands) * width > GRADIENT_TOKEN_BUDGET:
        raise GradientTooLarge(f"{len(cands)} label phrasings × {width} prompt tokens is too large a gradient pass on "
                               "this machine")
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    rows = torch.full((len(cands), width), pad, dtype=torch.long)
    mask = torch.zeros((len(cands), width), dtype=torch.long)
    for r, c in enumerate(cands):
        seq = ids + c
        rows[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
    owners_t = torch.tensor(owners)
    n_labels = len(labels)
    p = len(ids)
    longest = max(len(c) for c in cands)
    model = scorer.loaded.model

    def runner(inputs_embeds: Any, attention_mask: Any, **_: Any) -> Any:
        # The vocabulary projection only where answer tokens are predicted: (R, longest, V), not (R, width, V).
        hidden = model.base_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
        return model.get_output_embeddings()(hidden[:, p - 1 : p - 1 + longest])

    def target(logits: Any) -> Any:
        logp = torch.log_softmax(logits.float(), dim=-1)
        per_cand = []
        for r, c in enumerate(cands):
            pos = torch.arange(0, len(c))
            tok_lp = logp[r, pos, torch.tensor(c)]
            per_cand.append(tok_lp.mean() if scorer.normalize == "mean" else tok_lp.sum())
        cand_scores = torch.stack(per_cand)
        label_scores = []
        for j in range(n_labels):
            s = cand_scores[owners_t == j]
            label_scores.append(s.max() if scorer.aggregate == "max" else s.mean())
        return torch.softmax(torch.stack(label_scores), dim=0)[label_index]

    rel = [(max(s - p0, 0), max(min(e, p0 + len(scored)) - p0, 0)) for s, e in offsets[t0:t1]]
    return _Problem(model, rows, mask, [t0] * len(cands), t1 - t0, rel, target, scored, notes=notes, runner=runner)


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
        e = out.logits.float()[:, entail]
        per_label = torch.stack([e[owners == j].mean() for j in range(len(labels))])
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
        logits = out.logits.float()[0]
        z = torch.stack([logits[c] if c is not None else logits.new_tensor(-1e9) for c in cols])
        return torch.softmax(z, dim=0)[label_index]

    return _pair_problem(inner.model, inner.tokenizer, text, None, inner.max_length, head)


def _problem(scorer: Any, text: str, labels: Sequence[Label], label_index: int) -> _Problem:
    from llm_backend.scorers.lm import LMVerbalizerScorer
    from llm_backend.scorers.nli import NLIScorer

    if isinstance(scorer, LMVerbalizerScorer):
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
