"""The embedding map's cluster finder (form above the chart) and cluster list (tab below it).

Clustering, summaries, scores and the defaults are ``llm_backend.maps.clustering``'s. The finding is kept in the
session as a dict (``key`` = the map and settings it belongs to, plus the :class:`ClusterFinding` fields) so the
chart can colour by it and a finding for another map is never shown.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import streamlit as st

from llm_backend.maps.clustering import (
    CLUSTER_SPACES,
    ClusterParams,
    cluster_table,
    default_k,
    default_min_cluster_size,
    find_clusters,
)
from llm_backend.maps.embedding_map import MapResult

from . import state
from .errors import user_errors
from .persistence import record_run
from .text import plain, plain_list

CLUSTERS = "map_clusters"  # {"key", "ids", "params", "space", "summaries", "scores"}
FLASH = "map_flash"  # [(st function name, message)] shown once after a rerun
LISTED = 40  # clusters with their own "add" button; the rest only through "Add all"


def current_clusters(shown_key: Any) -> dict[str, Any] | None:
    """The session's clusters if they were found on the map being shown."""
    clusters = st.session_state.get(CLUSTERS)
    return clusters if clusters is not None and clusters["key"][0] == shown_key else None


def cluster_form(res: MapResult, shown_key: Any, map_texts: Sequence[str], gold: Sequence[str] | None, seed: int,
                 model_name: str) -> dict[str, Any] | None:
    """The "Find clusters" expander; returns the clusters of the shown map (new ones after a click)."""
    clusters = current_clusters(shown_key)
    pos = res.positions
    with st.expander("Find clusters (discover categories)", expanded=False):
        k1, k2, k3, k4 = st.columns(4)
        method = k1.radio("Method", ["kmeans", "hdbscan"], horizontal=True, key="map_cluster_method",
                          format_func={"kmeans": "k-means", "hdbscan": "HDBSCAN"}.get,
                          help="k-means: you choose k, every text gets a cluster. HDBSCAN: finds the number of "
                               "clusters itself and leaves outliers as noise.")
        k = int(k2.number_input("Clusters (k)", 2, 200, default_k(gold), key="map_cluster_k",
                                disabled=method != "kmeans"))
        min_size = int(k3.number_input("Minimum cluster size", 2, 10_000, default_min_cluster_size(len(pos)),
                                       key="map_cluster_min_size", disabled=method != "hdbscan"))
        space = k4.selectbox("Cluster on", CLUSTER_SPACES, key="map_cluster_space",
                             index=0 if method == "kmeans" else 1,
                             help="HDBSCAN finds dense regions far better in a low-dimensional map (UMAP works "
                                  "best); on the full embeddings most texts come out as noise.")
        if st.button("Find clusters", key="map_cluster_btn"):
            with user_errors("Clustering"), st.spinner("Clustering and extracting keywords…"):
                cp = ClusterParams(method=method, k=k, min_cluster_size=min_size, seed=seed)
                map_gold = [gold[i] for i in pos] if gold else None
                found = find_clusters(map_texts, res.vectors, res.projection.coords, cp, space, map_gold)
                clusters = {"key": (shown_key, cp, space), **vars(found)}
                st.session_state[CLUSTERS] = clusters
                st.session_state["map_colour"] = "Cluster"
                record_run("embedding-map", method, model_name,
                           found.run_settings(res.projection.params.describe(), len(pos)), found.run_metrics(),
                           labels=[])
    return clusters


def _add_labels(new: list, message: str) -> None:
    st.session_state[state.LABELS] = list(state.get(state.LABELS) or []) + new
    st.session_state[FLASH] = [("success", message)]
    st.rerun()


def clusters_tab(clusters: dict[str, Any] | None) -> None:
    """Scores against gold, one row per cluster, and buttons that add clusters to the session's label set."""
    if clusters is None:
        st.caption("Open **Find clusters** above the map to group the texts and get candidate labels.")
        return
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
    st.dataframe(pd.DataFrame(cluster_table(summaries)), width="stretch", hide_index=True)
    existing = {l.name.strip().lower() for l in state.get(state.LABELS) or []}
    st.markdown("**Add clusters to the label set** (name from the top keywords, description from all of them):")
    if st.button("Add all as labels", key="map_add_all"):
        new = [s.to_label() for s in summaries if s.name.lower() not in existing]
        _add_labels(new, f"Added {len(new)} labels to the label set.")
    for s in summaries[:LISTED]:
        c_a, c_b = st.columns([1, 4])
        added = s.name.lower() in existing
        if c_a.button("Added ✓" if added else f"➕ {plain(s.name)}", key=f"map_add_{s.cluster}", disabled=added):
            _add_labels([s.to_label()], f"Added '{plain(s.name)}' to the label set.")
        c_b.caption(f"cluster {s.cluster} · {s.size} texts · {plain_list(s.keywords)}")
    if len(summaries) > LISTED:
        st.caption(f"{len(summaries) - LISTED} smaller clusters are not listed; use 'Add all' or a larger minimum "
                   "size.")
