"""The map's logic without a browser: selections to rows, label columns, query neighbours, colours and the figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llm_backend.core.errors import UserError
from llm_backend.data.labels import Label
from llm_backend.maps.embedding_map import (
    MAX_COLOUR_GROUPS,
    assign_label,
    categorical,
    confidence,
    correctness,
    hover_texts,
    map_figure,
    next_selection,
    place_labels,
    query_neighbours,
    selected_rows,
    selection_to_positions,
    valid_predictions,
)


def test_build_map_and_labels_in_the_same_space(embedder, built, news):
    assert built.vectors.shape == (len(news), 384) and built.projection.coords.shape == (len(news), 2)
    assert not built.sampled and built.model_key == embedder.spec.key
    pts = place_labels(embedder, built.projection, [Label("Sports"), Label("oil_prices", "Texts about oil")])
    assert list(pts["name"]) == ["Sports", "oil_prices"] and np.isfinite(pts[["x", "y"]].to_numpy()).all()
    assert pts["text"][1] == "This text is about oil prices. Texts about oil"
    assert len(place_labels(embedder, built.projection, [])) == 0


def test_query_neighbours_are_the_most_similar_texts(embedder, built, news):
    idx, sims, q = query_neighbours(embedder, "the team won the championship final", built.vectors, k=8)
    assert len(idx) == 8 and (np.diff(sims) <= 1e-6).all()
    all_sims = built.vectors @ q
    assert np.isclose(sims[0], all_sims.max()) and sims[-1] >= np.sort(all_sims)[-8] - 1e-6
    assert (news["label"].to_numpy()[idx] == "Sports").sum() >= 6
    assert len(query_neighbours(embedder, "x", built.vectors, k=1000)[0]) == len(news)
    with pytest.raises(UserError, match="Type a query"):
        query_neighbours(embedder, "  ", built.vectors)


def test_selection_event_to_rows(news):
    event = {"selection": {"points": [
        {"curve_number": 1, "point_index": 0, "customdata": 4, "x": 0.1, "y": 0.2},
        {"curve_number": 0, "point_index": 3, "customdata": [9], "x": 0.3, "y": 0.1},
        {"curve_number": 5, "point_index": 0, "x": 1.0, "y": 1.0},  # a label star: no customdata
        {"curve_number": 1, "point_index": 0, "customdata": 4},  # the same point twice (box + lasso)
    ], "point_indices": [0, 3, 0], "box": [{}], "lasso": []}}
    assert selection_to_positions(event) == [4, 9]
    assert selection_to_positions(event["selection"]) == [4, 9]
    assert selection_to_positions(None) == [] and selection_to_positions({"selection": {"points": []}}) == []
    rows = selected_rows(news, [4, 9, 10_000])
    assert list(rows.index) == [news.index[4], news.index[9]]
    assert rows["text"].tolist() == news["text"].iloc[[4, 9]].tolist()


def test_next_selection_survives_figure_changes_and_clears_on_purpose():
    assert next_selection([1, 2], [], [], figure_changed=False) == [1, 2]  # new box selection
    assert next_selection([], [1, 2], [1, 2], figure_changed=True) == [1, 2]  # recoloured: chart remounted
    assert next_selection([], [1, 2], [1, 2], figure_changed=False) == []  # user double-clicked to clear
    assert next_selection([1, 2], [7, 8], [1, 2], figure_changed=False) == [7, 8]  # set by a button meanwhile
    assert next_selection([], [7, 8], [], figure_changed=False) == [7, 8]  # injected, no chart selection


def test_assign_label_makes_a_training_column(news):
    out = assign_label(news, [0, 2], "sport_news")
    assert "map_label" not in news.columns  # the input is not modified
    assert out["map_label"].tolist().count("sport_news") == 2 and out["map_label"].iloc[1] == ""
    out2 = assign_label(out, [1, 2], "other", column="map_label")
    assert out2["map_label"].iloc[:3].tolist() == ["sport_news", "other", "other"]
    assert list(out2.index) == list(news.index)
    with pytest.raises(UserError, match="text column"):
        assign_label(news, [0], "x", column="text", protected=["text"])
    with pytest.raises(UserError, match="Type the label"):
        assign_label(news, [0], " ")
    with pytest.raises(UserError, match="Select some points"):
        assign_label(news, [], "x")


def test_predictions_colours():
    preds = {"pred": ["a", "b", "a"], "probs": np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]]), "fingerprint": "f"}
    assert valid_predictions(preds, "f", 3) is preds
    assert valid_predictions(preds, "other", 3) is None and valid_predictions(preds, "f", 4) is None
    np.testing.assert_allclose(confidence(preds), [0.9, 0.6, 0.5])
    assert correctness(["a", "a", ""], preds["pred"]).tolist() == ["correct", "incorrect", "no gold"]


def test_hover_texts_and_colour_groups():
    long = "x" * 500
    out = hover_texts([long, "<b>bold</b> & more", None])
    assert out[0].replace("<br>", "").endswith("…") and len(out[0].replace("<br>", "")) == 200
    assert "&lt;b&gt;" in out[1] and out[2] == ""
    groups = categorical([f"v{i % 40}" for i in range(400)])
    assert len(set(groups)) == MAX_COLOUR_GROUPS and "(other)" in set(groups)
    assert categorical(["a", None, ""]).tolist() == ["a", "(blank)", "(blank)"]


def test_figure_with_20k_points_is_vectorised_webgl():
    rng = np.random.default_rng(0)
    n = 20_000
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    texts = [f"text number {i}" for i in range(n)]
    positions = np.arange(n) * 2  # dataset positions differ from map order when sampled
    colour = rng.choice(["a", "b", "c"], size=n)
    labels = pd.DataFrame({"name": ["a"], "text": ["This text is about a."], "x": [0.0], "y": [0.0]})
    fig = map_figure(coords, texts, positions, colour=colour, colour_name="gold", labels=labels,
                     highlight=np.array([1, 2]), query_xy=np.array([0.5, 0.5]), query_text="q")
    gl = [t for t in fig.data if t.type == "scattergl"]
    assert len(gl) == 3 and sum(len(t.x) for t in gl) == n
    assert sorted(np.concatenate([t.customdata for t in gl]).tolist()) == positions.tolist()
    assert {t.name for t in fig.data if t.type == "scatter"} == {"labels", "query", "query neighbours"}
    cont = map_figure(coords, texts, positions, colour=rng.random(n), colour_name="confidence")
    assert len(cont.data) == 1 and cont.data[0].marker.showscale
