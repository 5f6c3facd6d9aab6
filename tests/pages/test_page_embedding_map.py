"""The embedding map page in a headless Streamlit run: map, colouring, labels, selection, query, clusters.

The plotly chart's own selection cannot be set from Session State (Streamlit forbids it), so selection is tested
through the page's stored selection (``map_selected``, dataset row positions), which is what the chart's
selection is turned into; the conversion itself is tested in test_projection.py / test_clustering.py.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from llm_backend.data.labels import Label
from tests.conftest import app_test
from ui.state import DATASET, LABELS, PREDICTIONS, ActiveDataset

PAGE = "pages/3_Embedding_map.py"


@pytest.fixture(scope="module")
def news(ag_news: pd.DataFrame) -> pd.DataFrame:
    """40 AG News rows (10 per class) with an extra column, keeping a non-trivial index like a sampled dataset."""
    parts = [g.sample(10, random_state=1) for _, g in ag_news.groupby("label")]
    df = pd.concat(parts).sort_index()
    df["source"] = np.where(np.arange(len(df)) % 2 == 0, "web", "wire")
    return df


def _page() -> AppTest:
    """The page inside the multipage app (entry Home.py), so its links to other pages resolve."""
    at = app_test("Home.py")
    at.switch_page(PAGE)
    return at


def _app(df: pd.DataFrame, **state) -> AppTest:
    at = _page()
    at.session_state[DATASET] = ActiveDataset(df, "ag news slice", "text", "label", source_rows=len(df))
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _infos(at: AppTest) -> str:
    return " ".join(e.value for e in at.info)


def _array(value) -> list:
    """A plotly array from the chart spec: a JSON list, or plotly's base64 typed array {'dtype', 'bdata'}."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def _charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def test_page_needs_a_dataset():
    at = _page().run()
    assert not at.exception
    assert "No dataset is loaded" in _infos(at)


def test_map_is_computed_and_coloured(news):
    at = _app(news)
    assert not at.exception, at.exception
    (chart,) = _charts(at)
    spec = json.loads(chart.proto.spec)
    points = [t for t in spec["data"] if t["type"] == "scattergl"]
    assert len(points) == 4  # one WebGL trace per gold class
    assert sorted(i for t in points for i in _array(t["customdata"])) == list(range(len(news)))
    stars = [t for t in spec["data"] if t.get("name") == "labels"]
    assert len(stars) == 1 and len(_array(stars[0]["x"])) == 4
    assert at.selectbox(key="map_colour").value == "Gold label"
    assert "★ Labels from the gold classes" in " ".join(c.value for c in at.caption)
    maps = at.session_state["map_results"]
    (result,) = maps.values()
    assert result.projection.coords.shape == (len(news), 2)
    # Recolouring by any column reuses the fitted map: same object, no refit.
    for choice in ["Column: source", "(none)", "Cluster"]:
        at.selectbox(key="map_colour").set_value(choice).run()
        assert not at.exception, at.exception
        assert list(at.session_state["map_results"].values())[0] is result
    assert "No clusters for this map yet" in _infos(at)


def test_prediction_colours_need_matching_predictions(news):
    at = _app(news)
    at.selectbox(key="map_colour").set_value("Predicted label").run()
    assert "run the zero-shot page first" in _infos(at)
    ds = at.session_state[DATASET]
    pred = news["label"].tolist()
    pred[:5] = ["Sports"] * 5
    probs = np.tile(np.array([[0.7, 0.1, 0.1, 0.1]]), (len(news), 1))
    at.session_state[PREDICTIONS] = {"method": "test", "pred": pred, "probs": probs,
                                     "labels": sorted(set(pred)), "fingerprint": ds.fingerprint}
    for choice in ["Predicted label", "Correct / incorrect", "Confidence"]:
        at.selectbox(key="map_colour").set_value(choice).run()
        assert not at.exception, at.exception
        assert "run the zero-shot page first" not in _infos(at)


def test_label_set_is_drawn_and_sampling_is_announced(news):
    labels = [Label("politics"), Label("football"), Label("stock markets")]
    at = _app(news, **{LABELS: labels, "map_max_points": 100})
    assert not at.exception, at.exception
    assert "★ Labels from the current label set" in " ".join(c.value for c in at.caption)
    assert "seeded random sample" not in _infos(at)
    # Lower the limit below the data size: a sample is drawn and the page says so.
    at2 = _app(pd.concat([news] * 3, ignore_index=True), **{"map_max_points": 100})
    assert not at2.exception, at2.exception
    assert "seeded random sample of 100" in _infos(at2)
    (result,) = at2.session_state["map_results"].values()
    assert len(result.positions) == 100


def test_changed_settings_keep_the_old_map_until_recomputed(news):
    at = _app(news)
    at.radio(key="map_method").set_value("tsne").run()
    assert not at.exception, at.exception
    assert any("click **Compute map**" in w.value for w in at.warning)
    assert len(at.session_state["map_results"]) == 1
    at.button(key="map_compute").click().run()
    assert not at.exception, at.exception
    maps = at.session_state["map_results"]
    assert [k[3].method for k in maps] == ["pca", "tsne"]
    pca_map, tsne_map = maps.values()
    assert tsne_map.vectors is pca_map.vectors  # same rows, same model: embeddings shared, not recomputed
    assert not any("click **Compute map**" in w.value for w in at.warning)


def test_selection_table_download_and_assign(news):
    at = _app(news, map_selected=[0, 3, 5])
    assert not at.exception, at.exception
    tables = [d.value for d in at.dataframe]
    assert any(len(t) == 3 and list(t.index) == list(news.index[[0, 3, 5]]) for t in tables)
    assert at.get("download_button")
    at.text_input(key="map_assign_value").set_value("interesting")
    at.button(key="map_assign_btn").click().run()
    assert not at.exception, at.exception
    df = at.session_state[DATASET].df
    assert (df["map_label"].iloc[[0, 3, 5]] == "interesting").all()
    assert (df["map_label"] == "").sum() == len(news) - 3
    assert any("Labelled 3 rows" in s.value for s in at.success)
    # The new column is offered for colouring straight away.
    assert "Column: map_label" in at.selectbox(key="map_colour").options


def test_query_highlights_neighbours_and_selects_them(news):
    at = _app(news)
    at.text_input(key="map_query").set_value("football match and the championship")
    at.number_input(key="map_query_k").set_value(5).run()
    assert not at.exception, at.exception
    nn = next(d.value for d in at.dataframe if "similarity" in d.value.columns)
    assert len(nn) == 5 and nn["similarity"].is_monotonic_decreasing
    assert (nn["gold"] == "Sports").sum() >= 4
    at.button(key="map_select_neighbours").click().run()
    assert not at.exception, at.exception
    chosen = at.session_state["map_selected"]
    assert len(chosen) == 5 and list(news.index[chosen]) == nn["row"].tolist()


def test_clusters_become_candidate_labels(news):
    at = _app(news)
    at.number_input(key="map_cluster_k").set_value(4)
    at.button(key="map_cluster_btn").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="map_colour").value == "Cluster"
    clusters = at.session_state["map_clusters"]
    assert len(set(clusters["ids"].tolist())) == 4
    assert clusters["scores"]["purity"] > 0.5  # 4 balanced classes: chance is about 0.25-0.4
    first = clusters["summaries"][0]
    at.button(key=f"map_add_{first.cluster}").click().run()
    assert not at.exception, at.exception
    labels = at.session_state[LABELS]
    assert [l.name for l in labels] == [first.name] and first.keywords[0] in labels[0].description
    assert at.button(key=f"map_add_{first.cluster}").disabled
    # The density method on the 2-D map: noise allowed, clusters summarised the same way.
    at.radio(key="map_cluster_method").set_value("hdbscan").run()
    at.number_input(key="map_cluster_min_size").set_value(5)
    at.selectbox(key="map_cluster_space").set_value("the 2-D map")
    at.button(key="map_cluster_btn").click().run()
    assert not at.exception, at.exception
    clusters = at.session_state["map_clusters"]
    assert clusters["params"].method == "hdbscan" and clusters["space"] == "the 2-D map"
    assert len(clusters["summaries"]) == clusters["scores"]["clusters"]
    # Both clusterings are in the experiment store with their purity against gold.
    from llm_backend.store.database import Store

    runs = sorted(Store().list_runs(), key=lambda r: r.id)
    assert [(r.kind, r.method) for r in runs] == [("embedding-map", "kmeans"), ("embedding-map", "hdbscan")]
    assert runs[1].metrics["purity"] == pytest.approx(clusters["scores"]["purity"])
    assert runs[0].settings["k"] == 4 and runs[0].settings["cluster_on"] == "full embeddings"
