"""Fixtures shared by the map tests: one sampled AG News slice and its PCA map."""
from __future__ import annotations

import pandas as pd
import pytest

from llm_backend.maps.embedding_map import build_map
from llm_backend.maps.projection import ProjectionParams


@pytest.fixture(scope="module")
def news(ag_news: pd.DataFrame) -> pd.DataFrame:
    """60 rows, 15 per class, with the original (non-contiguous) index a sampled dataset has."""
    return pd.concat([g.sample(15, random_state=2) for _, g in ag_news.groupby("label")]).sort_index()


@pytest.fixture(scope="module")
def built(embedder, news):
    return build_map(embedder, news["text"].tolist(), ProjectionParams("pca"))
