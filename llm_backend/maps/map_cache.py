"""The few fitted maps a session keeps, so recolouring, querying and selecting never refit or re-embed.

A map is keyed by (dataset fingerprint, model key, point limit, projection parameters). Fitting UMAP/t-SNE takes
seconds to minutes, so changed settings keep showing the last map of the same data until the user asks for a new
one; a new projection of the same rows with the same model reuses the embeddings (20,000 × 384 floats = 30 MB,
and the slow part on a CPU).
"""
from __future__ import annotations

from collections.abc import MutableMapping
from typing import Hashable

import numpy as np

from llm_backend.maps.embedding_map import MapResult
from llm_backend.maps.projection import ProjectionParams

#: Maps kept per session: enough to flip between projections, few enough that 20,000-point maps fit in memory.
KEEP_MAPS = 3

MapKey = tuple[str, str, int, ProjectionParams]


def map_key(fingerprint: str, model_key: str, max_points: int, params: ProjectionParams) -> MapKey:
    return (fingerprint, model_key, int(max_points), params)


def has_map_for(maps: MutableMapping[Hashable, MapResult], fingerprint: str) -> bool:
    return any(k[0] == fingerprint for k in maps)


def reusable_vectors(maps: MutableMapping[Hashable, MapResult], fingerprint: str, model_key: str,
                     positions: np.ndarray) -> np.ndarray | None:
    """Embeddings of the same rows by the same model from a kept map, or None."""
    same = next((m for k, m in maps.items() if k[0] == fingerprint and m.model_key == model_key
                 and np.array_equal(m.positions, positions)), None)
    return None if same is None else same.vectors


def keep_map(maps: MutableMapping[Hashable, MapResult], key: MapKey, result: MapResult, keep: int = KEEP_MAPS) -> None:
    """Add ``result`` under ``key``, dropping the oldest maps beyond ``keep`` (dicts keep insertion order)."""
    for old in list(maps)[: max(0, len(maps) - keep + 1)]:
        del maps[old]
    maps[key] = result


def shown_map_key(maps: MutableMapping[Hashable, MapResult], key: MapKey) -> MapKey | None:
    """The map to show: the one for the current settings, else the newest map of the same dataset, else None."""
    if key in maps:
        return key
    return next((k for k in reversed(list(maps)) if k[0] == key[0]), None)
