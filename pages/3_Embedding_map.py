"""Embedding map: the dataset in 2-D, coloured by gold, predictions or clusters, with the label set drawn in.

The page reads widgets, calls :mod:`llm_backend.maps.embedding_map` / :mod:`~llm_backend.maps.projection` /
:mod:`~llm_backend.maps.clustering`, and draws. Fitted maps are kept in the session keyed by (dataset, model, sample,
projection parameters), so recolouring, querying and selecting never refit.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from llm_backend.data.files import to_csv_safe
from llm_backend.data.labels import Label, labels_from_gold
from llm_backend.maps.clustering import (
    NOISE,
    ClusterParams,
    cluster,
    cluster_scores,
    summarise_clusters,
)
from llm_backend.maps.embedding_map import (
    DEFAULT_MAP_COLUMN,
    DEFAULT_MAX_POINTS,
    MapResult,
    assign_label,
    categorical,
    confidence,
    correctness,
    embed_positions,
    hover_texts,
    is_continuous,
    map_figure,
    next_selection,
    place_labels,
    query_neighbours,
    selected_rows,
    selection_to_positions,
    text_notes,
    valid_predictions,
)
from llm_backend.maps.projection import (
    METHOD_TITLES,
    PROJECTION_METHODS,
    ProjectionParams,
    fit_projection,
    sample_positions,
    umap_needs_compile,
)
from ui import state
from ui.errors import user_errors
from ui.models import get_model, model_picker, registry
from ui.persistence import record_run
from ui.progress import progress_bar
from ui.language import dataset_language, embedder_index
from ui.sidebar import render_sidebar
from ui.text import plain, plain_list

# Session keys of this page. SELECTED holds dataset row positions; tests may set it directly.
MAPS = "map_results"  # {key: MapResult}, the few most recent fits
CLUSTERS = "map_clusters"  # {"key", "ids", "summaries", "scores", "params"}
SELECTED = "map_selected"
LAST_EVENT = "map_last_event"
LAST_FIGURE = "map_last_figure"
FLASH = "map_flash"
CHART_KEY = "map_chart"
KEEP_MAPS = 3

st.set_page_config(page_title="Embedding map · Zero-Shot Studio", page_icon="🗺️", layout="wide")
render_sidebar()
st.title("🗺️ Embedding map")
st.caption("Every text as a point: similar texts sit together. See where your labels fall, select groups of points, "
           "find texts like a query, and discover categories with clustering.")

ds = state.require_dataset()
texts = ds.texts()
gold = ds.gold()
n_rows = len(texts)

for kind, message in st.session_state.pop(FLASH, []):
    getattr(st, kind)(message)

# --- settings ----------------------------------------------------------------------------------------------------
maps: dict = st.session_state.setdefault(MAPS, {})
have_map_for_data = any(k[0] == ds.fingerprint for k in maps)
# The open/closed default is fixed once per session: a default that flips once a map exists made Streamlit remount
# the expander and collapse it under the user's hand (issue 18: choosing UMAP hid "Compute map").
st.session_state.setdefault("map_settings_open", not have_map_for_data)
with st.expander("Map settings", expanded=st.session_state["map_settings_open"]):
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        names = [s.name for s in registry().by_role("embedder")]
        spec = model_picker("embedder", "Embedding model", key="map_model",
                            index=embedder_index(names, dataset_language(ds.df, ds.text_column)))
    method = c2.radio("Projection", PROJECTION_METHODS, format_func=METHOD_TITLES.get, horizontal=True, key="map_method",
                      help="PCA: instant, linear, clusters overlap. UMAP: keeps local and some global structure; "
                           "its first use compiles code (~20 s). t-SNE: tight local clusters, slow on large data.")
    seed = int(c3.number_input("Seed", min_value=0, value=0, step=1, key="map_seed",
                               help="Same data, settings and seed give the same map."))
    max_points = int(c4.number_input("Point limit", min_value=100, value=DEFAULT_MAX_POINTS, step=1000,
                                     key="map_max_points",
                                     help="Above this many rows a seeded random sample is drawn."))
    extra: dict = {}
    if method == "umap":
        u1, u2, u3 = st.columns(3)
        extra["n_neighbors"] = int(u1.slider("Neighbours (n_neighbors)", 2, 100, 15, key="map_umap_nn",
                                             help="Small: local detail. Large: global layout."))
        extra["min_dist"] = float(u2.slider("Minimum distance (min_dist)", 0.0, 0.99, 0.1, step=0.01,
                                            key="map_umap_md", help="Small: tight clumps. Large: evenly spread."))
        extra["metric"] = u3.selectbox("Metric", ["cosine", "euclidean"], key="map_umap_metric")
    elif method == "tsne":
        t1, t2 = st.columns(2)
        extra["perplexity"] = float(t1.slider("Perplexity", 5, 100, 30, key="map_tsne_perplexity",
                                              help="Roughly the number of neighbours each point attends to."))
        extra["max_iter"] = int(t2.number_input("Iterations", min_value=250, max_value=5000, value=1000, step=250,
                                                key="map_tsne_iter"))
        st.caption("t-SNE cannot place new points in a fitted map: labels and queries are placed at the "
                   "similarity-weighted mean position of their 10 most similar texts.")
compute = st.button("Compute map", type="primary", key="map_compute")

params = ProjectionParams(method=method, seed=seed, **extra)
map_key = (ds.fingerprint, spec.key, max_points, params)
positions = sample_positions(n_rows, max_points, seed)
if len(positions) < n_rows:
    st.info(f"The dataset has {n_rows:,} rows; the map shows a seeded random sample of {len(positions):,} "
            f"(point limit {max_points:,}, seed {seed}). Raise the limit in Map settings to see more.")

# Compute on request, and by itself the first time this dataset is opened here (the default PCA is quick).
if map_key not in maps and (compute or not have_map_for_data):
    if method == "tsne" and len(positions) > 5000:
        st.warning(f"t-SNE on {len(positions):,} points can take several minutes on a CPU.")
    with user_errors("Building the map"):
        embedder = get_model(spec)
        # Another map of the same rows with the same model shares its embeddings (20,000 × 384 floats = 30 MB).
        same = next((m for k, m in maps.items() if k[0] == ds.fingerprint and m.model_key == spec.key
                     and np.array_equal(m.positions, positions)), None)
        if same is not None:
            vectors = same.vectors
        else:
            bar, cb = progress_bar("Embedding texts…")
            vectors = embed_positions(embedder, texts, positions, progress=cb)
            bar.empty()
        label = f"Projecting {len(positions):,} points with {params.describe()}…"
        if method == "umap" and umap_needs_compile():
            label += " The first UMAP on this server compiles its numba code (about 20 s on a free CPU, longer on a busy one); later fits are fast."
        with st.status(label, expanded=False) as status:
            projection = fit_projection(vectors, params)
            status.update(label=f"Projected {len(positions):,} points with {params.describe()} in "
                                f"{projection.seconds:.1f} s", state="complete")
        result = MapResult(positions, vectors, projection, n_rows, spec.key,
                           list(projection.notes) + text_notes(texts, positions))
        for old in list(maps)[: max(0, len(maps) - KEEP_MAPS + 1)]:
            del maps[old]
        maps[map_key] = result

shown_key = map_key if map_key in maps else next((k for k in reversed(list(maps)) if k[0] == ds.fingerprint), None)
if shown_key is None:
    st.info("Choose the settings above and click **Compute map**.")
    st.stop()
res: MapResult = maps[shown_key]
if shown_key != map_key:
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
clusters = st.session_state.get(CLUSTERS)
if clusters is not None and clusters["key"][0] != shown_key:
    clusters = None
with st.expander("Find clusters (discover categories)", expanded=False):
    k1, k2, k3, k4 = st.columns(4)
    cl_method = k1.radio("Method", ["kmeans", "hdbscan"], horizontal=True, key="map_cluster_method",
                         format_func={"kmeans": "k-means", "hdbscan": "HDBSCAN"}.get,
                         help="k-means: you choose k, every text gets a cluster. HDBSCAN: finds the number of "
                              "clusters itself and leaves outliers as noise.")
    default_k = min(max(2, len(set(g for g in gold if g)) if gold else 8), 50)
    k = int(k2.number_input("Clusters (k)", 2, 200, default_k, key="map_cluster_k", disabled=cl_method != "kmeans"))
    min_size = int(k3.number_input("Minimum cluster size", 2, 10_000, max(5, len(pos) // 100),
                                   key="map_cluster_min_size", disabled=cl_method != "hdbscan"))
    space = k4.selectbox("Cluster on", ["full embeddings", "the 2-D map"], key="map_cluster_space",
                         index=0 if cl_method == "kmeans" else 1,
                         help="HDBSCAN finds dense regions far better in a low-dimensional map (UMAP works best); "
                              "on the full embeddings most texts come out as noise.")
    if st.button("Find clusters", key="map_cluster_btn"):
        with user_errors("Clustering"), st.spinner("Clustering and extracting keywords…"):
            cp = ClusterParams(method=cl_method, k=k, min_cluster_size=min_size, seed=seed)
            ids = cluster(res.vectors if space == "full embeddings" else res.projection.coords, cp)
            map_gold = [gold[i] for i in pos] if gold else None
            clusters = {"key": (shown_key, cp, space), "ids": ids, "params": cp, "space": space,
                        "summaries": summarise_clusters(map_texts, res.vectors, ids, map_gold),
                        "scores": cluster_scores(map_gold, ids) if map_gold else None}
            st.session_state[CLUSTERS] = clusters
            st.session_state["map_colour"] = "Cluster"
            record_run("embedding-map", cl_method, map_spec.name,
                       {"projection": res.projection.params.describe(), "cluster_on": space, "k": k if cl_method == "kmeans" else None,
                        "min_cluster_size": min_size if cl_method == "hdbscan" else None, "seed": seed,
                        "n_points": len(pos)},
                       clusters["scores"] or {"clusters": len(set(ids.tolist()) - {NOISE})}, labels=[])

# --- colour, labels, query ----------------------------------------------------------------------------------------
preds = valid_predictions(state.get(state.PREDICTIONS), ds.fingerprint, n_rows)
columns = [str(c) for c in ds.df.columns if c != ds.text_column]
options = ["(none)"] + (["Gold label"] if gold else []) + ["Predicted label", "Correct / incorrect", "Confidence",
                                                          "Cluster"] + [f"Column: {c}" for c in columns]
if st.session_state.get("map_colour") not in options:
    st.session_state["map_colour"] = "Gold label" if gold else "(none)"
o1, o5, o2, o3, o4 = st.columns([2, 2, 1, 3, 1])
colour_choice = o1.selectbox("Colour by", options, key="map_colour")
show_labels = o2.checkbox("Show labels", value=True, key="map_show_labels")
query = o3.text_input("Find texts like…", key="map_query", placeholder="type a sentence; its nearest texts are ringed")
k_nn = int(o4.number_input("Neighbours", 1, 500, 10, key="map_query_k"))

colour = None
if colour_choice == "Gold label" and gold:
    colour = [gold[i] for i in pos]
elif colour_choice in ("Predicted label", "Correct / incorrect", "Confidence"):
    if preds is None:
        st.info("No predictions for this dataset yet: run the zero-shot page first, then come back to colour by them.")
        if (Path(__file__).parent / "1_Zero-shot_labels.py").is_file():
            st.page_link("pages/1_Zero-shot_labels.py", label="Zero-shot label testing", icon="🏷️")
    elif colour_choice == "Predicted label":
        colour = [str(preds["pred"][i]) for i in pos]
    elif colour_choice == "Confidence":
        colour = confidence(preds)[pos]
    elif gold:
        colour = correctness([gold[i] for i in pos], [str(preds["pred"][i]) for i in pos])
    else:
        st.info("Correct / incorrect needs a gold-label column: choose one on the Home page.")
elif colour_choice == "Cluster":
    if clusters is None:
        st.info("No clusters for this map yet: open **Find clusters** above.")
    else:
        names = {s.cluster: s.name for s in clusters["summaries"]}
        ids = clusters["ids"]
        colour = np.where(ids == NOISE, "noise", pd.Series(ids).map(lambda c: f"{c}: {names.get(c, c)}").to_numpy())
elif colour_choice.startswith("Column: "):
    colour = ds.df[colour_choice.removeprefix("Column: ")].to_numpy()[pos]

classes = sorted(set(categorical(colour, 200))) if colour is not None and not is_continuous(colour) else []
focus = o5.selectbox("Highlight one class", ["(all)"] + classes, key="map_focus", disabled=not classes,
                     help="Draws one class in red over grey: readable at any number of classes.")
focus = None if focus == "(all)" else focus

label_set: list[Label] = list(state.get(state.LABELS) or [])
label_source = "the current label set"
if not label_set and gold:
    label_set, label_source = labels_from_gold(gold), "the gold classes (no label set yet)"
label_points = None
if show_labels and label_set:
    with user_errors("Placing the labels"):
        label_points = place_labels(embedder, res.projection, label_set)
        st.caption(f"★ Labels from {label_source}, embedded as “This text is about <label>.” and placed with the "
                   f"same {METHOD_TITLES[res.projection.params.method]} fit.")

highlight = query_xy = None
neighbours = None
if query.strip():
    with user_errors("Searching"):
        idx, sims, qvec = query_neighbours(embedder, query, res.vectors, k_nn)
        highlight, query_xy = idx, res.projection.transform(qvec[None, :])[0]
        neighbours = pd.DataFrame({"row": ds.df.index[pos[idx]], "similarity": np.round(sims, 3),
                                   "text": [map_texts[i] for i in idx]})
        if gold:
            neighbours["gold"] = [gold[pos[i]] for i in idx]

# --- the chart ----------------------------------------------------------------------------------------------------
if res.hover is None:  # tooltips once per map: recolouring 20,000 points then only regroups arrays
    res.hover = hover_texts(map_texts)
fig = map_figure(res.projection.coords, map_texts, pos, colour=colour, hover=res.hover,
                 colour_name="" if colour_choice == "(none)" else colour_choice.removeprefix("Column: "),
                 labels=label_points, highlight=highlight, query_xy=query_xy, query_text=query, focus=focus,
                 max_groups=200)
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
    if not selected:
        st.caption("Nothing selected yet. Use box or lasso select on the map, or select a query's neighbours.")
    else:
        rows = selected_rows(ds.df, selected)
        st.dataframe(rows, width="stretch")
        b1, b2 = st.columns([1, 3])
        b1.download_button("Download selected rows (CSV)", to_csv_safe(rows, index=True).encode("utf-8"),
                           file_name="selected_rows.csv", mime="text/csv", key="map_download")
        if b2.button("Clear selection", key="map_clear_selection"):
            st.session_state[SELECTED] = []
            st.rerun()
        st.markdown("**Label the selection** — kept as a column of the session's dataset; the fine-tune page can "
                    "train from it.")
        a1, a2, a3 = st.columns([2, 2, 1])
        column = a1.text_input("Column", value=DEFAULT_MAP_COLUMN, key="map_assign_column")
        value = a2.text_input("Label", key="map_assign_value",
                              placeholder=", ".join(l.name for l in label_set[:5]) or "e.g. billing")
        if a3.button("Assign label", key="map_assign_btn"):
            with user_errors("Assigning the label"):
                new_df = assign_label(ds.df, selected, value, column, protected=[ds.text_column])
                state.set_dataset(replace(ds, df=new_df))
                counts = new_df[column.strip()].astype(str).replace("", np.nan).dropna().value_counts()
                st.session_state[FLASH] = [("success", f"Labelled {len(selected)} rows '{plain(value.strip())}' in column "
                                                       f"'{plain(column.strip())}' ({plain_list(f'{k}: {v}' for k, v in counts.items())}).")]
                st.rerun()

with tab_nn:
    if neighbours is None:
        st.caption("Type a query above the map to list its nearest texts (cosine similarity of the embeddings).")
    else:
        st.dataframe(neighbours, width="stretch", hide_index=True)
        if st.button(f"Select these {len(neighbours)} texts", key="map_select_neighbours"):
            st.session_state[SELECTED] = [int(pos[i]) for i in highlight]
            st.rerun()

with tab_cl:
    if clusters is None:
        st.caption("Open **Find clusters** above the map to group the texts and get candidate labels.")
    else:
        cp: ClusterParams = clusters["params"]
        st.caption(f"{cp.describe()} on {clusters['space']}.")
        if clusters["scores"]:
            sc = clusters["scores"]
            m1, m2, m3, m4 = st.columns(4)
            m1.metric("Purity vs gold", f"{sc['purity']:.2f}", help="Share of texts in their cluster's majority class "
                      "(noise excluded). Rises with the number of clusters.")
            m2.metric("NMI", f"{sc['nmi']:.2f}")
            m3.metric("Clusters", sc["clusters"])
            m4.metric("Noise", f"{sc['noise']:.0%}")
        summaries = clusters["summaries"]
        if not summaries:
            st.warning("No clusters found: every text came out as noise. Lower the minimum cluster size, or "
                       "cluster on the 2-D map (best after UMAP).")
        table = pd.DataFrame([{"cluster": s.cluster, "size": s.size, "candidate label": s.name,
                               "keywords": ", ".join(s.keywords), "texts nearest the centre": " ‖ ".join(
                                   t[:120] for t in s.examples),
                               **({"majority gold": s.majority_gold, "share": round(s.gold_share, 2)}
                                  if s.majority_gold is not None else {})} for s in summaries])
        st.dataframe(table, width="stretch", hide_index=True)
        existing = {l.name.strip().lower() for l in state.get(state.LABELS) or []}
        st.markdown("**Add clusters to the label set** (name from the top keywords, description from all of them):")
        if st.button("Add all as labels", key="map_add_all"):
            new = [s.to_label() for s in summaries if s.name.lower() not in existing]
            st.session_state[state.LABELS] = list(state.get(state.LABELS) or []) + new
            st.session_state[FLASH] = [("success", f"Added {len(new)} labels to the label set.")]
            st.rerun()
        for s in summaries[:40]:
            c_a, c_b = st.columns([1, 4])
            added = s.name.lower() in existing
            if c_a.button("Added ✓" if added else f"➕ {plain(s.name)}", key=f"map_add_{s.cluster}", disabled=added):
                st.session_state[state.LABELS] = list(state.get(state.LABELS) or []) + [s.to_label()]
                st.session_state[FLASH] = [("success", f"Added '{plain(s.name)}' to the label set.")]
                st.rerun()
            c_b.caption(f"cluster {s.cluster} · {s.size} texts · {plain_list(s.keywords)}")
        if len(summaries) > 40:
            st.caption(f"{len(summaries) - 40} smaller clusters are not listed; use 'Add all' or a larger minimum size.")
