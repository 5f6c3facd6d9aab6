"""Choosing few-shot examples: k per label from rows with gold labels, never the row being labelled.

Two strategies:

- **random** (seeded): one shuffled order per label; every row gets the first k of each label, so most rows see
  the same demonstrations, which keeps results comparable. A row that is itself one of them (or a duplicate of
  its text) gets the next example of that label *in the same slot*: its prompt equals the shared one up to that
  demonstration, so the prompt scorer reuses the shared prefix's KV cache up to there and recomputes only the rest
  (``lm_scoring``: a row's visible prefix).
- **nearest**: the k rows of each label most similar to the row (cosine of :func:`embed_texts` vectors). Examples
  are ordered least to most similar, so the closest one sits right before the question.

Excluding the row itself (and exact duplicates of its text) matters: a prompt that contains the answer to its own
question makes a template look far better than it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from llm_backend.core.errors import UserError

SELECTIONS = ("random", "nearest")


@dataclass
class ExampleChoice:
    """Per target row, the pool indices of its examples (in prompt order), plus notes for the user."""

    indices: list[list[int]]
    notes: list[str] = field(default_factory=list)


def select_examples(
    targets: Sequence[int],
    texts: Sequence[str],
    gold: Sequence[str],
    labels: Sequence[str],
    k: int,
    *,
    method: str = "random",
    seed: int = 0,
    embeddings: np.ndarray | None = None,
    max_total: int | None = None,
) -> ExampleChoice:
    """Examples for each row in ``targets`` (indices into ``texts``/``gold``), drawn from rows whose gold is a label.

    ``max_total`` caps the examples per prompt (many labels x k would not fit the context): random keeps the first
    ones of the shuffled, label-interleaved order, nearest keeps the most similar.
    """
    if method not in SELECTIONS:
        raise UserError(f"Unknown example selection '{method}': use {' or '.join(SELECTIONS)}.")
    if k <= 0:
        return ExampleChoice([[] for _ in targets])
    if method == "nearest" and (embeddings is None or len(embeddings) != len(texts)):
        raise UserError("Nearest-neighbour examples need an embedding for every row.")
    label_set = list(labels)
    pools = {lab: [i for i, g in enumerate(gold) if g == lab] for lab in label_set}
    notes: list[str] = []
    empty = [lab for lab, rows in pools.items() if not rows]
    if len(empty) == len(label_set):
        raise UserError("Few-shot examples need rows with gold labels that match the verbalizer; none were found. "
                        "Choose the gold column, or set few-shot to 0.")
    if empty:
        notes.append(f"No examples available for {len(empty)} label(s): {', '.join(empty[:8])}.")
    thin = [lab for lab, rows in pools.items() if 0 < len(rows) <= k]
    if thin:
        notes.append(f"{len(thin)} label(s) have at most {k} gold rows, so some prompts get fewer examples for them.")
    if max_total is not None and k * len(label_set) > max_total:
        notes.append(f"{k} examples x {len(label_set)} labels exceed the cap of {max_total} examples per prompt; "
                     f"kept {max_total} ({'most similar' if method == 'nearest' else 'seeded random'}).")
    rng = np.random.default_rng(seed)
    orders = {lab: list(rng.permutation(rows)) for lab, rows in pools.items()}
    norm_text = [str(t).strip().lower() for t in texts]
    out: list[list[int]] = []
    for t in targets:
        own = norm_text[t]
        if method == "random":
            picked_per_label = []
            for lab in label_set:
                picked_per_label.append(_first_k_in_place(orders[lab], k, lambda i: i != t and norm_text[i] != own))
            # Interleave labels (a, b, c, a, b, c…) so no label sits in one block right before the question.
            inter = [row[j] for j in range(k) for row in picked_per_label if j < len(row)]
            mix = np.random.default_rng(seed + 1).permutation(len(inter))  # same order pattern for every row
            chosen_all = [inter[m] for m in mix]
            if max_total is not None:
                chosen_all = chosen_all[:max_total]
            out.append(chosen_all)
        else:
            sims = embeddings @ embeddings[t]  # type: ignore[index]
            picked: list[tuple[float, int]] = []
            for lab in label_set:
                rows = [i for i in pools[lab] if i != t and norm_text[i] != own]
                if not rows:
                    continue
                arr = np.asarray(rows)
                top = arr[np.argsort(-sims[arr], kind="stable")[:k]]
                picked.extend((float(sims[i]), int(i)) for i in top)
            picked.sort(key=lambda p: -p[0])
            if max_total is not None:
                picked = picked[:max_total]
            out.append([i for _, i in sorted(picked, key=lambda p: p[0])])  # least to most similar
    return ExampleChoice(out, notes)


def _first_k_in_place(order: Sequence[int], k: int, allowed: Callable[[int], bool]) -> list[int]:
    """The first ``k`` of ``order``, each one that is not ``allowed`` replaced in its slot by the next allowed one
    after the first ``k`` (dropped when there is none): rows that lose a demonstration keep the others' order."""
    spare = (int(i) for i in order[k:] if allowed(int(i)))
    out = []
    for i in order[:k]:
        sub = int(i) if allowed(int(i)) else next(spare, None)
        if sub is not None:
            out.append(sub)
    return out
