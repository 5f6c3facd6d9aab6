"""2-D projections of real MiniLM embeddings: shapes, seeds, and new points (labels) landing where they belong.

Sizes stay at 120 texts (30 per AG News class): UMAP and t-SNE are slow on 2 shared cores. Only one test fits UMAP.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llm_backend.core.errors import DataError, UserError
from llm_backend.data.labels import Label, labels_from_gold
from llm_backend.maps.embedding_map import label_text
from llm_backend.maps.projection import (
    ProjectionParams,
    fit_projection,
    place_by_neighbours,
    sample_positions,
)
from llm_backend.models.embedding_cache import embed_texts

CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


@pytest.fixture(scope="module")
def slice_(ag_news: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([ag_news[ag_news["label"] == c].sample(30, random_state=3) for c in CLASSES], ignore_index=True)


@pytest.fixture(scope="module")
def vectors(embedder, slice_) -> np.ndarray:
    return embed_texts(embedder, slice_["text"].tolist())


@pytest.fixture(scope="module")
def label_vectors(embedder) -> np.ndarray:
    return embed_texts(embedder, [label_text(Label(c)) for c in CLASSES])  # same order as CLASSES


def _own_class_is_nearest(points: np.ndarray, coords: np.ndarray, gold: np.ndarray, classes: list[str]) -> int:
    """How many label points sit nearer (2-D) to the centre of their own class than to any other class centre."""
    centres = np.stack([coords[gold == c].mean(axis=0) for c in classes])
    dist = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2)
    return int((dist.argmin(axis=1) == np.arange(len(classes))).sum())


def test_pca_shape_determinism_and_transform(vectors):
    a = fit_projection(vectors, ProjectionParams("pca", seed=0))
    b = fit_projection(vectors, ProjectionParams("pca", seed=0))
    assert a.coords.shape == (len(vectors), 2) and a.coords.dtype == np.float32
    np.testing.assert_allclose(a.coords, b.coords, atol=1e-5)
    # Transforming a fitted text puts it exactly where the fit did: labels and texts share one space.
    np.testing.assert_allclose(a.transform(vectors[:5]), a.coords[:5], atol=1e-4)
    assert a.transform(np.zeros((0, vectors.shape[1]))).shape == (0, 2)
    assert any("variance" in n for n in a.notes)


def test_tsne_is_repeatable_and_places_labels(vectors, label_vectors, slice_):
    params = ProjectionParams("tsne", seed=1, perplexity=20, max_iter=500)
    a = fit_projection(vectors, params)
    b = fit_projection(vectors, params)
    assert a.coords.shape == (len(vectors), 2)
    np.testing.assert_allclose(a.coords, b.coords, atol=1e-4)
    assert any("cannot transform" in n for n in a.notes)
    labels_xy = a.transform(label_vectors)
    assert labels_xy.shape == (4, 2)
    # t-SNE cannot transform new points, so a label sits at the similarity-weighted mean of its 10 most similar texts'
    # map positions (computed here independently), and those texts are mostly of the label's own class: the star
    # lands among its own texts whatever the (chaotic) layout — a 1e-6 change in the vectors moves t-SNE clusters.
    gold = slice_["label"].to_numpy()
    sims = label_vectors @ vectors.T
    own = 0
    for i, cls in enumerate(CLASSES):
        top = np.argsort(-sims[i])[:10]
        w = np.clip(sims[i, top], 1e-6, None)
        np.testing.assert_allclose(labels_xy[i], (w[:, None] * a.coords[top]).sum(axis=0) / w.sum(), atol=1e-3)
        own += int((gold[top] == cls).sum() > 5)
    assert own >= 3, own


def test_umap_seed_and_transform(vectors, label_vectors, slice_):
    params = ProjectionParams("umap", seed=0, n_neighbors=10)
    a = fit_projection(vectors, params)
    b = fit_projection(vectors, params)
    c = fit_projection(vectors, ProjectionParams("umap", seed=1, n_neighbors=10))
    assert a.coords.shape == (len(vectors), 2)
    np.testing.assert_allclose(a.coords, b.coords, atol=1e-4)
    assert not np.allclose(a.coords, c.coords, atol=1e-2)  # the seed is what fixes the layout
    labels_xy = a.transform(label_vectors)
    assert labels_xy.shape == (4, 2) and np.isfinite(labels_xy).all()
    assert _own_class_is_nearest(labels_xy, a.coords, slice_["label"].to_numpy(), CLASSES) >= 3


def test_small_data_reduces_parameters_and_tiny_data_is_refused(vectors):
    tiny = fit_projection(vectors[:12], ProjectionParams("tsne", perplexity=30, max_iter=250))
    assert tiny.coords.shape == (12, 2) and any("perplexity reduced" in n for n in tiny.notes)
    with pytest.raises(DataError, match="at least 3 texts"):
        fit_projection(vectors[:2], ProjectionParams("pca"))
    with pytest.raises(UserError, match="Unknown projection"):
        fit_projection(vectors, ProjectionParams("mds"))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="250 iterations"):
        fit_projection(vectors, ProjectionParams("tsne", max_iter=100))


def test_place_by_neighbours_follows_the_most_similar_texts(vectors):
    coords = np.arange(len(vectors) * 2, dtype=np.float32).reshape(-1, 2)
    # A training vector's own position dominates its placement (cosine 1 with itself).
    placed = place_by_neighbours(vectors[[7]], vectors, coords, k=1)
    np.testing.assert_allclose(placed[0], coords[7])


def test_sample_positions_are_seeded_sorted_and_bounded():
    a = sample_positions(50_000, 20_000, seed=4)
    assert len(a) == 20_000 and len(np.unique(a)) == 20_000 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, sample_positions(50_000, 20_000, seed=4))
    assert not np.array_equal(a, sample_positions(50_000, 20_000, seed=5))
    np.testing.assert_array_equal(sample_positions(10, 20_000), np.arange(10))
    with pytest.raises(UserError):
        sample_positions(10, 2)


def test_label_text_uses_phrase_and_description():
    assert label_text(Label("card_arrival")) == "This text is about card arrival."
    assert label_text(Label("oil_prices", "Texts about oil, prices")).endswith("Texts about oil, prices")
    assert [l.name for l in labels_from_gold(["b", "a", "", "b"])] == ["a", "b"]
