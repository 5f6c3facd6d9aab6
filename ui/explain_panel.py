"""The "Explain a row" view: highlighted words for one label, and the attention view beside it.

Pages call :func:`explain_row_panel` with their texts, labels and a way to build their scorer (one line); the
backend does the work (:func:`llm_backend.explain.explainer.explain_text`,
:func:`llm_backend.explain.attention.attention_view`). Every user string shown here — words, tokens, labels — is
escaped: highlighted text is HTML built from ``html.escape``-d pieces (rendered by ``st.html``, which does no
markdown), and plotly axis labels have their angle brackets replaced so plotly's tag subset cannot apply.
"""
from __future__ import annotations

import html
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from llm_backend.explain.attention import AttentionView, attention_view
from llm_backend.explain.attribution import METHOD_TITLES, METHODS, Attribution
from llm_backend.explain.explainer import explain_text
from llm_backend.data.labels import Label
from llm_backend.models.loading import LoadedModel

from .errors import user_errors

ATTENTION_NOTE = ("Attention is not an explanation: it shows where tokens look inside the network, not which words "
                  "change the label (Jain & Wallace, 2019). Compare it with the attribution above, whose "
                  "faithfulness is measured by a deletion test (docs/explain.md).")


def _method_title(method: str) -> str:
    return "auto (occlusion: measured faithful for every scorer)" if method == "auto" else METHOD_TITLES[method]


def highlighted_html(attr: Attribution) -> str:
    """The scored text with each word's background green (pushed the label up) or red (pulled it down)."""
    scale = float(np.max(np.abs(attr.weights))) if len(attr.weights) else 0.0
    parts, pos = [], 0
    for w, x in zip(attr.words, attr.weights):
        parts.append(html.escape(attr.scored_text[pos : w.start]))
        alpha = 0.0 if scale <= 0 else min(abs(float(x)) / scale, 1.0) * 0.75
        colour = f"rgba(0,160,60,{alpha:.2f})" if x > 0 else f"rgba(220,40,40,{alpha:.2f})"
        parts.append(f'<span style="background:{colour};border-radius:3px;padding:0 2px" '
                     f'title="{float(x):+.4f}">{html.escape(w.text)}</span>')
        pos = w.end
    parts.append(html.escape(attr.scored_text[pos:]))
    body = "".join(parts).replace("\n", "<br>")
    return f'<div style="line-height:1.9;font-size:1.02rem;white-space:pre-wrap">{body}</div>'


def _plot_safe(s: str) -> str:
    return str(s).replace("<", "‹").replace(">", "›")


def show_attribution(attr: Attribution) -> None:
    st.html(f"<p><b>Label explained:</b> {html.escape(attr.label)} (probability {attr.probability:.3f}) — "
            f"<b>method:</b> {html.escape(attr.method_title)}</p>")
    for note in attr.notes:
        st.info(note)
    st.html(highlighted_html(attr))
    st.caption("Green: the word pushed this label up; red: it pulled it down; stronger colour, larger effect. "
               f"Computed in {attr.seconds:.2f} s.")
    if len(attr.words):
        table = pd.DataFrame({"word": [w.text for w in attr.words], "weight": attr.weights})
        st.dataframe(table.sort_values("weight", ascending=False), hide_index=True, height=220)


def attention_figures(view: AttentionView, layer: int, head: int | None) -> tuple[go.Figure, go.Figure, go.Figure]:
    """(layer/head heatmap, focus-token attention per layer, rollout heatmap)."""
    ticks = [f"{i}:{_plot_safe(t)}" for i, t in enumerate(view.tokens)]
    mat = view.head_average(layer) if head is None else view.weights[layer, head]
    what = "heads averaged" if head is None else f"head {head}"
    heat = px.imshow(mat, x=ticks, y=ticks, color_continuous_scale="Blues", zmin=0,
                     labels={"x": "attends to (key)", "y": "token (query)", "color": "weight"},
                     title=f"Layer {layer}, {what}")
    focus = px.imshow(view.from_focus(), x=ticks, y=[f"layer {i}" for i in range(view.n_layers)],
                      color_continuous_scale="Blues", zmin=0, aspect="auto",
                      title=f"Attention from {view.focus_name} per layer (heads averaged)")
    roll = px.imshow(view.rollout(), x=ticks, y=ticks, color_continuous_scale="Purples", zmin=0,
                     title="Attention rollout through all layers")
    return heat, focus, roll


def show_attention(loaded: LoadedModel, text: str, key: str) -> None:
    st.caption(ATTENTION_NOTE)
    view = attention_view(loaded, text)
    for note in view.notes:
        st.info(note)
    c1, c2 = st.columns(2)
    layer = c1.slider("Layer", 0, view.n_layers - 1, view.n_layers - 1, key=f"{key}_att_layer")
    head_choice = c2.selectbox("Head", ["average"] + list(range(view.n_heads)), key=f"{key}_att_head")
    heat, focus, roll = attention_figures(view, layer, None if head_choice == "average" else int(head_choice))
    st.plotly_chart(heat, key=f"{key}_att_heat")
    st.plotly_chart(focus, key=f"{key}_att_focus")
    st.plotly_chart(roll, key=f"{key}_att_roll")


def attention_models(scorer: Any) -> list[LoadedModel]:
    """The transformers behind a scorer (each ensemble member's), for the attention view."""
    members = getattr(scorer, "members", None)
    if members:
        return [m for s in members for m in attention_models(s)]
    loaded = getattr(scorer, "loaded", None)
    return [loaded] if isinstance(loaded, LoadedModel) else []


def explain_row_panel(texts: Sequence[str], labels: Sequence[Label], scorer: Callable[[], Any] | Any,
                      key: str, corpus: Sequence[str] | None = None, expanded: bool = False) -> None:
    """Pick a row (or type a text), explain its label, and show the attention view; ``scorer`` may be a factory."""
    texts = list(texts)
    with st.expander("Explain a row: why this label?", expanded=expanded):
        c1, c2, c3 = st.columns([1, 1.4, 1.6])
        row = c1.number_input("Row", 0, max(len(texts) - 1, 0), 0, key=f"{key}_xp_row") if texts else None
        typed = c3.text_area("…or type a text", "", height=80, key=f"{key}_xp_text", max_chars=4000)
        method = c2.selectbox("Attribution", METHODS, key=f"{key}_xp_method",
                              format_func=_method_title)
        names = [l.name for l in labels]
        label = c2.selectbox("Label", ["(predicted)"] + names, key=f"{key}_xp_label")
        text = typed.strip() or (texts[int(row)] if texts and row is not None else "")
        store = f"{key}_xp_result"
        if st.button("Explain", key=f"{key}_xp_go", disabled=not text):
            with user_errors("Explaining"):
                built = scorer() if callable(scorer) and not hasattr(scorer, "score") else scorer
                attr = explain_text(built, text, labels, label=None if label == "(predicted)" else label,
                                    method=method, corpus=None if typed.strip() else (corpus or texts))
                st.session_state[store] = {"attr": attr, "models": attention_models(built)}
        show_explained(store, key)


def show_explained(store: str, key: str) -> None:
    """The stored explanation (if any), then the attention view of its model(s) behind a toggle."""
    shown = st.session_state.get(store)
    if shown is None:
        return
    show_attribution(shown["attr"])
    models = shown["models"]
    if models and st.toggle("Show the attention view", key=f"{key}_xp_att"):
        names_m = [m.spec.name for m in models]
        pick = st.selectbox("Model", names_m, key=f"{key}_xp_att_model") if len(models) > 1 else names_m[0]
        with user_errors("Attention view"):
            show_attention(models[names_m.index(pick)], shown["attr"].scored_text, key)


def explain_trained_panel(texts: Sequence[str], result: Any, key: str) -> None:
    """The fine-tune page's hook: explain rows with the model a run just trained (saved or not)."""
    from llm_backend.data.labels import make_labels
    from llm_backend.training.trained_models import scorer_for

    explain_row_panel(texts, make_labels(result.classes), scorer_for(result.model), key=key)


def explain_prompt_run_panel(result: Any, key: str) -> None:
    """The Prompt templates page's hook: why the LM gave a row of a finished run its label (same view as above).

    The row is re-scored in its own prompt (llm_backend.explain.prompt_runs), with the model the run used.
    """
    from llm_backend.explain.prompt_runs import explain_prompt_row

    from llm_backend.core.errors import UserError

    from .models import get_model

    with st.expander("Explain a row: why this label?", expanded=False):
        if result.mode == "generate":
            st.info("A generate run maps free text to labels, so there is no label score to explain. Run the template "
                    "in 'score labels' mode to see which words made the LM prefer a label.")
            return
        c1, c2, c3 = st.columns([1.6, 1.2, 1.2])
        pos = c1.selectbox("Row of this run", list(range(len(result.rows))), key=f"{key}_xp_pos",
                           format_func=lambda p: f"row {result.rows[p]} → {result.pred[p]}")
        method = c2.selectbox("Attribution", METHODS, key=f"{key}_xp_method",
                              format_func=_method_title)
        label = c3.selectbox("Label", ["(predicted)"] + list(result.labels), key=f"{key}_xp_label")
        st.caption("SmolLM2 on a CPU: occlusion scores the prompt once per word of the row (seconds on a quiet "
                   "machine, a minute or more on a busy one); gradient × input is faster but measured not faithful "
                   "for the LM (docs/explain.md).")
        store = f"{key}_xp_result"
        if st.button("Explain", key=f"{key}_xp_go", disabled=pos is None):
            with user_errors("Explaining"):
                if result.model_spec is None:
                    raise UserError("This run does not record which model it ran with: run the template again.")
                loaded = get_model(result.model_spec)
                attr = explain_prompt_row(result, int(pos), loaded, label=None if label == "(predicted)" else label,
                                          method=method)
                st.session_state[store] = {"attr": attr, "models": [loaded]}
        show_explained(store, key)
