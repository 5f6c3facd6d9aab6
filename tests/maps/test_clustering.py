"""Clustering real MiniLM embeddings of a 200-row, 4-class AG News slice: purity, keywords, candidate labels."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from llm_backend.core.errors import UserError
from llm_backend.data.labels import make_labels
from llm_backend.maps.clustering import (
    NOISE,
    ClusterParams,
    centroid_examples,
    cluster,
    cluster_keywords,
    cluster_scores,
    purity,
    summarise_clusters,
)
from llm_backend.maps.projection import ProjectionParams, fit_projection
from llm_backend.models.embedding_cache import embed_texts


@pytest.fixture(scope="module")
def news(ag_news: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([g.sample(50, random_state=0) for _, g in ag_news.groupby("label")], ignore_index=True)


@pytest.fixture(scope="module")
def vectors(embedder, news) -> np.ndarray:
    return embed_texts(embedder, news["text"].tolist())


def _chance(gold: list[str], clusters: np.ndarray, seed: int = 0) -> float:
    """Purity of the same clusters against shuffled gold labels: what cluster sizes alone give."""
    return purity(list(np.random.default_rng(seed).permutation(gold)), clusters)


def test_kmeans_recovers_the_classes(news, vectors):
    gold = news["label"].tolist()
    ids = cluster(vectors, ClusterParams("kmeans", k=4, seed=0))
    assert sorted(set(ids.tolist())) == [0, 1, 2, 3]
    np.testing.assert_array_equal(ids, cluster(vectors, ClusterParams("kmeans", k=4, seed=0)))
    scores = cluster_scores(gold, ids)
    assert scores["purity"] > 0.6 and scores["purity"] > _chance(gold, ids) + 0.25
    assert scores["nmi"] > 0.3 and scores["noise"] == 0.0


def test_hdbscan_on_the_map_finds_dense_classes(news, vectors):
    gold = news["label"].tolist()
    coords = fit_projection(vectors, ProjectionParams("tsne", seed=0, max_iter=500)).coords
    ids = cluster(coords, ClusterParams("hdbscan", min_cluster_size=10))
    scores = cluster_scores(gold, ids)
    assert scores["clusters"] >= 2 and scores["noise"] < 0.6
    kept = ids != NOISE
    assert scores["purity"] > 0.6 and scores["purity"] > _chance(list(np.asarray(gold)[kept]), ids[kept]) + 0.25


def test_keywords_are_real_words_of_their_cluster(news, vectors):
    texts = news["text"].tolist()
    ids = cluster(vectors, ClusterParams("kmeans", k=4, seed=0))
    keywords = cluster_keywords(texts, ids, top_n=5)
    assert set(keywords) == set(ids.tolist())
    for c, words in keywords.items():
        assert len(words) == 5
        members = " ".join(t.lower() for t, i in zip(texts, ids) if i == c)
        for w in words:
            assert re.search(rf"\b{re.escape(w)}\b", members), (c, w)
            assert w not in ENGLISH_STOP_WORDS and w.isalpha() and len(w) >= 3
    # c-TF-IDF makes the top words differ between clusters.
    assert len({words[0] for words in keywords.values()}) == 4


def test_summaries_give_centroid_texts_and_valid_candidate_labels(news, vectors):
    texts, gold = news["text"].tolist(), news["label"].tolist()
    ids = cluster(vectors, ClusterParams("kmeans", k=4, seed=0))
    examples = centroid_examples(vectors, ids, n=3)
    for c, rows in examples.items():
        assert len(rows) == 3 and all(ids[r] == c for r in rows)
        # The first example is the member most similar to the cluster's mean direction.
        centre = vectors[ids == c].mean(axis=0)
        sims = vectors[ids == c] @ (centre / np.linalg.norm(centre))
        assert np.isclose(vectors[rows[0]] @ (centre / np.linalg.norm(centre)), sims.max())
    summaries = summarise_clusters(texts, vectors, ids, gold)
    assert [s.size for s in summaries] == sorted((s.size for s in summaries), reverse=True)
    assert sum(s.size for s in summaries) == len(texts)
    labels = make_labels([s.to_label() for s in summaries])  # unique, non-empty names
    assert all(l.description.startswith("Texts about ") for l in labels)
    assert all(s.name.split("_")[0] == s.keywords[0] for s in summaries)
    assert {s.majority_gold for s in summaries} <= set(gold) and all(0.25 <= s.gold_share <= 1 for s in summaries)


def test_purity_noise_and_bad_parameters():
    gold = ["a", "a", "b", "b", "c"]
    assert purity(gold, [0, 0, 1, 1, 2]) == 1.0
    assert purity(gold, [0, 0, 0, 0, NOISE]) == 0.5  # noise row left out
    assert cluster_scores(gold, [NOISE] * 5)["noise"] == 1.0
    assert cluster_keywords(["", " "], np.array([0, 1])) == {0: [], 1: []}
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(UserError, match="k ≤ 4"):
        cluster(x, ClusterParams("kmeans", k=5))
    with pytest.raises(UserError, match="at least 2"):
        cluster(x, ClusterParams("kmeans", k=1))
    with pytest.raises(UserError, match="larger than the data"):
        cluster(x, ClusterParams("hdbscan", min_cluster_size=10))
