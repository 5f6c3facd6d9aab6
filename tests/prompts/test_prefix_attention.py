"""The merged prefix attention (prefix_attention.prefix_merge_attention) against plain softmax attention over the
concatenated keys, on random tensors with grouped-query heads, a tree-like own mask and rows that read only the
start of the prefix (down to none of it). The end-to-end check on SmolLM2 is in test_prefix_cache.py."""
from __future__ import annotations

import types

import pytest
import torch

from llm_backend.prompts import prefix_attention


def _reference(query, kp, vp, key, value, own, seen):
    b, heads, q, dim = query.shape
    reps = heads // key.shape[1]
    p = kp.shape[-2]
    keys = torch.cat([kp.expand(b, -1, -1, -1), key], dim=-2).repeat_interleave(reps, dim=1)
    values = torch.cat([vp.expand(b, -1, -1, -1), value], dim=-2).repeat_interleave(reps, dim=1)
    pre = torch.arange(p)[None, :] < torch.tensor(seen)[:, None]
    allowed = torch.cat([pre[:, None, None, :].expand(b, 1, q, p), own], dim=-1)
    scores = (query @ keys.transpose(-1, -2)) * dim ** -0.5
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    return (weights @ values).transpose(1, 2)


@pytest.mark.parametrize("seen", [None, [37, 37, 0], [20, 5, 0], [0, 0, 0]],
                         ids=["full-prefix", "rows-read-its-start", "no-row-reads-it-all", "no-row-reads-it"])
def test_merge_equals_softmax_over_concatenated_keys(seen):
    gen = torch.Generator().manual_seed(0)
    b, heads, kv_heads, q, p, dim = 3, 6, 2, 7, 37, 16
    query = torch.randn(b, heads, q, dim, generator=gen)
    key, value = torch.randn(b, kv_heads, q, dim, generator=gen), torch.randn(b, kv_heads, q, dim, generator=gen)
    kp, vp = torch.randn(1, kv_heads, p, dim, generator=gen), torch.randn(1, kv_heads, p, dim, generator=gen)
    own = torch.tril(torch.ones(q, q, dtype=torch.bool)).repeat(b, 1, 1, 1)
    own[1, 0, :, :3] = False  # left padding in row 1 (its pad queries still see themselves)
    own[1, 0, torch.arange(3), torch.arange(3)] = True
    module = types.SimpleNamespace(layer_idx=0, num_key_value_groups=heads // kv_heads, is_causal=True)
    shared = prefix_attention.SharedPrefix([kp], [vp], seen)
    out, _ = prefix_attention.prefix_merge_attention(module, query, key, value, own, scaling=dim ** -0.5,
                                                     **{prefix_attention.KWARG: shared})
    ref = _reference(query, kp, vp, key, value, own, seen or [p] * b)
    assert shared.merged == 1 and shared.concatenated == 0
    assert out.shape == (b, q, heads, dim) and torch.isfinite(out).all()
    assert (out - ref).abs().max() < 1e-5
    plain = prefix_attention.SharedPrefix([kp], [vp], seen)  # the concatenating fallback, same numbers
    out2, _ = prefix_attention.prefix_merge_attention(module, query, key, value, own, scaling=dim ** -0.5,
                                                      softcap=None, position_bias=torch.zeros(1),
                                                      **{prefix_attention.KWARG: plain})
    assert plain.concatenated == 1 and plain.merged == 0
    assert (out2 - ref).abs().max() < 1e-5
