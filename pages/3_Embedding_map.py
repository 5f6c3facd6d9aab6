"""Embedding map: the dataset in 2-D, coloured by gold, predictions or clusters, with the label set drawn in.

The page reads widgets, calls :mod:`llm_backend.maps` (``embedding_map``, ``projection``, ``clustering``,
``colouring``, ``map_cache``) and draws; the settings panel, fitting with progress, the cluster finder and the
tabs below the chart are ``ui.map_settings``, ``ui.map_fit``, ``ui.map_clusters`` and ``ui.map_selection``. Fitted
maps are kept in the session keyed by (dataset, model, sample, projection parameters), so recolouring, querying and
selecting never refit.
"""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from llm_backend.maps.colouring import colour_classes, colour_options, colour_title, colour_values, default_colour
from llm_backend.maps.embedding_map import (
    MapResult,
    hover_texts,
    labels_to_place,
    map_figure,
    neighbour_table,
    next_selection,
    place_labels,
    query_neighbours,
    selection_to_positions,
    valid_predictions,
)
from llm_backend.maps.map_cache import has_map_for, map_key, shown_map_key
from llm_backend.maps.projection import METHOD_TITLES, sample_positions
from ui import state
from ui.errors import user_errors
from ui.map_clusters import FLASH, cluster_form, clusters_tab
from ui.map_fit import fit_map
from ui.map_selection import SELECTED, neighbours_tab, selection_tab
from ui.map_settings import map_settings
from ui.models import get_model, registry
from ui.sidebar import render_sidebar

# Session keys of this page (clusters and the selection: ui.map_clusters / ui.map_selection).
MAPS = "map_results"  # {key: MapResult}, the few most recent fits (llm_backend.maps.map_cache)
LAST_EVENT = "map_last_event"
LAST_FIGURE = "map_last_figure"
CHART_KEY = "map_chart"
MISSING = {"predictions": "No predictions for this dataset yet: run the zero-shot page first, then come back to "
                          "colour by them.",
           "gold": "Correct / incorrect needs a gold-label column: choose one on the Home page.",
           "clusters": "No clusters for this map yet: open **Find clusters** above."}

st.set_page_config(page_title="Embedding map · Zero-Shot Studio", page_icon="🗺️", layout="wide")
render_sidebar()
st.title("🗺️ Embedding map")
st.caption("Every text as a point: similar texts sit together. See where your labels fall, select groups of points, "
           "find texts like a query, and discover categories with clustering.")

ds = state.require_dataset()
texts, gold = ds.texts(), ds.gold()
n_rows = len(texts)
for kind, message in st.session_state.pop(FLASH, []):
    getattr(st, kind)(message)

# --- settings and fitting ------------------------------------------------------------------------------------------
maps: dict = st.session_state.setdefault(MAPS, {})
have_map_for_data = has_map_for(maps, ds.fingerprint)
settings = map_settings(ds, have_map_for_data)
spec, params, max_points = settings.spec, settings.params, settings.max_points
key = map_key(ds.fingerprint, spec.key, max_points, params)
positions = sample_positions(n_rows, max_points, params.seed)
if len(positions) < n_rows:
    st.info(f"The dataset has {n_rows:,} rows; the map shows a seeded random sample of {len(positions):,} "
            f"(point limit {max_points:,}, seed {params.seed}). Raise the limit in Map settings to see more.")
# Compute on request, and by itself the first time this dataset is opened here (the default PCA is quick).
if key not in maps and (settings.compute or not have_map_for_data):
    fit_map(maps, key, spec, params, texts, positions)

shown_key = shown_map_key(maps, key)
if shown_key is None:
    st.info("Choose the settings above and click **Compute map**.")
    st.stop()
res: MapResult = maps[shown_key]
if shown_key != key:
    st.warning(f"Showing the map made with {shown_key[3].describe()}. The settings changed: click **Compute map** "
               "to update it.")
for note in res.notes:
    st.caption(note)
# Labels and queries must use the model the shown map was made with, even if the picker moved on.
map_spec = spec if spec.key == res.model_key else next(
    (s for s in registry().by_role("embedder") if s.key == res.model_key), spec)
embedder = get_model(map_spec)
pos = res.positions
map_texts = [texts[i] for i in pos]

# --- clustering (above the chart, so new clusters colour it in the same run) -------------------------------------
clusters = cluster_form(res, shown_key, map_texts, gold, params.seed, map_spec.name)

# --- colour, labels, query ----------------------------------------------------------------------------------------
options = colour_options(bool(gold), ds.df.columns, ds.text_column)
if st.session_state.get("map_colour") not in options:
    st.session_state["map_colour"] = default_colour(bool(gold))
o1, o5, o2, o3, o4 = st.columns([2, 2, 1, 3, 1])
colour_choice = o1.selectbox("Colour by", options, key="map_colour")
show_labels = o2.checkbox("Show labels", value=True, key="map_show_labels")
query = o3.text_input("Find texts like…", key="map_query", placeholder="type a sentence; its nearest texts are ringed")
k_nn = int(o4.number_input("Neighbours", 1, 500, 10, key="map_query_k"))

colouring = colour_values(colour_choice, pos, df=ds.df, gold=gold,
                          predictions=valid_predictions(state.get(state.PREDICTIONS), ds.fingerprint, n_rows),
                          clusters=None if clusters is None else (clusters["ids"], clusters["summaries"]))
if colouring.missing:
    st.info(MISSING[colouring.missing])
    if colouring.missing == "predictions" and (Path(__file__).parent / "1_Zero-shot_labels.py").is_file():
        st.page_link("pages/1_Zero-shot_labels.py", label="Zero-shot label testing", icon="🏷️")
classes = colour_classes(colouring.values)
focus = o5.selectbox("Highlight one class", ["(all)"] + classes, key="map_focus", disabled=not classes,
                     help="Draws one class in red over grey: readable at any number of classes.")
focus = None if focus == "(all)" else focus

label_set, label_source = labels_to_place(state.get(state.LABELS), gold)
label_points = None
if show_labels and label_set:
    with user_errors("Placing the labels"):
        label_points = place_labels(embedder, res.projection, label_set)
        st.caption(f"★ Labels from {label_source}, embedded as “This text is about <label>.” and placed with the "
                   f"same {METHOD_TITLES[res.projection.params.method]} fit.")

highlight = query_xy = neighbours = None
if query.strip():
    with user_errors("Searching"):
        idx, sims, qvec = query_neighbours(embedder, query, res.vectors, k_nn)
        highlight, query_xy = idx, res.projection.transform(qvec[None, :])[0]
        neighbours = neighbour_table(ds.df.index, pos, idx, sims, map_texts, gold)

# --- the chart ----------------------------------------------------------------------------------------------------
if res.hover is None:  # tooltips once per map: recolouring 20,000 points then only regroups arrays
    res.hover = hover_texts(map_texts)
fig = map_figure(res.projection.coords, map_texts, pos, colour=colouring.values, hover=res.hover,
                 colour_name=colour_title(colour_choice), labels=label_points, highlight=highlight,
                 query_xy=query_xy, query_text=query, focus=focus, max_groups=200)
figure_id = json.dumps([repr(shown_key), colour_choice, focus, query, k_nn, show_labels,
                        None if label_points is None else label_points["text"].tolist(),
                        None if clusters is None else repr(clusters["key"])])
event = st.plotly_chart(fig, width="stretch", key=CHART_KEY, on_select="rerun",
                        selection_mode=("points", "box", "lasso"))
event_pos = selection_to_positions(event)
st.session_state[SELECTED] = next_selection(event_pos, list(st.session_state.get(SELECTED, [])),
                                            list(st.session_state.get(LAST_EVENT, [])),
                                            figure_changed=st.session_state.get(LAST_FIGURE) != figure_id)
st.session_state[LAST_EVENT] = event_pos
st.session_state[LAST_FIGURE] = figure_id
st.caption(f"{len(pos):,} points · {res.projection.params.describe()} · fitted in {res.projection.seconds:.1f} s. "
           "Use box or lasso select (top-right toolbar) to pick points; double-click to clear.")

# --- below the chart: selection, neighbours, clusters ----------------------------------------------------------------
selected: list[int] = list(st.session_state.get(SELECTED, []))
tab_sel, tab_nn, tab_cl = st.tabs([f"Selection ({len(selected)})", "Query neighbours", "Clusters"])
with tab_sel:
    selection_tab(ds, selected, label_set)
with tab_nn:
    neighbours_tab(neighbours, pos, highlight)
with tab_cl:
    clusters_tab(clusters)
