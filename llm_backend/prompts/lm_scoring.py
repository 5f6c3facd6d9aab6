"""Log-likelihood of candidate continuations (label words) after a prompt, computed with one prompt pass.

Verbalizer scoring asks "how likely is the model to answer ' positive' after this prompt?" for every label. The
obvious way runs prompt + candidate through the model once per candidate, so k labels cost k full prompt passes.
Here each prompt runs once, and its candidates ride along in the same forward pass: the candidates' tokens are laid
out as a prefix tree (candidates that start alike share those tokens) after the prompt, and a 4-D attention mask
lets every tree token see the prompt and its own ancestors only. The last prompt position gives every candidate's
first token; the tree positions give the rest. :func:`continuation_logprobs_naive` keeps the obvious version as the
reference the tests and the benchmark compare against.

Tokenization at the boundary follows the lm-evaluation-harness rule: trailing spaces of the prompt move to the
front of the candidate ("Answer: " + "positive" is scored as "Answer:" + " positive"), because BPE vocabularies
attach the space to the following word. Both paths use exactly the same token ids, so they agree to float error.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm_backend.core.errors import ModelError, UserError
from llm_backend.core.progress import Progress, report
from llm_backend.models.loaded import LoadedModel
from llm_backend.prompts import prefix_attention

log = logging.getLogger(__name__)

#: How a candidate of several tokens is scored. "mean": average log-probability per token (long label phrases are
#: not penalised for their length; the default); "sum": joint log-probability; "first": the first token only
#: (one pass, no continuation; fair when labels differ in their first token, blind to the rest).
NORMALIZE = ("mean", "sum", "first")
#: Query tokens (batch rows x (row tokens + answer-tree tokens)) per forward pass on CPU. Measured with SmolLM2 on
#: 2 cores (bench/lm_scoring_speed.py): beyond ~1k tokens a pass gains no speed (the matrix products are already
#: large), while activations grow with it; 1,024 keeps the peak resident memory of one-pass scoring below that of
#: one forward per (text, label), which holds a full-vocabulary logits row for every prompt position.
TOKEN_BUDGET = 1024
#: On a CUDA device batches can be far larger (an H200 holds 64k tokens of SmolLM2 activations easily); an
#: out-of-memory error halves it and the run goes on.
GPU_TOKEN_BUDGET = 65536
#: Keys per pass (rows x (shared prefix + row + tree tokens)), as a multiple of the query budget, on the concatenating
#: path: the shared prefix's keys are expanded over the batch one layer at a time (never stored per row), so they
#: cost far less than queries. The merged path (prefix_attention) copies no prefix keys and skips this bound.
KEY_BUDGET_FACTOR = 8
#: Logit values (rows x positions read x vocabulary) per pass: 4M floats = 16 MB on CPU; 64M on a GPU.
LOGITS_BUDGET = 1 << 22
GPU_LOGITS_BUDGET = 1 << 26
#: Read the shared prefix once per layer and merge it with each row's own attention
#: (:mod:`llm_backend.prompts.prefix_attention`) instead of concatenating a copy of it to every row, where the
#: model and device allow. Off only to measure or test the concatenating path (bench/lm_scoring_speed.py).
MERGE_PREFIX = True


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
    if normalize == "first":
        return float(token_logprobs[0])
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


def _prompt_batches(lengths: Sequence[int], budget: int, order: Sequence[int] | None = None,
                    max_rows: int = 64, extra: int = 0, key_budget: int | None = None) -> list[list[int]]:
    """Group prompts of similar length (sorted) so left padding wastes little, under a token budget per batch.

    Without ``key_budget``, ``extra`` tokens per row (a shared prefix, expanded over the batch) count against
    ``budget`` too (a cache that stores them per row). With it, rows x longest stays within ``budget`` and rows x
    (longest + extra) within ``key_budget``.
    """
    pool = list(order) if order is not None else list(range(len(lengths)))
    pool.sort(key=lambda i: lengths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in pool:
        longest = max([lengths[j] for j in cur] + [lengths[i]])
        rows = len(cur) + 1
        if key_budget is None:
            over = (longest + extra) * rows > budget
        else:
            over = longest * rows > budget or (longest + extra) * rows > key_budget
        if cur and (over or len(cur) >= max_rows):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def _read_only_update(layer: Any, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """A cache layer's update that returns prefix + new keys/values but stores nothing (see :func:`derive_cache`)."""
    import torch

    return torch.cat([layer.keys, key_states], dim=-2), torch.cat([layer.values, value_states], dim=-2)


def derive_cache(cache: Any, rows: torch.Tensor | None = None, repeat: int | None = None,  # noqa: F821
                 read_only: bool = False) -> Any:
    """A new cache object of the same kind whose layers hold the chosen batch rows (or ``repeat`` copies of row 0).

    The source cache is left untouched (a forward pass appends to the cache it is given, by concatenation, so
    sharing the source tensors is safe). Copying the layer objects (not rebuilding a ``DynamicCache`` from tensors)
    keeps sliding-window layers (Gemma 3) sliding, with their position counters.

    ``read_only``: the forward pass sees prefix + its own keys/values, but nothing is stored. A scoring pass that
    reads everything it needs in one go then holds one layer's expanded keys at a time instead of every layer's
    (for a batch of b rows after a p-token prefix that is b x p x 2 x kv-width floats per layer, freed at once).
    Only for full-attention layers (a sliding layer's window needs its stored counters).
    """
    import types

    new = copy.copy(cache)
    new.layers = []
    for layer in cache.layers:
        twin = copy.copy(layer)
        if read_only:
            twin.update = types.MethodType(_read_only_update, twin)
        keys = getattr(layer, "keys", None)
        if getattr(layer, "is_initialized", False) and keys is not None and keys.numel():
            k, v = layer.keys, layer.values
            if rows is not None:
                k, v = k.index_select(0, rows), v.index_select(0, rows)
            if repeat is not None:
                k, v = k.expand(repeat, *k.shape[1:]), v.expand(repeat, *v.shape[1:])
            twin.keys, twin.values = k, v
        new.layers.append(twin)
    return new


def is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def halve_on_oom(size: int, floor: int = 1) -> int:
    """The next, halved batch size after the GPU ran out of memory (a ModelError when it cannot shrink further)."""
    if size <= floor:
        raise ModelError("The GPU ran out of memory even at the smallest batch. Free GPU memory (other runs, other "
                         "models) or use the CPU.")
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return max(floor, size // 2)


def _common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        m = 0
        lim = min(n, len(s))
        while m < lim and s[m] == first[m]:
            m += 1
        n = m
        if n == 0:
            break
    return n


def visible_prefix_len(prefix: Sequence[int], seq: Sequence[int]) -> int:
    """How much of a shared ``prefix`` a row ``seq`` may read: the tokens both start with (the keys there were
    computed from exactly the row's own tokens, since attention is causal), leaving the row at least its last token.
    A row whose demonstrations differ from the shared ones in one slot (it is itself a demonstration and got a
    substitute) reads the shared keys up to that slot and recomputes the rest of its prompt itself, so it never
    sees the shared prompt's demonstration of itself, nor anything computed after it."""
    return min(_common_prefix_len([prefix, seq]), len(seq) - 1)


#: A shared prefix shorter than this is not worth a separate pass (one cache copy per batch costs more).
MIN_SHARED_TOKENS = 8


class PrefixStore:
    """Past key/values of shared prompt prefixes, kept across calls (chunks of one run) and keyed by their token ids.

    One prompt template run scores its rows in chunks; the instruction, chat header and shared few-shot
    demonstrations are the same for every chunk, so they run through the model once per run, not once per chunk.
    At most ``max_items`` prefixes are kept (nearest-neighbour demonstrations make one per group of rows).
    """

    def __init__(self, max_items: int = 8) -> None:
        self.max_items = max_items
        self._items: dict[tuple[int, ...], Any] = {}
        self.computed = 0  # prefix passes run (for tests and benches)

    def find(self, seqs: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], Any] | None:
        best = None
        for key, cache in self._items.items():
            n = len(key)
            if all(len(s) > n and tuple(s[:n]) == key for s in seqs) and (best is None or n > len(best[0])):
                best = (key, cache)
        return best

    def get(self, key: tuple[int, ...]) -> Any:
        return self._items.get(key)

    def best_partial(self, seqs: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], Any, int] | None:
        """The stored prefix whose keys the most row tokens can reuse (each row up to where it departs from it),
        with that token count; None when no stored prefix starts at least one row in full."""
        best = None
        for key, cache in self._items.items():
            if not any(len(s) > len(key) and tuple(s[:len(key)]) == key for s in seqs):
                continue
            reuse = sum(visible_prefix_len(key, s) for s in seqs)
            if best is None or reuse > best[2]:
                best = (key, cache, reuse)
        return best

    def put(self, key: tuple[int, ...], cache: Any) -> None:
        if len(self._items) >= self.max_items:
            self._items.pop(next(iter(self._items)))
        self._items[key] = cache


def continuation_logprobs(
    loaded: LoadedModel,
    prompts: Sequence[str],
    candidates: Sequence[str] | Sequence[Sequence[str]],
    *,
    normalize: str = "mean",
    progress: Progress = None,
    max_prompt_tokens: int | None = None,
    notes: list[str] | None = None,
    token_budget: int | None = None,
    share_prefix: bool = True,
    groups: Sequence[Any] | None = None,
    prefix_hints: Mapping[Any, str] | None = None,
    prefix_store: PrefixStore | None = None,
) -> np.ndarray:
    """Log-likelihood of each candidate after each prompt, shape (n_prompts, n_candidates).

    ``candidates`` is one list shared by all prompts or one list per prompt (same length each). ``normalize`` says
    how a candidate of several tokens is scored (see :data:`NORMALIZE`). Prompts longer than the context (or
    ``max_prompt_tokens``) are shortened in the middle and a message is appended to ``notes``.

    Work done once, not per (prompt, candidate):

    - the token prefix shared by the prompts of a group (``groups``: one key per prompt; default: all prompts form
      one group) runs through the model once; its past key/values are expanded over every batch of rows
      (``prefix_hints`` may give, per group key, the row-independent text the prompts start with, which keeps the
      prefix the same from one call to the next; ``prefix_store`` keeps it across calls);
    - each row's own tokens then run in left-padded batches (positions counted from the prefix's end) together
      with the row's candidates laid out as a prefix tree of tokens, under a 4-D attention mask (row tokens see the
      prefix and the row; a tree token also sees its ancestors), asking the model for the logits at the row's last
      position and the tree nodes only; each layer reads the prefix's keys once for all rows and merges that part
      with the rows' own attention (:mod:`llm_backend.prompts.prefix_attention`, SDPA models on the CPU;
      elsewhere the prefix keys are expanded over the batch one layer at a time and never stored per row,
      ``derive_cache(read_only=True)``). Batches stay within ``token_budget`` query tokens and
      :data:`LOGITS_BUDGET` logit values, which keeps peak memory below one forward per (prompt, candidate);
    - models with sliding-window layers (Gemma 3) or attention kernels without custom masks instead run the rows
      with ``logits_to_keep=1`` and continue candidates of several tokens from the row's cache.

    On a GPU that runs out of memory the batch is halved and the run goes on (a message says so).
    """
    import torch

    _check_normalize(normalize)
    prep = _prepare(loaded, prompts, candidates, max_prompt_tokens)
    n = len(prep.prompt_ids)
    if n == 0:
        return np.zeros((0, len(candidates) if all(isinstance(c, str) for c in candidates) else 0))
    k = len(prep.cand_ids[0])
    out = np.zeros((n, k), dtype=np.float64)
    keys = list(groups) if groups is not None else [0] * n
    if len(keys) != n:
        raise UserError(f"Got {len(keys)} group keys for {n} prompts.")
    by_group: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        by_group.setdefault(key, []).append(i)
    on_gpu = loaded.device is not None and loaded.device.kind == "cuda"
    if token_budget is None:
        token_budget = GPU_TOKEN_BUDGET if on_gpu else TOKEN_BUDGET
    state = _RunState(loaded, prep, normalize, token_budget, out, progress, n,
                      logits_budget=GPU_LOGITS_BUDGET if on_gpu else LOGITS_BUDGET)
    state.max_rows = 512 if on_gpu else 64
    with loaded.lock, torch.inference_mode():
        for key, members in by_group.items():
            hint = (prefix_hints or {}).get(key)
            partial = hint is not None and share_prefix and tree_scoring_supported(loaded.model)
            if hint is not None and share_prefix and not partial and len(members) > 1:
                # No per-row prefix lengths without the tree path's mask: rows that depart from the hint before the
                # others (a demonstration replaced in one slot) are scored apart, so they do not cut the prefix
                # short for every row of the group.
                hint_ids = _hint_ids(loaded, hint, prep.prompt_ids[members[0]])
                reach = {i: _common_prefix_len([hint_ids, prep.prompt_ids[i]]) for i in members}
                departed = [i for i in members if reach[i] < max(reach.values())]
                if departed:
                    members = [i for i in members if i not in set(departed)]
                    sub_prefix, sub_cache = _group_prefix(state, departed, share_prefix, None, prefix_store)
                    state.score_group(departed, sub_prefix, sub_cache)
            prefix, cache = _group_prefix(state, members, share_prefix, hint, prefix_store, partial=partial)
            # Only a partial prefix (tree path) can start some rows in part; any other prefix starts every row.
            visible = {i: visible_prefix_len(prefix, prep.prompt_ids[i]) for i in members} if partial else None
            state.score_group(members, prefix, cache, visible=visible)
    if state.halved_to is not None:
        prep.notes.messages.append(f"The GPU ran out of memory: halved the batch (to {state.halved_to} tokens per "
                                   "pass) and went on.")
    _record(prep.notes, notes)
    return out


def _group_prefix(state: _RunState, members: list[int], share: bool, hint: str | None,
                  store: PrefixStore | None, partial: bool = False) -> tuple[list[int], Any]:
    if not members:
        return [], None
    return shared_prefix(state.loaded, [state.prep.prompt_ids[i] for i in members], share=share, hint=hint,
                         store=store, partial=partial)


def run_prefix(loaded: LoadedModel, prefix: Sequence[int]) -> Any:
    """Past key/values of ``prefix`` (batch of one), asking for the last position's logits only."""
    import torch

    device = loaded.device.torch_device if loaded.device else torch.device("cpu")
    result = loaded.model(input_ids=torch.tensor([list(prefix)], device=device), use_cache=True, logits_to_keep=1)
    return result.past_key_values


def shared_prefix(loaded: LoadedModel, seqs: Sequence[Sequence[int]], *, share: bool = True, hint: str | None = None,
                  store: PrefixStore | None = None, partial: bool = False) -> tuple[list[int], Any]:
    """The token prefix shared by ``seqs`` and its past key/values (``[], None`` when too short to be worth it).

    A prefix in ``store`` that starts every sequence is reused; otherwise the longest common prefix (cut to the
    tokens of ``hint`` minus one, when given, so it does not depend on which rows are in this call) is run once.

    ``partial`` (with a ``hint``; for callers that give each row its own visible prefix length, see
    :func:`visible_prefix_len`): the prefix is the hint's tokens, and rows that depart from it early (a
    demonstration replaced in one slot) still share it up to where they depart, instead of cutting the prefix short
    for every row.
    """
    if not share or not seqs:
        return [], None
    if partial and hint is not None:
        # The hint's tokens but the last (it may merge with the row's first characters): the same prefix in every
        # call of the run, whichever rows it holds (even only rows that depart from it early).
        prefix = _hint_ids(loaded, hint, seqs[0])[:-1]
        if store is not None:
            stored = store.get(tuple(prefix))
            if stored is not None:
                return prefix, stored
            found = store.best_partial(seqs)
            if found is not None and (len(prefix) < MIN_SHARED_TOKENS or
                                      found[2] >= sum(visible_prefix_len(prefix, s) for s in seqs)):
                return list(found[0]), found[1]
        return _run_and_store(loaded, prefix, store)
    prefix, _ = _prefix_tokens(loaded, seqs, _hint_ids(loaded, hint, seqs[0]) if hint is not None else None)
    if store is not None:
        found = store.find(seqs)
        # A stored prefix shorter than this group's own leaves the difference to every row of every batch: reuse it
        # only while recomputing would cost more tokens (one pass of the longer prefix) than it saves. Without this
        # check the short prefix that rows departing early (demonstrations themselves) had shared was reused by the
        # main group too: Gemma at k=8 on AG News re-ran ~2,200 of its ~3,000 prompt tokens per row, 13.7x k=4's time.
        if found is not None and (len(prefix) - len(found[0])) * len(seqs) <= len(prefix):
            return list(found[0]), found[1]
    return _run_and_store(loaded, prefix, store)


def _hint_ids(loaded: LoadedModel, hint: str, first: Sequence[int]) -> list[int]:
    hint_ids = _encode(loaded.tokenizer, hint, special=False)
    bos = getattr(loaded.tokenizer, "bos_token_id", None)
    if list(first[:1]) == [bos] and hint_ids[:1] != [bos]:
        hint_ids = [bos] + hint_ids
    return hint_ids


def _prefix_tokens(loaded: LoadedModel, seqs: Sequence[Sequence[int]],
                   hint_ids: list[int] | None) -> tuple[list[int], int]:
    """The common prefix of ``seqs`` (cut to the hint's tokens minus one when given); empty when too short."""
    n = _common_prefix_len(seqs) if len(seqs) > 1 else 0
    if hint_ids is not None:
        # The last token of the hint may merge with the row's first characters: stop one token short of it.
        n_hint = _common_prefix_len([hint_ids] + list(seqs)) - 1
        n = n_hint if len(seqs) == 1 else min(n, n_hint)
    n = min(n, min(len(s) for s in seqs) - 1)  # every row keeps at least its last token to read logits from
    if n < MIN_SHARED_TOKENS:
        return [], 0
    return list(seqs[0][:n]), n


def _run_and_store(loaded: LoadedModel, prefix: list[int], store: PrefixStore | None) -> tuple[list[int], Any]:
    if len(prefix) < MIN_SHARED_TOKENS:
        return [], None
    cache = run_prefix(loaded, prefix)
    if store is not None:
        store.computed += 1
        store.put(tuple(prefix), cache)
    return prefix, cache


@dataclass
class _AnswerTree:
    """One prompt's candidates as a prefix tree of the tokens fed after the prompt (scored in the prompt's pass).

    Candidate c is scored from the logits at the prompt's last position (its first token) and at the tree nodes for
    c[:1], c[:2], ... (its later tokens). Candidates that start alike ("card arrival", "card linking") share nodes.
    """

    tokens: list[int]  # the token fed at each node
    depths: list[int]  # its offset after the prompt (position = prompt length + depth)
    ancestors: Any  # (nodes, nodes) bool tensor: node n sees node m (m is n or one of its ancestors)
    reads: list[list[tuple[int, int]]]  # per candidate: (kept-logits index: 0 = prompt end, 1 + node, target token)


def _answer_tree(cands: Sequence[Sequence[int]], first_only: bool) -> _AnswerTree:
    import torch

    tokens: list[int] = []
    parents: list[int] = []
    depths: list[int] = []
    node_of: dict[tuple[int, ...], int] = {}
    reads: list[list[tuple[int, int]]] = []
    for c in cands:
        row = [(0, c[0])]
        parent = -1
        for t in range(1, 0 if first_only else len(c)):
            key = tuple(c[:t])
            if key not in node_of:
                node_of[key] = len(tokens)
                tokens.append(c[t - 1])
                parents.append(parent)
                depths.append(t - 1)
            parent = node_of[key]
            row.append((1 + parent, c[t]))
        reads.append(row)
    anc = torch.zeros((len(tokens), len(tokens)), dtype=torch.bool)
    for n, par in enumerate(parents):  # parents come before their children
        if par >= 0:
            anc[n] = anc[par]
        anc[n, n] = True
    return _AnswerTree(tokens, depths, anc, reads)


def _has_sliding_layers(config: Any) -> bool:
    types = list(getattr(config, "layer_types", None) or [])
    if types:
        return any("sliding" in str(t) or "chunked" in str(t) for t in types)
    return bool(getattr(config, "sliding_window", None)) and getattr(config, "use_sliding_window", True) is not False


def tree_scoring_supported(model: Any, cache: Any = None) -> bool:
    """Whether candidates can ride in the prompt's pass: needs a custom 4-D mask (sdpa/eager attention) and full
    attention in every layer (a sliding window would need its own mask per layer type; those models take the
    continuation path)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    if _has_sliding_layers(config):
        return False
    return cache is None or not any(getattr(layer, "is_sliding", False) for layer in cache.layers)


class _RunState:
    """The moving parts of one :func:`continuation_logprobs` call (kept together so the batch can shrink on OOM)."""

    def __init__(self, loaded: LoadedModel, prep: _Prepared, normalize: str, budget: int, out: np.ndarray,
                 progress: Progress, total: int, logits_budget: int = LOGITS_BUDGET) -> None:
        import torch

        self.loaded, self.prep, self.normalize, self.budget, self.out = loaded, prep, normalize, budget, out
        self.logits_budget = logits_budget
        self.progress, self.total, self.done = progress, total, 0
        self.device = loaded.device.torch_device if loaded.device else torch.device("cpu")
        pad_id = getattr(loaded.tokenizer, "pad_token_id", None)
        self.pad_id = 0 if pad_id is None else int(pad_id)
        self.halved_to: int | None = None
        self.max_rows = 64
        config = getattr(loaded.model, "config", None)
        self.vocab = int(getattr(config, "vocab_size", None) or 65536)
        self.eager = getattr(config, "_attn_implementation", None) == "eager"
        self._trees: dict[tuple[tuple[int, ...], ...], _AnswerTree] = {}
        self.trees: dict[int, _AnswerTree] = {}
        self.visible: dict[int, int] = {}  # per row of the group being scored: prefix keys it may read
        self.merged_passes = 0  # tree passes whose prefix went through the merged attention

    def _merge(self, prefix_cache: Any) -> bool:
        return (MERGE_PREFIX and prefix_cache is not None and len(prefix_cache.layers) > 0
                and prefix_attention.merge_supported(self.loaded.model, self.device))

    def _halve(self) -> None:
        self.budget = halve_on_oom(self.budget, floor=64)
        self.logits_budget = max(self.vocab, self.logits_budget // 2)
        self.halved_to = self.budget

    def _tree(self, i: int) -> _AnswerTree:
        if i not in self.trees:
            key = tuple(tuple(c) for c in self.prep.cand_ids[i])
            if key not in self._trees:  # candidate lists are usually shared by every prompt: build the tree once
                self._trees[key] = _answer_tree(key, first_only=self.normalize == "first")
            self.trees[i] = self._trees[key]
        return self.trees[i]

    def _batches(self, lengths: list[int], order: list[int], p: int, tree: bool,
                 merge: bool = False) -> list[list[int]]:
        if not tree:
            return _prompt_batches(lengths, self.budget, order=order, extra=p, max_rows=self.max_rows)
        reads = max(1 + len(self._tree(i).tokens) for i in order)
        rows = max(1, min(self.max_rows, self.logits_budget // (reads * self.vocab)))
        if merge:  # the prefix is read in place, never copied per row: only the rows' own tokens count
            return _prompt_batches(lengths, self.budget, order=order, max_rows=rows)
        return _prompt_batches(lengths, self.budget, order=order, extra=p, max_rows=rows,
                               key_budget=KEY_BUDGET_FACTOR * self.budget)

    def score_group(self, members: list[int], prefix: list[int], cache: Any,
                    visible: dict[int, int] | None = None) -> None:
        """Score ``members`` after the shared ``prefix``; ``visible`` (tree path only) gives rows that may read
        only the start of the prefix (see :func:`visible_prefix_len`) their own length."""
        if not members:
            return
        p = len(prefix)
        tree = tree_scoring_supported(self.loaded.model, cache)
        self.visible = {i: p for i in members} if visible is None else dict(visible)
        if not tree and any(v != p for v in self.visible.values()):
            raise ValueError("per-row prefix lengths need the tree path's 4-D mask")
        rest = {i: self.prep.prompt_ids[i][self.visible[i]:] for i in members}
        lengths = [0] * len(self.prep.prompt_ids)
        for i in members:  # a tree pass also carries the answer-tree tokens of each row
            lengths[i] = len(rest[i]) + (len(self._tree(i).tokens) if tree else 0)
        merge = tree and self._merge(cache)
        queue = self._batches(lengths, members, p, tree, merge)
        while queue:
            batch = queue.pop(0)
            try:
                if tree:
                    self._score_batch_tree(batch, rest, p, cache)
                else:
                    self._score_batch(batch, rest, p, cache)
            except (RuntimeError, MemoryError) as exc:
                if not is_oom(exc):
                    raise
                self._halve()
                queue = self._batches(lengths, batch, p, tree, merge) + queue
                continue
            self.done += len(batch)
            report(self.progress, self.done, self.total)

    def _score_batch_tree(self, batch: list[int], rest: dict[int, list[int]], p: int, prefix_cache: Any) -> None:
        """One forward pass per batch: left-padded row tokens, then each row's answer tree, under a 4-D mask.

        Row tokens see the prefix and the row's earlier tokens; tree tokens see the prefix, the whole row and their
        own ancestors; positions continue from the row's end (a tree node at depth d sits where the d-th answer token
        would). Every query also sees itself, so padding rows never attend to nothing (no NaN). Logits are computed
        only at the row's last position and at the tree nodes (``logits_to_keep`` as indices).
        """
        import torch

        trees = [self._tree(i) for i in batch]
        widths = [len(rest[i]) for i in batch]
        seen = [self.visible.get(i, p) for i in batch]  # prefix keys each row may read (its own start)
        w_max, s_max, b = max(widths), max(len(t.tokens) for t in trees), len(batch)
        q = w_max + s_max
        ids = torch.full((b, q), self.pad_id, dtype=torch.long)
        pos = torch.full((b, q), p, dtype=torch.long)
        allowed = torch.zeros((b, q, p + q), dtype=torch.bool)
        for r, v in enumerate(seen):
            allowed[r, :, :v] = True
        causal = torch.tril(torch.ones((w_max, w_max), dtype=torch.bool))
        for r, i in enumerate(batch):
            w, tree = widths[r], trees[r]
            pad = w_max - w
            own = torch.zeros(w_max, dtype=torch.bool)
            own[pad:] = True
            ids[r, pad:w_max] = torch.tensor(rest[i])
            pos[r, pad:w_max] = torch.arange(seen[r], seen[r] + w)
            allowed[r, :w_max, p:p + w_max] = causal & own[None, :]
            n = len(tree.tokens)
            if n:
                ids[r, w_max:w_max + n] = torch.tensor(tree.tokens)
                pos[r, w_max:w_max + n] = seen[r] + w + torch.tensor(tree.depths)
                allowed[r, w_max:w_max + n, p:p + w_max] = own[None, :]
                allowed[r, w_max:w_max + n, p + w_max:p + w_max + n] = tree.ancestors
        diag = torch.arange(q)
        allowed[:, diag, p + diag] = True
        keep = torch.tensor([w_max - 1] + list(range(w_max, q)), device=self.device)
        model = self.loaded.model
        if self._merge(prefix_cache):  # the prefix is read once per layer, not copied per row (prefix_attention)
            shared = prefix_attention.shared_prefix_from_cache(prefix_cache, seen if min(seen) < p else None)
            with prefix_attention.merged_attention(model):
                result = model(input_ids=ids.to(self.device), attention_mask=allowed[:, None, :, p:].to(self.device),
                               position_ids=pos.to(self.device), use_cache=False, logits_to_keep=keep,
                               **{prefix_attention.KWARG: shared})
            self.merged_passes += 1
        else:
            mask = allowed[:, None]
            if self.eager:  # eager attention adds its mask to the scores
                mask = prefix_attention.as_additive(mask, next(model.parameters()).dtype)
            past = derive_cache(prefix_cache, repeat=b, read_only=True) if prefix_cache is not None else None
            result = model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                           position_ids=pos.to(self.device), past_key_values=past, use_cache=False,
                           logits_to_keep=keep)
            del past
        logits = result.logits  # (batch, 1 + tree nodes, vocab)
        del result
        for r, i in enumerate(batch):
            tree = trees[r]
            flat = [rd for cand in tree.reads for rd in cand]
            at = torch.tensor([x for x, _ in flat], device=self.device)
            token = torch.tensor([t for _, t in flat], device=self.device)
            row = logits[r].float()
            values = (row[at, token] - torch.logsumexp(row, dim=-1)[at]).tolist()
            start = 0
            for j, cand in enumerate(tree.reads):
                self.out[i, j] = _reduce(values[start:start + len(cand)], self.normalize)
                start += len(cand)

    def _score_batch(self, batch: list[int], rest: dict[int, list[int]], p: int, prefix_cache: Any) -> None:
        import torch

        device, model, prep = self.device, self.loaded.model, self.prep
        widths = [len(rest[i]) for i in batch]
        width = max(widths)
        b = len(batch)
        ids = torch.full((b, width), self.pad_id, dtype=torch.long)
        own_mask = torch.zeros((b, width), dtype=torch.long)
        for r, i in enumerate(batch):  # left padding: every prompt's last token sits in the last column
            ids[r, width - widths[r]:] = torch.tensor(rest[i])
            own_mask[r, width - widths[r]:] = 1
        pos = p + (own_mask.cumsum(1) - 1).clamp(min=0)
        mask = torch.cat([torch.ones((b, p), dtype=torch.long), own_mask], dim=1) if p else own_mask
        ids, mask, pos = ids.to(device), mask.to(device), pos.to(device)
        past = derive_cache(prefix_cache, repeat=b) if prefix_cache is not None else None
        needs_more = any(len(c) > 1 for i in batch for c in prep.cand_ids[i])
        result = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=past,
                       use_cache=needs_more, logits_to_keep=1)
        first = torch.log_softmax(result.logits[:, -1, :].float(), dim=-1)  # (batch, vocab)
        cache = result.past_key_values if needs_more else None
        del result

        per_pair: dict[tuple[int, int], list[float]] = {}
        pairs: list[tuple[int, int, int]] = []  # (batch row, prompt index, candidate index) needing more tokens
        for r, i in enumerate(batch):
            for j, c_ids in enumerate(prep.cand_ids[i]):
                per_pair[(i, j)] = [float(first[r, c_ids[0]])]
                if len(c_ids) > 1 and self.normalize != "first":
                    pairs.append((r, i, j))
        total = p + width
        rows_per_chunk = max(1, self.budget // (total + 1))
        for start in range(0, len(pairs), rows_per_chunk):
            chunk = pairs[start:start + rows_per_chunk]
            conts = [prep.cand_ids[i][j] for _, i, j in chunk]
            t = max(len(c) for c in conts) - 1  # feed tokens 0..T-2, predict tokens 1..T-1
            c_in = torch.full((len(chunk), t), self.pad_id, dtype=torch.long)
            c_mask = torch.zeros((len(chunk), t), dtype=torch.long)
            for q, c in enumerate(conts):
                c_in[q, : len(c) - 1] = torch.tensor(c[:-1])
                c_mask[q, : len(c) - 1] = 1
            rows = torch.tensor([r for r, _, _ in chunk], device=device)
            full_mask = torch.cat([mask.index_select(0, rows), c_mask.to(device)], dim=1)
            start_pos = torch.tensor([p + widths[r] for r, _, _ in chunk], device=device)[:, None]
            c_pos = start_pos + torch.arange(t, device=device)[None, :]
            sub = model(input_ids=c_in.to(device), attention_mask=full_mask, position_ids=c_pos,
                        past_key_values=derive_cache(cache, rows=rows), use_cache=True)
            logp = torch.log_softmax(sub.logits.float(), dim=-1)
            for q, (_, i, j) in enumerate(chunk):
                c = prep.cand_ids[i][j]
                target = torch.tensor(c[1:], device=device)
                per_pair[(i, j)].extend(logp[q, : len(c) - 1].gather(1, target[:, None])[:, 0].tolist())
            del sub, logp
        for (i, j), values in per_pair.items():
            self.out[i, j] = _reduce(values, self.normalize)


def candidate_token_counts(loaded: LoadedModel, candidates: Sequence[str], prompt_end: str = " ") -> list[int]:
    """How many tokens each candidate costs after a prompt ending in ``prompt_end`` (for the UI and benches)."""
    return [len(_encode(loaded.tokenizer, _split_boundary(prompt_end, c)[1], special=False)) for c in candidates]
