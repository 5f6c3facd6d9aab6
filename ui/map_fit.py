"""Fitting an embedding map with progress: embed (or reuse kept embeddings), project, keep the result.

The steps are ``llm_backend.maps``'s (``embed_positions``, ``fit_projection``, ``map_cache``); this module only shows
their progress, since a first UMAP compiles numba code and a large t-SNE takes minutes on a CPU.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from typing import Sequence

import numpy as np
import streamlit as st

from llm_backend.maps.embedding_map import MapResult, embed_positions, text_notes
from llm_backend.maps.map_cache import MapKey, keep_map, reusable_vectors
from llm_backend.maps.projection import ProjectionParams, fit_projection, umap_needs_compile
from llm_backend.models.registry import ModelSpec

from .errors import user_errors
from .models import get_model
from .progress import progress_bar

SLOW_TSNE_POINTS = 5000  # t-SNE above this many points takes minutes on a CPU: say so before starting


def fit_map(maps: MutableMapping, key: MapKey, spec: ModelSpec, params: ProjectionParams, texts: Sequence[str],
            positions: np.ndarray) -> None:
    """Build the map for ``key`` and keep it in ``maps`` (errors shown on the page, nothing kept then)."""
    if params.method == "tsne" and len(positions) > SLOW_TSNE_POINTS:
        st.warning(f"t-SNE on {len(positions):,} points can take several minutes on a CPU.")
    with user_errors("Building the map"):
        embedder = get_model(spec)
        vectors = reusable_vectors(maps, key[0], spec.key, positions)
        if vectors is None:
            bar, cb = progress_bar("Embedding texts…")
            vectors = embed_positions(embedder, texts, positions, progress=cb)
            bar.empty()
        label = f"Projecting {len(positions):,} points with {params.describe()}…"
        if params.method == "umap" and umap_needs_compile():
            label += (" The first UMAP on this server compiles its numba code (about 20 s on a free CPU, longer on "
                      "a busy one); later fits are fast.")
        with st.status(label, expanded=False) as status:
            projection = fit_projection(vectors, params)
            status.update(label=f"Projected {len(positions):,} points with {params.describe()} in "
                                f"{projection.seconds:.1f} s", state="complete")
        keep_map(maps, key, MapResult(positions, vectors, projection, len(texts), spec.key,
                                      list(projection.notes) + text_notes(texts, positions)))
