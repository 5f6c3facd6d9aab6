"""``python -m llm_backend map`` end to end on a small real file: the CSV it writes and the summary it prints."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from llm_backend.maps.clustering import purity
from tests.conftest import ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_backend", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture()
def news_file(ag_news: pd.DataFrame, tmp_path: Path) -> Path:
    df = pd.concat([g.sample(25, random_state=5) for _, g in ag_news.groupby("label")], ignore_index=True)
    df.insert(0, "id", [f"r{i}" for i in range(len(df))])
    path = tmp_path / "news.csv"
    df.to_csv(path, index=False)
    return path


def test_map_writes_coordinates_clusters_and_data(news_file: Path, tmp_path: Path):
    out = tmp_path / "coords.csv"
    r = run_cli("map", "--data", str(news_file), "--text-column", "text", "--clusters", "4", "--seed", "1",
                "--gold-column", "label", "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    coords = pd.read_csv(out)
    source = pd.read_csv(news_file)
    assert list(coords.columns) == ["x", "y", "cluster", "id", "text", "label"]
    assert coords["id"].tolist() == source["id"].tolist() and coords["x"].notna().all()
    assert sorted(coords["cluster"].unique()) == [0, 1, 2, 3]
    report = json.loads(r.stdout)
    assert report["rows"] == 100 and sum(c["size"] for c in report["clusters"]) == 100
    shuffled = coords["label"].sample(frac=1, random_state=0).tolist()  # chance: same clusters, shuffled gold
    assert report["scores"]["purity"] == pytest.approx(purity(coords["label"], coords["cluster"]))
    assert report["scores"]["purity"] > purity(shuffled, coords["cluster"]) + 0.1
    assert all(c["keywords"] and c["majority_gold"] in set(source["label"]) for c in report["clusters"])
    assert "embedding: 100/100" in r.stderr


def test_map_with_tsne_limit_and_hdbscan(news_file: Path, tmp_path: Path):
    out = tmp_path / "tsne.csv"
    r = run_cli("map", "--data", str(news_file), "--method", "tsne", "--limit", "40", "--cluster-method", "hdbscan",
                "--min-cluster-size", "5", "--out", str(out))
    assert r.returncode == 0, r.stderr
    coords = pd.read_csv(out)
    assert len(coords) == 40 and coords["cluster"].min() >= -1
    assert "t-SNE (seed=0" in r.stdout and "candidate label" in r.stdout


def test_map_errors_are_messages(news_file: Path, tmp_path: Path):
    r = run_cli("map", "--data", str(news_file), "--text-column", "body", "--out", str(tmp_path / "o.csv"))
    assert r.returncode == 2 and "error: No column 'body'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("map", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o.csv"))
    assert r.returncode == 2 and "No such file" in r.stderr
    r = run_cli("map", "--data", str(news_file), "--clusters", "500", "--out", str(tmp_path / "o.csv"))
    assert r.returncode == 2 and "cannot make 500 clusters" in r.stderr
