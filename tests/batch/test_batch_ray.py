"""The Ray engine on a real local Ray (2 CPUs, small data): same rows as the in-process engine, resumes, survives a
killed worker without duplicate rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llm_backend.batch.engines import make_job, run_batch
from llm_backend.batch.frozen import freeze_run, save_classifier
from llm_backend.data.labels import make_labels
from llm_backend.scorers.factory import make_scorer
from llm_backend.scorers.zero_shot import run_scorer
from tests.conftest import stratified

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def setup(ag_news, embedder, tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_batch")
    df = stratified(ag_news, 10, seed=5).reset_index(drop=True)
    df.loc[3, "text"] = ""
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"])
    scorer = make_scorer("embedding", embedder)
    result = run_scorer(scorer, df["text"].tolist(), labels, model_name=embedder.spec.name)
    clf = freeze_run(scorer, df["text"].tolist(), labels, result, name="ray-test")
    save_classifier(clf, root / "clf")
    (root / "in").mkdir()
    df.iloc[:25].to_parquet(root / "in" / "a.parquet")
    df.iloc[25:].to_csv(root / "in" / "b.csv", index=False)
    yield root, df
    if ray.is_initialized():
        ray.shutdown()


def _run(root, out, engine, **kw):
    job = make_job(root / "clf", str(root / "in" / "*"), "text", out, rows_per_partition=8)
    return run_batch(job, engine=engine, num_cpus=2, progress=engine == "ray", **kw)


def _read(out):
    return pd.read_parquet(out).sort_values(["file", "row"]).reset_index(drop=True)


def test_ray_and_local_engines_write_the_same_rows(setup, tmp_path, monkeypatch, capfd):
    root, df = setup
    local = _run(root, tmp_path / "local", "local")
    monkeypatch.setenv("ZSS_BATCH_CRASH_ONCE", str(tmp_path / "crashed"))  # one actor dies on its first batch
    remote = _run(root, tmp_path / "ray", "ray", workers=2)
    assert (tmp_path / "crashed").exists(), "the fault injection did not run"
    assert "ray" in remote["engine"] and "rows/s" in capfd.readouterr().err
    a, b = _read(tmp_path / "local"), _read(tmp_path / "ray")
    assert len(b) == len(df) == remote["rows"] == local["rows"]  # no row lost or duplicated by the retry
    assert not b.duplicated(["file", "row"]).any()
    assert sorted(p.name for p in (tmp_path / "ray").glob("part-*")) == \
        sorted(p.name for p in (tmp_path / "local").glob("part-*"))
    assert a["label"].tolist() == b["label"].tolist()
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-5, equal_nan=True)
    assert remote["empty_text_skipped"] == local["empty_text_skipped"] == 1


def test_model_missing_on_the_worker_is_a_clear_error(setup, tmp_path, monkeypatch):
    """The driver's own check is skipped (as when the driver has the model and a worker does not): the actor's
    failure comes back as the classifier's message, and no partition is written."""
    import llm_backend.batch.engines as engines
    from llm_backend.batch.frozen import Component, FrozenClassifier
    from llm_backend.core.errors import UserError

    root, _ = setup
    comp = Component("trained", {"name": "gone-model", "role": "classifier", "source": "trained",
                                 "location": str(tmp_path / "not-here"), "description": "", "gguf_file": None},
                     "logit", "none", np.zeros(2))
    save_classifier(FrozenClassifier(make_labels(["a", "b"]), [comp], name="orphan"), tmp_path / "orphan")
    monkeypatch.setattr(engines, "check_models", lambda clf: None)
    job = engines.make_job(tmp_path / "orphan", str(root / "in" / "*"), "text", tmp_path / "out")
    with pytest.raises(UserError, match="needs the model 'gone-model', which is missing"):
        run_batch(job, engine="ray", num_cpus=2, progress=False)
    assert not list((tmp_path / "out").glob("part-*"))
