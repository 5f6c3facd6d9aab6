"""Attention to a shared prefix without a copy of its keys per row (few-shot prompt scoring).

Few-shot scoring runs the instruction + demonstrations (``p`` tokens, ~1,850 for k=4 on AG News) once and then
scores batches of rows after it. Reading that prefix through an expanded KV cache makes every layer concatenate
``b`` copies of the prefix keys and values to the row's own, and transformers' SDPA path then repeats them for every
query head (grouped-query models under a custom mask): ``b x p x heads`` floats copied per layer and pass, the
largest part of what a demonstration costs beyond k=0 (profiled: ~40% of the attention time).

Here each layer instead attends in two parts and merges them exactly (the flash-decoding merge):

1. all ``b x q`` queries of the batch against the one prefix copy: the queries are regrouped by key/value head
   into one long sequence ``(1, kv heads, b x heads-per-kv x q, D)``, so a single attention call reads the prefix
   keys as they are (rows that may read only the start of the prefix, see
   :func:`~llm_backend.prompts.lm_scoring.visible_prefix_len`, get an additive mask over the prefix);
2. each row's queries against its own keys under the row's (tree) mask;

then ``out = o1 * exp(lse1 - lse) + o2 * exp(lse2 - lse)`` with ``lse = logaddexp(lse1, lse2)``, which equals
softmax attention over prefix + own keys. Both parts use PyTorch's fused CPU flash-attention kernel, which also
returns the log-sum-exp (``aten._scaled_dot_product_flash_attention_for_cpu``; the public SDPA call does not).

The function is registered with transformers' ``AttentionInterface`` under :data:`MERGE_NAME` and only switched
on for the scoring pass (:func:`merged_attention`); the prefix keys travel to it in the ``zss_shared_prefix``
keyword, which transformers forwards from ``model(...)`` to every attention call. Where the merge does not apply
(no CPU flash kernel, another device, logit soft-capping, attention sinks) the function concatenates the prefix
and calls transformers' own SDPA attention, so results never depend on which branch ran.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The name the merged attention is registered under (``config._attn_implementation`` during a scoring pass).
MERGE_NAME = "zss_prefix_merge"
#: The keyword of ``model(...)`` that carries the :class:`SharedPrefix` to the attention function.
KWARG = "zss_shared_prefix"


@dataclass
class SharedPrefix:
    """The prefix's keys/values per layer (batch 1) and, when some rows read only its start, how far each row reads.

    ``merged`` / ``concatenated`` count the attention calls that took each branch (tests check the merge ran)."""

    keys: list[Any]
    values: list[Any]
    seen: Sequence[int] | None = None
    merged: int = 0
    concatenated: int = 0
    _masks: dict[tuple, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[-2])

    @property
    def reach(self) -> int:
        """Prefix keys any row of the pass reads: rows that are demonstrations, alone in their batch (their own
        part is long), then attend to that start only instead of masking the rest."""
        return self.length if self.seen is None else min(self.length, max(int(s) for s in self.seen))

    def prefix_mask(self, rows: int, reps: int, q: int, dtype: Any, device: Any, grouped: bool) -> Any:
        """Additive mask over the prefix for rows that may read only its start (None when every row reads it all).

        ``grouped``: rows laid out as the merged call's query sequence (row, head-in-group, position), shape
        (1, 1, rows x reps x q, reach) (the merged call reads only the first :attr:`reach` keys); otherwise
        (rows, 1, q, p) as a concatenated call expects."""
        reach = self.reach if grouped else self.length
        if self.seen is None or all(int(s) >= reach for s in self.seen):
            return None
        key = (rows, reps, q, dtype, str(device), grouped)
        if key not in self._masks:
            import torch

            seen = torch.tensor([int(s) for s in self.seen], device=device)
            hidden = torch.arange(reach, device=device)[None, :] >= seen[:, None]  # (rows, reach)
            if grouped:
                hidden = hidden.repeat_interleave(reps * q, dim=0)[None, None]
            else:
                hidden = hidden[:, None, None, :].expand(rows, 1, q, reach)
            self._masks[key] = torch.zeros(hidden.shape, dtype=dtype, device=device).masked_fill(
                hidden, torch.finfo(dtype).min)
        return self._masks[key]


def shared_prefix_from_cache(cache: Any, seen: Sequence[int] | None = None) -> SharedPrefix:
    """The :class:`SharedPrefix` of a prefix's KV cache (batch 1; its tensors are read, never copied)."""
    return SharedPrefix([layer.keys for layer in cache.layers], [layer.values for layer in cache.layers], seen)


def _flash_cpu() -> Any:
    import torch

    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def merge_supported(model: Any, device: Any) -> bool:
    """Whether the merged path can serve this model here: SDPA attention (the merge reproduces its numbers), a
    CPU tensor device and PyTorch's CPU flash kernel. Eager attention and GPUs keep the concatenating path."""
    config = getattr(model, "config", None)
    return (config is not None and getattr(config, "_attn_implementation", None) == "sdpa"
            and getattr(device, "type", str(device)) == "cpu" and _flash_cpu() is not None)


def as_additive(mask: Any, dtype: Any) -> Any:
    """A boolean mask (True: may attend) as the additive one eager attention and the flash kernel take."""
    import torch

    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def prefix_merge_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                           dropout: float = 0.0, scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """An ``AttentionInterface`` function: softmax attention over the shared prefix + the pass's own keys.

    ``query`` (b, H, q, D); ``key``/``value`` (b, Hkv, q, D) the pass's own; ``attention_mask`` the own part's
    (b, 1, q, q) mask (boolean or additive); the prefix comes in ``kwargs[KWARG]``. Returns (b, q, H, D) as
    transformers' attention functions do."""
    import torch
    from transformers.integrations.sdpa_attention import (
        repeat_kv,
        sdpa_attention_forward,
    )

    shared: SharedPrefix | None = kwargs.pop(KWARG, None)
    if shared is None:  # not a scoring pass: plain SDPA
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    b, heads, q, dim = query.shape
    kv_heads = key.shape[1]
    reps = heads // kv_heads
    kp, vp = shared.keys[module.layer_idx], shared.values[module.layer_idx]
    scale = scaling if scaling is not None else dim ** -0.5
    flash = _flash_cpu()
    plain = (flash is None or query.device.type != "cpu" or dropout or kwargs.get("softcap") is not None
             or getattr(module, "sinks", None) is not None or kwargs.get("position_bias") is not None
             or kp.shape[0] != 1)
    if plain:  # the old way: every row gets a copy of the prefix (exact, any device)
        shared.concatenated += 1
        own = as_additive(attention_mask, query.dtype)
        pre = shared.prefix_mask(b, reps, q, query.dtype, query.device, grouped=False)
        pre = torch.zeros((b, 1, q, kp.shape[-2]), dtype=query.dtype, device=query.device) if pre is None else pre
        keys = torch.cat([kp.expand(b, -1, -1, -1), key], dim=-2)
        values = torch.cat([vp.expand(b, -1, -1, -1), value], dim=-2)
        mask = torch.cat([pre.expand(b, 1, q, -1), own.expand(b, 1, q, q)], dim=-1)
        return sdpa_attention_forward(module, query, keys, values, mask, dropout=dropout, scaling=scale, **kwargs)
    shared.merged += 1
    # Part 2: each row against its own keys (few: the per-head repeat is cheap here).
    own = as_additive(attention_mask, query.dtype)
    o2, l2 = flash(query, repeat_kv(key, reps), repeat_kv(value, reps), 0.0, False, attn_mask=own, scale=scale)[:2]
    l2 = l2.reshape(b, heads, q, 1)
    reach = shared.reach
    if reach == 0:  # no row reads any of the prefix
        return o2.transpose(1, 2).contiguous(), None
    # Part 1: (1, Hkv, b*reps*q, D) queries, head h of row r at (h // reps, r, h % reps) - the prefix read once.
    grouped = query.view(b, kv_heads, reps, q, dim).transpose(0, 1).reshape(1, kv_heads, b * reps * q, dim)
    pre_mask = shared.prefix_mask(b, reps, q, query.dtype, query.device, grouped=True)
    kp, vp = kp[:, :, :reach], vp[:, :, :reach]
    o1, l1 = flash(grouped, kp, vp, 0.0, False, attn_mask=pre_mask, scale=scale)[:2]
    o1 = o1.view(kv_heads, b, reps, q, dim).transpose(0, 1).reshape(b, heads, q, dim)
    l1 = l1.view(kv_heads, b, reps, q).transpose(0, 1).reshape(b, heads, q, 1)
    lse = torch.logaddexp(l1, l2)
    out = o1 * torch.exp(l1 - lse).to(o1.dtype) + o2 * torch.exp(l2 - lse).to(o2.dtype)
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Register :func:`prefix_merge_attention` with transformers (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(MERGE_NAME, prefix_merge_attention)


@contextlib.contextmanager
def merged_attention(model: Any) -> Iterator[None]:
    """Route the model's attention through :func:`prefix_merge_attention` for the duration (caller holds the
    model's lock: the switch is on the shared config). Restores the previous implementation even on errors."""
    register()
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = MERGE_NAME
    try:
        yield
    finally:
        config._attn_implementation = before
