"""Log-likelihood of candidate continuations (label words) after a prompt, computed with one prompt pass.

Verbalizer scoring asks "how likely is the model to answer ' positive' after this prompt?" for every label. The
obvious way runs prompt + candidate through the model once per candidate, so k labels cost k full prompt passes.
Here each prompt runs once: the last position gives the first candidate token's log-probability for *all*
candidates, and multi-token candidates continue from the prompt's KV cache (copied across the candidates' batch)
so only the few candidate tokens are computed again. :func:`continuation_logprobs_naive` keeps the obvious
version as the reference the tests and the benchmark compare against.

Tokenization at the boundary follows the lm-evaluation-harness rule: trailing spaces of the prompt move to the
front of the candidate ("Answer: " + "positive" is scored as "Answer:" + " positive"), because BPE vocabularies
attach the space to the following word. Both paths use exactly the same token ids, so they agree to float error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from llm_backend.core.errors import ModelError, UserError
from llm_backend.core.progress import Progress, report
from llm_backend.models.loaded import LoadedModel

log = logging.getLogger(__name__)

NORMALIZE = ("mean", "sum")
#: Tokens (batch rows x sequence length) per forward pass: bounds memory on CPU and small GPUs alike.
TOKEN_BUDGET = 8192


@dataclass
class ScoringNotes:
    """What happened on the way that the user should know about (prompts shortened to fit the context)."""

    truncated: list[int] = field(default_factory=list)  # indices of prompts cut to fit
    max_prompt_tokens: int = 0
    messages: list[str] = field(default_factory=list)

    def add_truncation_message(self) -> None:
        if self.truncated:
            self.messages.append(
                f"{len(self.truncated)} prompt(s) were longer than the model's context allows "
                f"({self.max_prompt_tokens} tokens) and were shortened in the middle."
            )


def model_context_length(loaded: LoadedModel) -> int:
    """The longest sequence the model was built for (position embeddings), capped by the tokenizer's own limit."""
    config = getattr(loaded.model, "config", None)
    n = None
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None) if config is not None else None
        if isinstance(value, int) and value > 0:
            n = value
            break
    tok_max = getattr(loaded.tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:  # 1e30 means "not set"
        n = min(n, tok_max) if n else tok_max
    return n or 2048


def build_chat_prompt(tokenizer: Any, user_message: str, assistant_prefix: str = "", system: str | None = None) -> str:
    """The prompt an instruct model expects: its chat template around ``user_message``, then the answer's start.

    Instruct models answer far better inside their own chat format. Models without a chat template get a plain
    "message, newline, prefix" layout, which is what base models see in ordinary text.
    """
    if getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user_message}
        ]
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return str(text) + assistant_prefix
        except Exception as exc:  # a broken template in a user model folder: fall back, do not fail the run
            log.warning("chat template failed (%s); using a plain prompt", exc)
    head = f"{system}\n\n" if system else ""
    return f"{head}{user_message}\n{assistant_prefix}"


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _split_boundary(prompt: str, candidate: str) -> tuple[str, str]:
    """Move the prompt's trailing spaces onto the candidate: BPE tokens carry the space before a word.

    The joined text stays exactly ``prompt + candidate``; only where the token boundary falls changes.
    """
    stripped = prompt.rstrip(" ")
    return stripped, prompt[len(stripped):] + candidate


def _encode(tokenizer: Any, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def _shorten(ids: list[int], budget: int) -> list[int]:
    """Cut the middle out of a too-long prompt: the instructions lead and the question/answer cue close it."""
    if len(ids) <= budget:
        return ids
    tail = min(128, budget // 4)
    return ids[: budget - tail] + ids[len(ids) - tail:]


@dataclass
class _Prepared:
    prompt_ids: list[list[int]]
    cand_ids: list[list[list[int]]]  # [prompt][candidate] -> token ids (at least one)
    notes: ScoringNotes


def _normalise_candidates(prompts: Sequence[str], candidates: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    if len(candidates) == 0:
        raise UserError("No candidate answers to score: give at least one label word.")
    if all(isinstance(c, str) for c in candidates):
        return [list(candidates)] * len(prompts)  # type: ignore[list-item]
    per = [list(c) for c in candidates]  # type: ignore[arg-type]
    if len(per) != len(prompts):
        raise UserError(f"Got {len(per)} candidate lists for {len(prompts)} prompts; give one list per prompt.")
    widths = {len(c) for c in per}
    if len(widths) != 1 or 0 in widths:
        raise UserError("Every prompt needs the same, non-zero number of candidates.")
    return per


def _prepare(
    loaded: LoadedModel,
    prompts: Sequence[str],
    candidates: Sequence[str] | Sequence[Sequence[str]],
    max_prompt_tokens: int | None,
) -> _Prepared:
    tok = loaded.tokenizer
    if tok is None:
        raise ModelError(f"'{loaded.spec.name}' has no tokenizer, so it cannot score label words.")
    per_prompt = _normalise_candidates(prompts, candidates)
    enc_cache: dict[str, list[int]] = {}  # label words repeat across prompts: encode each once

    def enc_cand(text: str) -> list[int]:
        if text not in enc_cache:
            enc_cache[text] = _encode(tok, text, special=False)
        return enc_cache[text]

    prompt_ids: list[list[int]] = []
    cand_ids: list[list[list[int]]] = []
    for prompt, cands in zip(prompts, per_prompt):
        base = prompt.rstrip(" ")
        row = []
        for cand in cands:
            ids = enc_cand(_split_boundary(prompt, cand)[1])
            if not ids:
                raise UserError(f"The candidate answer {cand!r} is empty after tokenization.")
            row.append(ids)
        # Chat templates already write the BOS token as text; adding it again would double it.
        bos = getattr(tok, "bos_token", None)
        prompt_ids.append(_encode(tok, base, special=not (bos and base.startswith(bos))))
        cand_ids.append(row)

    max_cand = max((len(c) for row in cand_ids for c in row), default=1)
    context = model_context_length(loaded)
    budget = context - max_cand
    if max_prompt_tokens is not None:
        budget = min(budget, int(max_prompt_tokens))
    if budget < 8:
        raise UserError(f"The label words are too long for the model's context ({context} tokens).")
    notes = ScoringNotes(max_prompt_tokens=budget)
    for i, ids in enumerate(prompt_ids):
        if len(ids) > budget:
            prompt_ids[i] = _shorten(ids, budget)
            notes.truncated.append(i)
    notes.add_truncation_message()
    if any(len(ids) == 0 for ids in prompt_ids):
        raise UserError("A prompt is empty: the model needs at least one token before the answer.")
    return _Prepared(prompt_ids, cand_ids, notes)


def _reduce(token_logprobs: Sequence[float], normalize: str) -> float:
    total = float(np.sum(token_logprobs))
    return total / len(token_logprobs) if normalize == "mean" else total


def _check_normalize(normalize: str) -> None:
    if normalize not in NORMALIZE:
        raise UserError(f"normalize must be one of {', '.join(NORMALIZE)}, not {normalize!r}.")


def _record(notes: ScoringNotes, out: list[str] | None) -> None:
    if out is not None:
        out.extend(notes.messages)
    for m in notes.messages:
        log.info(m)


def continuation_logprobs_naive(
    loaded: LoadedModel,
    prompts: Sequence[str],
    candidates: Sequence[str] | Sequence[Sequence[str]],
    *,
    normalize: str = "mean",
    progress: Progress = None,
    max_prompt_tokens: int | None = None,
    notes: list[str] | None = None,
) -> np.ndarray:
    """Reference implementation: one full forward pass of prompt + candidate for every pair. Slow but obvious."""
    import torch

    _check_normalize(normalize)
    prep = _prepare(loaded, prompts, candidates, max_prompt_tokens)
    n, k = len(prep.prompt_ids), len(prep.cand_ids[0]) if prep.cand_ids else 0
    out = np.zeros((n, k), dtype=np.float64)
    device = loaded.device.torch_device if loaded.device else "cpu"
    with loaded.lock, torch.inference_mode():
        for i, (p_ids, row) in enumerate(zip(prep.prompt_ids, prep.cand_ids)):
            for j, c_ids in enumerate(row):
                ids = torch.tensor([p_ids + c_ids], device=device)
                logits = loaded.model(input_ids=ids).logits[0].float()
                logp = torch.log_softmax(logits[len(p_ids) - 1: -1], dim=-1)
                target = torch.tensor(c_ids, device=device)
                out[i, j] = _reduce(logp.gather(1, target[:, None])[:, 0].cpu().numpy(), normalize)
            report(progress, i + 1, n)
    _record(prep.notes, notes)
    return out


def _prompt_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Group prompts of similar length (sorted) so left padding wastes little, under a token budget per batch."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = max([lengths[j] for j in cur] + [lengths[i]])
        if cur and longest * (len(cur) + 1) > budget:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def _select_cache(cache: Any, rows: "torch.Tensor") -> Any:  # noqa: F821
    """A new DynamicCache holding the chosen batch rows of ``cache`` (one copy per candidate row)."""
    from transformers import DynamicCache

    return DynamicCache([(layer.keys.index_select(0, rows), layer.values.index_select(0, rows)) for layer in cache.layers])


def continuation_logprobs(
    loaded: LoadedModel,
    prompts: Sequence[str],
    candidates: Sequence[str] | Sequence[Sequence[str]],
    *,
    normalize: str = "mean",
    progress: Progress = None,
    max_prompt_tokens: int | None = None,
    notes: list[str] | None = None,
    token_budget: int = TOKEN_BUDGET,
) -> np.ndarray:
    """Log-likelihood of each candidate after each prompt, shape (n_prompts, n_candidates).

    ``candidates`` is one list shared by all prompts or one list per prompt (same length each). ``normalize="mean"``
    divides by the candidate's token count so long label words are not penalised; ``"sum"`` gives the joint
    log-probability. Prompts longer than the context (or ``max_prompt_tokens``) are shortened in the middle and a
    message is appended to ``notes``. Each prompt runs once; multi-token candidates reuse its KV cache.
    """
    import torch

    _check_normalize(normalize)
    prep = _prepare(loaded, prompts, candidates, max_prompt_tokens)
    n = len(prep.prompt_ids)
    if n == 0:
        return np.zeros((0, len(candidates) if all(isinstance(c, str) for c in candidates) else 0))
    k = len(prep.cand_ids[0])
    out = np.zeros((n, k), dtype=np.float64)
    device = loaded.device.torch_device if loaded.device else "cpu"
    pad_id = getattr(loaded.tokenizer, "pad_token_id", None)
    pad_id = 0 if pad_id is None else int(pad_id)
    lengths = [len(p) for p in prep.prompt_ids]
    done = 0
    with loaded.lock, torch.inference_mode():
        for batch in _prompt_batches(lengths, token_budget):
            width = max(lengths[i] for i in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, i in enumerate(batch):  # left padding: every prompt's last token sits in the last column
                ids[r, width - lengths[i]:] = torch.tensor(prep.prompt_ids[i])
                mask[r, width - lengths[i]:] = 1
            pos = (mask.cumsum(1) - 1).clamp(min=0)
            ids, mask, pos = ids.to(device), mask.to(device), pos.to(device)
            result = loaded.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            first = torch.log_softmax(result.logits[:, -1, :].float(), dim=-1)  # (batch, vocab)
            cache = result.past_key_values
            del result

            # Pairs whose candidate has more than one token continue from the cache.
            pairs: list[tuple[int, int, int]] = []  # (batch row, prompt index, candidate index)
            per_pair: dict[tuple[int, int], list[float]] = {}
            for r, i in enumerate(batch):
                for j, c_ids in enumerate(prep.cand_ids[i]):
                    per_pair[(i, j)] = [float(first[r, c_ids[0]])]
                    if len(c_ids) > 1:
                        pairs.append((r, i, j))
            rows_per_chunk = max(1, token_budget // (width + 1))
            for start in range(0, len(pairs), rows_per_chunk):
                chunk = pairs[start:start + rows_per_chunk]
                rest = [prep.cand_ids[i][j] for _, i, j in chunk]
                t = max(len(c) for c in rest) - 1  # feed tokens 0..T-2, predict tokens 1..T-1
                c_in = torch.full((len(chunk), t), pad_id, dtype=torch.long)
                c_mask = torch.zeros((len(chunk), t), dtype=torch.long)
                for q, c in enumerate(rest):
                    c_in[q, : len(c) - 1] = torch.tensor(c[:-1])
                    c_mask[q, : len(c) - 1] = 1
                rows = torch.tensor([r for r, _, _ in chunk], device=device)
                full_mask = torch.cat([mask.index_select(0, rows), c_mask.to(device)], dim=1)
                start_pos = torch.tensor([lengths[i] for _, i, _ in chunk], device=device)[:, None]
                c_pos = start_pos + torch.arange(t, device=device)[None, :]
                sub = loaded.model(input_ids=c_in.to(device), attention_mask=full_mask, position_ids=c_pos,
                                   past_key_values=_select_cache(cache, rows), use_cache=True)
                logp = torch.log_softmax(sub.logits.float(), dim=-1)
                for q, (_, i, j) in enumerate(chunk):
                    c = prep.cand_ids[i][j]
                    target = torch.tensor(c[1:], device=device)
                    per_pair[(i, j)].extend(logp[q, : len(c) - 1].gather(1, target[:, None])[:, 0].tolist())
                del sub, logp
            for (i, j), values in per_pair.items():
                out[i, j] = _reduce(values, normalize)
            del cache
            done += len(batch)
            report(progress, done, n)
    _record(prep.notes, notes)
    return out


def candidate_token_counts(loaded: LoadedModel, candidates: Sequence[str], prompt_end: str = " ") -> list[int]:
    """How many tokens each candidate costs after a prompt ending in ``prompt_end`` (for the UI and benches)."""
    return [len(_encode(loaded.tokenizer, _split_boundary(prompt_end, c)[1], special=False)) for c in candidates]
