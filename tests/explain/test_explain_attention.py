"""Attention view on the real bundled transformers: valid distributions, causal masking, the model left as found."""
from __future__ import annotations

import numpy as np

from llm_backend.explain.attention import attention_view

TEXT = "Stocks fell sharply on Wall Street as oil prices rose."


def _check_distributions(view):
    assert view.weights.ndim == 4 and view.weights.shape[2] == view.weights.shape[3] == len(view.tokens)
    assert np.allclose(view.weights.sum(-1), 1.0, atol=1e-4)  # every row of every head is a distribution
    assert np.allclose(view.rollout().sum(-1), 1.0, atol=1e-4)
    assert np.allclose(view.from_focus().sum(-1), 1.0, atol=1e-4)


def test_embedder_attention_rows_sum_to_one_and_sdpa_is_restored(embedder):
    net = embedder.model[0].auto_model
    before = net.config._attn_implementation
    view = attention_view(embedder, TEXT)
    assert net.config._attn_implementation == before  # the shared model keeps its fast attention
    assert view.n_layers == 6 and view.n_heads == 12
    assert view.tokens[0] == "[CLS]" and view.focus_name == "[CLS]" and view.focus_index == 0
    _check_distributions(view)


def test_causal_lm_attention_is_causal_and_read_from_the_last_token(causal_lm):
    view = attention_view(causal_lm, TEXT)
    _check_distributions(view)
    assert view.focus_index == len(view.tokens) - 1 and view.focus_name == "last token"
    future = np.triu(np.ones(view.weights.shape[-2:], dtype=bool), k=1)
    assert np.abs(view.weights[..., future]).max() < 1e-6  # no token attends to a later one


def test_long_text_is_cut_with_a_note(embedder):
    view = attention_view(embedder, " ".join([TEXT] * 30), max_tokens=64)
    assert len(view.tokens) == 64 and any("first 64" in n for n in view.notes)
