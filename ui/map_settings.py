"""The embedding map's settings panel: model, projection (with its own knobs), seed and point limit.

Returns plain values; fitting is ``llm_backend.maps``'s. The panel's open/closed default is fixed once per session:
a default that flips once a map exists made Streamlit remount the expander and collapse it under the user's hand
(issue 18: choosing UMAP hid "Compute map").
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from llm_backend.data.dataset import Dataset
from llm_backend.maps.embedding_map import DEFAULT_MAX_POINTS
from llm_backend.maps.projection import METHOD_TITLES, PROJECTION_METHODS, ProjectionParams
from llm_backend.models.registry import ModelSpec

from .language import dataset_language, embedder_index
from .models import model_picker, registry


@dataclass
class MapSettings:
    spec: ModelSpec
    params: ProjectionParams
    max_points: int
    compute: bool  # the Compute map button was clicked


def map_settings(ds: Dataset, have_map: bool) -> MapSettings:
    """Draw the settings expander and the Compute button."""
    st.session_state.setdefault("map_settings_open", not have_map)
    with st.expander("Map settings", expanded=st.session_state["map_settings_open"]):
        c1, c2, c3, c4 = st.columns(4)
        with c1:
            names = [s.name for s in registry().by_role("embedder")]
            spec = model_picker("embedder", "Embedding model", key="map_model",
                                index=embedder_index(names, dataset_language(ds.df, ds.text_column)))
        method = c2.radio("Projection", PROJECTION_METHODS, format_func=METHOD_TITLES.get, horizontal=True,
                          key="map_method",
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
    return MapSettings(spec, ProjectionParams(method=method, seed=seed, **extra), max_points, compute)
