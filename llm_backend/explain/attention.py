"""Attention maps of one text in a transformer: per layer and head, head-averaged, from [CLS]/the last token, rollout.

Attention is *not* an explanation of a label: it shows where each token looks inside the network, not what
changes the output (Jain & Wallace 2019, "Attention is not Explanation"); the deletion test in bench/ measures
attributions, never attention. The view is shown next to the attribution view so users can compare the two.

transformers 5 loads models with SDPA attention, which computes no weights to return. For this view only, the model
is switched to ``attn_implementation="eager"`` (``PreTrainedModel.set_attn_implementation``) under the model's lock
and switched back afterwards, so other sessions sharing the model keep the fast kernel and never see the switch.

Rollout (Abnar & Zuidema 2020): each layer's head-averaged attention plus the identity (the residual path),
rows renormalised, multiplied from the first layer up; row i says how much of token i's final state comes from
each input token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from llm_backend.core.errors import ModelError, UserError
from llm_backend.models.loading import LoadedModel

#: Longest text shown: a 128 × 128 heatmap per head is already dense; 6 layers × 12 heads of 512² would not draw.
MAX_ATTENTION_TOKENS = 128


@dataclass
class AttentionView:
    """Attention weights of one forward pass: ``weights[layer, head, query, key]``, rows summing to 1."""

    tokens: list[str]
    weights: np.ndarray  # (layers, heads, n, n)
    focus_index: int  # [CLS] for encoders, the last token for causal LMs
    focus_name: str  # "[CLS]" or "last token"
    model_name: str
    notes: list[str]

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])

    def head_average(self, layer: int) -> np.ndarray:
        return self.weights[layer].mean(axis=0)

    def from_focus(self) -> np.ndarray:
        """(layers, n): head-averaged attention from the focus token to every token, per layer."""
        return self.weights[:, :, self.focus_index, :].mean(axis=1)

    def rollout(self) -> np.ndarray:
        """(n, n) attention rollout through all layers (see the module docstring)."""
        n = self.weights.shape[-1]
        out = np.eye(n)
        for layer in range(self.n_layers):
            a = 0.5 * self.head_average(layer) + 0.5 * np.eye(n)
            a = a / a.sum(axis=-1, keepdims=True)
            out = a @ out
        return out


def _transformer(loaded: LoadedModel) -> tuple[Any, Any, bool, str]:
    """(transformers module, tokenizer, is_causal, display name) behind any loaded model the app knows."""
    model = loaded.model
    name = loaded.spec.name
    if loaded.spec.role == "embedder":  # SentenceTransformer: module 0 wraps the Hugging Face model
        return model[0].auto_model, model.tokenizer, False, name
    if loaded.spec.role == "causal_lm":
        return model, loaded.tokenizer, True, name
    body = getattr(model, "body", None)  # trained head on embeddings: the attention is the body's
    if body is not None:
        return body.model[0].auto_model, body.model.tokenizer, False, f"{name} (embedder body)"
    inner = getattr(model, "model", None)  # SequenceModel (fine-tuned transformer)
    if inner is not None and hasattr(model, "tokenizer"):
        return inner, model.tokenizer, False, name
    if hasattr(model, "config") and loaded.tokenizer is not None:
        return model, loaded.tokenizer, bool(getattr(model.config, "is_decoder", False)), name
    raise ModelError(f"'{name}' is not a transformer whose attention can be shown.")


def attention_view(loaded: LoadedModel, text: str, max_tokens: int = MAX_ATTENTION_TOKENS) -> AttentionView:
    """Run ``text`` once through the model with attention weights returned."""
    import torch

    text = "" if text is None else str(text)
    if not text.strip():
        raise UserError("The text is empty: there is no attention to show.")
    net, tok, causal, name = _transformer(loaded)
    lock = getattr(loaded.model, "lock", None) or loaded.lock
    notes: list[str] = []
    enc = tok(text, return_tensors="pt", truncation=True, max_length=max_tokens)
    n_full = len(tok(text, add_special_tokens=True)["input_ids"])
    if n_full > max_tokens:
        notes.append(f"The text has {n_full} tokens; the attention view shows the first {max_tokens}.")
    with lock:
        previous = getattr(net.config, "_attn_implementation", None)
        switched = previous not in (None, "eager")
        try:
            if switched:
                net.set_attn_implementation("eager")
            device = next(net.parameters()).device
            with torch.inference_mode():
                out = net(**{k: v.to(device) for k, v in enc.items()}, output_attentions=True)
        finally:
            if switched:
                net.set_attn_implementation(previous)
    atts = getattr(out, "attentions", None)
    if not atts or any(a is None for a in atts):
        raise ModelError(f"'{name}' returned no attention weights, so there is no attention view for it.")
    weights = torch.stack([a[0].float().cpu() for a in atts]).numpy()
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    n = len(tokens)
    focus, focus_name = (n - 1, "last token") if causal else (0, "[CLS]")
    return AttentionView([str(t) for t in tokens], weights, focus, focus_name, name, notes)
