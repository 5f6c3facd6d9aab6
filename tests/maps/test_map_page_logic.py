"""What the map page decides without a browser: colours per choice, the kept-maps cache, one clustering run,
query neighbour tables and which labels are drawn. Real MiniLM embeddings of 60 AG News rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llm_backend.core.errors import UserError
from llm_backend.data.labels import Label
from llm_backend.maps.clustering import (
    CLUSTER_SPACES,
    NOISE,
    ClusterParams,
    cluster_table,
    default_k,
    default_min_cluster_size,
    find_clusters,
)
from llm_backend.maps.colouring import (
    CLUSTER,
    CONFIDENCE,
    CORRECT,
    GOLD,
    NO_COLOUR,
    PREDICTED,
    colour_classes,
    colour_options,
    colour_title,
    colour_values,
    default_colour,
)
from llm_backend.maps.embedding_map import label_counts, labels_to_place, neighbour_table, query_neighbours
from llm_backend.maps.map_cache import has_map_for, keep_map, map_key, reusable_vectors, shown_map_key
from llm_backend.maps.projection import ProjectionParams


def test_colour_options_and_defaults_follow_the_data(news):
    cols = list(news.columns)
    with_gold = colour_options(True, cols, "text")
    assert with_gold[:2] == [NO_COLOUR, GOLD] and "Column: text" not in with_gold and "Column: label" in with_gold
    assert GOLD not in colour_options(False, cols, "text")
    assert (default_colour(True), default_colour(False)) == (GOLD, NO_COLOUR)
    assert (colour_title(NO_COLOUR), colour_title("Column: source"), colour_title(GOLD)) == ("", "source", GOLD)


def test_colour_values_per_choice_and_what_is_missing(news):
    gold = news["label"].tolist()
    pos = np.array([0, 2, 4])
    assert colour_values(GOLD, pos, df=news, gold=gold, predictions=None, clusters=None).values == \
        [gold[0], gold[2], gold[4]]
    for choice in (PREDICTED, CORRECT, CONFIDENCE):
        assert colour_values(choice, pos, df=news, gold=gold, predictions=None, clusters=None).missing == "predictions"
    pred = list(gold)
    pred[2] = "other"
    probs = np.tile([0.7, 0.1, 0.1, 0.1], (len(news), 1))
    preds = {"pred": pred, "probs": probs}
    assert list(colour_values(CORRECT, pos, df=news, gold=gold, predictions=preds, clusters=None).values) == \
        ["correct", "incorrect", "correct"]
    assert colour_values(CORRECT, pos, df=news, gold=None, predictions=preds, clusters=None).missing == "gold"
    conf = colour_values(CONFIDENCE, pos, df=news, gold=gold, predictions=preds, clusters=None).values
    assert np.allclose(conf, 0.7) and colour_classes(conf) == ["0.7"]
    assert colour_values(CLUSTER, pos, df=news, gold=gold, predictions=None, clusters=None).missing == "clusters"
    col = colour_values("Column: label", pos, df=news, gold=gold, predictions=None, clusters=None).values
    assert list(col) == [gold[0], gold[2], gold[4]]
    assert colour_values(NO_COLOUR, pos, df=news, gold=gold, predictions=None, clusters=None).values is None
    assert colour_classes(np.linspace(0, 1, 100)) == []  # a colour scale: nothing to highlight


def test_kept_maps_reuse_embeddings_and_drop_the_oldest(built):
    maps: dict = {}
    pca, tsne = ProjectionParams("pca"), ProjectionParams("tsne")
    k1, k2 = map_key("fp", built.model_key, 100, pca), map_key("fp", built.model_key, 100, tsne)
    keep_map(maps, k1, built)
    assert has_map_for(maps, "fp") and not has_map_for(maps, "other")
    assert reusable_vectors(maps, "fp", built.model_key, built.positions) is built.vectors
    assert reusable_vectors(maps, "fp", built.model_key, built.positions[:-1]) is None
    assert reusable_vectors(maps, "fp", "another-model", built.positions) is None
    assert shown_map_key(maps, k2) == k1  # settings changed: the last map of the data stays until recomputed
    assert shown_map_key(maps, map_key("other", built.model_key, 100, pca)) is None
    for seed in range(4):
        keep_map(maps, map_key("fp", built.model_key, 100, ProjectionParams("pca", seed=seed)), built, keep=3)
    assert len(maps) == 3 and k1 not in maps and [k[3].seed for k in maps] == [1, 2, 3]


def test_find_clusters_on_either_space(built, news):
    texts, gold = news["text"].tolist(), news["label"].tolist()
    found = find_clusters(texts, built.vectors, built.projection.coords, ClusterParams(k=default_k(gold)),
                          gold=gold)
    assert found.n_clusters == 4 and found.scores["purity"] > 0.5 and found.run_metrics() is found.scores
    settings = found.run_settings("PCA", len(texts))
    assert settings["k"] == 4 and settings["min_cluster_size"] is None and settings["cluster_on"] == CLUSTER_SPACES[0]
    rows = cluster_table(found.summaries)
    assert [r["size"] for r in rows] == sorted((r["size"] for r in rows), reverse=True)
    assert sum(r["size"] for r in rows) == len(texts) and "majority gold" in rows[0]
    dense = find_clusters(texts, built.vectors, built.projection.coords,
                          ClusterParams("hdbscan", min_cluster_size=default_min_cluster_size(len(texts))),
                          CLUSTER_SPACES[1])
    assert dense.scores is None and dense.run_metrics() == {"clusters": dense.n_clusters}
    assert set(dense.ids.tolist()) - {NOISE} and dense.run_settings("PCA", 60)["k"] is None
    with pytest.raises(UserError, match="Cluster on"):
        find_clusters(texts, built.vectors, built.projection.coords, ClusterParams(), "somewhere")
    assert (default_k(None), default_k(["a", "a", ""]), default_k([str(i) for i in range(80)])) == (8, 2, 50)
    assert (default_min_cluster_size(60), default_min_cluster_size(20_000)) == (5, 200)


def test_neighbour_table_names_dataset_rows(embedder, built, news):
    gold = news["label"].tolist()
    idx, sims, _ = query_neighbours(embedder, "the team won the championship final", built.vectors, k=5)
    table = neighbour_table(news.index, built.positions, idx, sims, news["text"].tolist(), gold)
    assert list(table["row"]) == list(news.index[idx]) and list(table["gold"]) == [gold[i] for i in idx]
    assert "gold" not in neighbour_table(news.index, built.positions, idx, sims, news["text"].tolist(), None)


def test_labels_to_place_and_label_counts():
    labels, source = labels_to_place([Label("a")], ["x", "y"])
    assert [l.name for l in labels] == ["a"] and source == "the current label set"
    labels, source = labels_to_place([], ["y", "x", "y", ""])
    assert [l.name for l in labels] == ["x", "y"] and "gold classes" in source
    assert labels_to_place(None, None)[0] == []
    df = pd.DataFrame({"map_label": ["a", "", "a", "b"]})
    assert label_counts(df, " map_label ").to_dict() == {"a": 2, "b": 1}
