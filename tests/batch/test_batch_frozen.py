"""Frozen classifiers and the in-process batch engine, with real MiniLM on real AG News rows.

``freeze`` on a file then ``batch`` over that file must reproduce ``score`` on it; any partitioning or split of the
input gives the same rows; a rerun resumes; bad inputs give clear errors or counted skips, never partial output.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from llm_backend.batch.engines import make_job, run_batch
from llm_backend.batch.frozen import (
    CONFIG_FILE,
    TENSORS_FILE,
    ClassifierError,
    Component,
    FrozenClassifier,
    load_classifier,
    save_classifier,
)
from llm_backend.cli import main
from llm_backend.core.errors import DataError, UserError
from llm_backend.data.labels import make_labels
from tests.conftest import stratified

LABELS = ["World", "Sports", "Business", "Sci/Tech"]


@pytest.fixture(scope="module")
def corpus(ag_news, tmp_path_factory) -> tuple[pd.DataFrame, object]:
    """48 AG News rows (12 per class) with an id column, two empty texts and a control character."""
    df = stratified(ag_news, 12, seed=3).sample(frac=1.0, random_state=1).reset_index(drop=True)
    df.insert(0, "doc_id", [f"d{i:03d}" for i in range(len(df))])
    df.loc[5, "text"] = ""
    df.loc[17, "text"] = "   "
    df.loc[9, "text"] = "Stocks\x00 fell sharply on Wall Street"
    folder = tmp_path_factory.mktemp("corpus")
    path = folder / "news.csv"
    df.to_csv(path, index=False)
    return df, path


@pytest.fixture(scope="module")
def frozen(corpus, tmp_path_factory, embedder):
    """freeze + score on the same file, via the CLI, in this process (the model stays loaded)."""
    _, path = corpus
    out = tmp_path_factory.mktemp("frozen")
    clf_dir, score_csv = out / "clf", out / "score.csv"
    common = ["--data", str(path), "--text-column", "text", "--labels", *LABELS, "--gold-column", "label"]
    assert main(["freeze", *common, "--out", str(clf_dir)]) == 0
    # freeze's defaults (self-training, the fast embedder) are score's with this flag; score's own embedder default
    # for a corpus this small is the larger one (issue 17)
    common += ["--model", embedder.spec.name]
    assert main(["score", *common, "--out", str(score_csv)]) == 0
    return clf_dir, pd.read_csv(score_csv, keep_default_na=False)


def _batch(clf_dir, inputs, out, **kw):
    # -1: the process-wide embedding cache the freeze filled (the default, a private cache per job, is exercised by
    # the first test); keeps the suite fast on 2 cores.
    kw.setdefault("cache_entries", -1)
    job = make_job(clf_dir, inputs, kw.pop("text_column", "text"), out, **kw)
    return run_batch(job, engine="local", progress=False)


def _read(out) -> pd.DataFrame:
    return pd.read_parquet(out).sort_values(["file", "row"] if "file" in pd.read_parquet(out).columns else "row") \
        .reset_index(drop=True)


def test_freeze_then_batch_reproduces_score(corpus, frozen, tmp_path):
    df, path = corpus
    clf_dir, scored = frozen
    clf = load_classifier(clf_dir)
    assert clf.components[0].method == "embedding" and clf.components[0].calibration == "centering"
    assert clf.components[0].kind == "logprob" and clf.source["method"] == "self-training"  # the head, kept
    assert clf.source["corpus"]["n_texts"] == len(df) and clf.source["metrics"]["n"] == len(df)
    summary = _batch(clf_dir, str(path), tmp_path / "out", cache_entries=0)
    out = _read(tmp_path / "out")
    assert list(out.columns) == ["row", "label", "score", "margin"]
    assert out["row"].tolist() == list(range(len(df)))
    assert summary["rows"] == len(df) and summary["empty_text_skipped"] == 2
    empty = out["label"].isna()
    assert empty.tolist() == [i in (5, 17) for i in range(len(df))]
    # every non-empty row: same label and (rounded) probability as `score` on the same file
    assert out.loc[~empty, "label"].tolist() == scored.loc[~empty, "predicted"].tolist()
    np.testing.assert_allclose(out.loc[~empty, "score"].round(4), scored.loc[~empty, "score"], atol=2e-4)
    np.testing.assert_allclose(out.loc[~empty, "margin"].round(4), scored.loc[~empty, "margin"], atol=2e-4)


def test_freeze_records_run_and_classifier(corpus, tmp_path, embedder):
    from llm_backend.store.database import Store

    _, path = corpus
    rc = main(["freeze", "--data", str(path), "--text-column", "text", "--labels", *LABELS, "--limit", "20",
               "--method", "embedding", "--calibration", "contextual", "--out", str(tmp_path / "c2"), "--project", "p1"])
    assert rc == 0
    s = Store()
    pid = s.project_id("p1")
    (row,) = s.list_classifiers(pid)
    run = s.get_run(row["run_id"])
    assert run.kind == "freeze" and run.method == "embedding" and row["exists"]
    assert row["fingerprint"] == load_classifier(tmp_path / "c2").fingerprint
    assert load_classifier(tmp_path / "c2").components[0].calibration == "contextual"


def test_partitioning_and_file_split_do_not_change_predictions(corpus, frozen, tmp_path):
    df, path = corpus
    clf_dir, _ = frozen
    _batch(clf_dir, str(path), tmp_path / "whole", rows_per_partition=1000)
    _batch(clf_dir, str(path), tmp_path / "small", rows_per_partition=7, id_column="doc_id")
    whole, small = _read(tmp_path / "whole"), pd.read_parquet(tmp_path / "small")
    assert len(list((tmp_path / "small").glob("part-*.parquet"))) == 7
    assert list(small.columns) == ["doc_id", "label", "score", "margin"]
    small = small.set_index("doc_id").loc[df["doc_id"]].reset_index()
    assert small["label"].tolist() == whole["label"].tolist()
    np.testing.assert_allclose(small["score"], whole["score"], atol=1e-5)
    # the same rows split over three files of different formats (a glob), in any order
    parts = tmp_path / "split"
    parts.mkdir()
    df.iloc[:10].to_csv(parts / "a.csv", index=False)
    df.iloc[10:30].to_parquet(parts / "b.parquet")
    df.iloc[30:].to_json(parts / "c.jsonl", orient="records", lines=True)
    _batch(clf_dir, str(parts / "*"), tmp_path / "globbed", rows_per_partition=6)
    g = pd.read_parquet(tmp_path / "globbed")
    assert list(g.columns) == ["row", "file", "label", "score", "margin"]
    offset = {"a.csv": 0, "b.parquet": 10, "c.jsonl": 30}
    g["global"] = g["row"] + g["file"].map(offset)
    g = g.sort_values("global").reset_index(drop=True)
    assert g["global"].tolist() == list(range(len(df)))
    assert g["label"].tolist() == whole["label"].tolist()
    np.testing.assert_allclose(g["score"], whole["score"], atol=1e-5, equal_nan=True)


def test_rerun_resumes_only_missing_partitions(corpus, frozen, tmp_path):
    _, path = corpus
    clf_dir, _ = frozen
    out = tmp_path / "out"
    first = _batch(clf_dir, str(path), out, rows_per_partition=10)
    before = _read(out)
    assert first["partitions"] == 5 and first["scored_this_run"] == 48
    (out / "part-00000-000002.parquet").unlink()
    (out / ".tmp-0123456789abcdef0123456789abcdef-part-00000-000003.parquet").write_bytes(b"half a file")
    second = _batch(clf_dir, str(path), out, rows_per_partition=10)
    assert second["scored_this_run"] == 10 and second["resumed_rows"] == 38 and second["rows"] == 48
    assert not list(out.glob(".tmp-*"))
    after = _read(out)
    pd.testing.assert_frame_equal(before, after)
    # nothing left to do: a third run scores nothing and keeps the rows
    assert _batch(clf_dir, str(path), out, rows_per_partition=10)["scored_this_run"] == 0


def test_output_folder_of_another_job_or_foreign_files_is_refused(corpus, frozen, tmp_path):
    _, path = corpus
    clf_dir, _ = frozen
    out = tmp_path / "out"
    _batch(clf_dir, str(path), out, rows_per_partition=10)
    with pytest.raises(UserError, match="another job"):
        _batch(clf_dir, str(path), out, rows_per_partition=20)  # different partitioning = a different job
    with pytest.raises(UserError, match="another job"):
        _batch(clf_dir, str(path), out, rows_per_partition=10, id_column="doc_id")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        _batch(clf_dir, str(path), foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_bad_inputs_are_clear_errors(corpus, frozen, tmp_path, capsys):
    df, path = corpus
    clf_dir, _ = frozen
    out = tmp_path / "out"
    base = ["batch", "--classifier", str(clf_dir), "--text-column", "text", "--engine", "local"]
    # unknown classifier
    assert main(["batch", "--classifier", str(tmp_path / "nope"), "--input", str(path), "--text-column", "text",
                 "--output", str(out), "--engine", "local"]) == 2
    assert "Unknown classifier" in capsys.readouterr().err
    # a glob matching nothing
    assert main([*base, "--input", str(tmp_path / "*.parquet"), "--output", str(out)]) == 2
    assert "matches no file" in capsys.readouterr().err
    # the text column missing in one of the files: refused before anything is written
    (tmp_path / "in").mkdir()
    df.iloc[:20].to_csv(tmp_path / "in" / "a.csv", index=False)
    df.iloc[20:].rename(columns={"text": "body"}).to_csv(tmp_path / "in" / "b.csv", index=False)
    assert main([*base, "--input", str(tmp_path / "in" / "*.csv"), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "b.csv" in err and "'text'" in err and "a.csv" not in err.split("lack")[1]
    assert not out.exists() or not list(out.glob("part-*"))
    # an id column that is not there
    with pytest.raises(DataError, match="lack a needed column"):
        make_job(clf_dir, str(path), "text", out, id_column="ticket")


def test_classifier_whose_model_is_missing(tmp_path, corpus):
    _, path = corpus
    labels = make_labels(LABELS)
    comp = Component("trained", {"name": "gone-model", "role": "classifier", "source": "trained",
                                 "location": str(tmp_path / "deleted-model"), "description": "", "gguf_file": None},
                     "logit", "none", np.zeros(4))
    save_classifier(FrozenClassifier(labels, [comp], name="orphan"), tmp_path / "orphan")
    with pytest.raises(ClassifierError, match="needs the model 'gone-model'.*missing"):
        make_job(tmp_path / "orphan", str(path), "text", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hostile_artifact_folders_are_refused(frozen, tmp_path):
    clf_dir, _ = frozen

    def copy(name):
        dst = tmp_path / name
        shutil.copytree(clf_dir, dst)
        return dst

    edited = copy("edited")
    cfg = json.loads((edited / CONFIG_FILE).read_text())
    cfg["decision"]["threshold"] = 0.1
    (edited / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ClassifierError, match="modified after it was frozen"):
        load_classifier(edited)
    bad_type = copy("bad_type")
    cfg = json.loads((bad_type / CONFIG_FILE).read_text())
    cfg["components"][0]["model"]["role"] = "rootkit"
    (bad_type / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ClassifierError, match="model role"):
        load_classifier(bad_type)
    not_json = copy("not_json")
    (not_json / CONFIG_FILE).write_text("{ nope")
    with pytest.raises(ClassifierError, match="cannot be read"):
        load_classifier(not_json)
    nan = copy("nan")
    (nan / CONFIG_FILE).write_text((nan / CONFIG_FILE).read_text().replace('"threshold": 0.5', '"threshold": NaN'))
    with pytest.raises(ClassifierError):
        load_classifier(nan)
    from safetensors.numpy import save_file

    wrong_shape = copy("wrong_shape")
    save_file({"c0.offsets": np.zeros(3), "c0.label_vectors": np.zeros((3, 8), np.float32)},
              str(wrong_shape / TENSORS_FILE))
    with pytest.raises(ClassifierError, match="offsets must be 4 floats"):
        load_classifier(wrong_shape)
    # a self-training head without its bias (fingerprint recomputed, so only the shape check can catch it)
    from safetensors.numpy import load_file

    from llm_backend.batch.frozen import content_fingerprint

    no_bias = copy("no_bias")
    tensors = {k: v for k, v in load_file(str(no_bias / TENSORS_FILE)).items() if not k.endswith(".bias")}
    cfg = json.loads((no_bias / CONFIG_FILE).read_text())
    cfg["components"][0]["tensors"].remove("c0.bias")
    cfg["fingerprint"] = content_fingerprint(cfg, tensors)
    save_file(tensors, str(no_bias / TENSORS_FILE))
    (no_bias / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ClassifierError, match="'logprob' with one"):
        load_classifier(no_bias)
    pickled = copy("pickled")
    (pickled / TENSORS_FILE).write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(ClassifierError, match="cannot be read"):
        load_classifier(pickled)
    with pytest.raises(ClassifierError, match="not a frozen classifier"):
        load_classifier(tmp_path)


def test_trained_model_frozen_by_reference_to_its_folder(ag_news, corpus, embedder, tmp_path):
    """A saved fine-tuned model (head on MiniLM) freezes by reference; batch gives the model's own predictions, and
    deleting the model folder makes the classifier fail with a clear message."""
    from llm_backend.batch.frozen import freeze_trained_folder
    from llm_backend.training.trained_models import predict, save_model
    from llm_backend.training.trainer import TrainConfig, train

    df, path = corpus
    train_df = stratified(ag_news, 4, seed=11)
    res = train(train_df["text"].tolist(), train_df["label"].tolist(), TrainConfig(method="head"), embedder)
    folder = save_model(res.model, "ag-head", res.meta())
    clf = freeze_trained_folder(folder, name="ag-head-clf")
    save_classifier(clf, tmp_path / "clf")
    assert load_classifier(tmp_path / "clf").components[0].model["source"] == "trained"
    _batch(tmp_path / "clf", str(path), tmp_path / "out")
    out = _read(tmp_path / "out")
    keep = out["label"].notna()
    want, _ = predict(res.model, df.loc[keep, "text"].str.replace("\x00", " ").tolist())
    assert out.loc[keep, "label"].tolist() == want
    shutil.rmtree(folder)
    with pytest.raises(ClassifierError, match="needs the model 'ag-head'.*missing"):
        make_job(tmp_path / "clf", str(path), "text", tmp_path / "out2")


def test_store_cli_lists_classifiers(corpus, tmp_path, embedder, capsys):
    _, path = corpus
    assert main(["freeze", "--data", str(path), "--text-column", "text", "--labels", *LABELS, "--limit", "12",
                 "--out", str(tmp_path / "listed")]) == 0
    capsys.readouterr()
    assert main(["store", "classifiers"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("id\t") and len(lines) == 2
    assert "\tlisted\t" in lines[1] and "\tself-training\t" in lines[1] and lines[1].endswith("listed")


def test_ensemble_multi_label_run_freezes_and_reproduces(corpus, embedder, tmp_path):
    """Every frozen method path reproduces its run row by row: an ensemble (each member keeps its own offsets) in
    multi-label mode, and the LM verbalizer (a reference to the LM plus its calibration offsets)."""
    from llm_backend.batch.frozen import ClassifierRunner, freeze_run
    from llm_backend.scorers.ensemble import EnsembleScorer
    from llm_backend.scorers.factory import make_scorer
    from llm_backend.scorers.zero_shot import run_scorer

    df, _ = corpus
    texts = [t for t in df["text"].tolist() if t.strip()]
    labels = make_labels(LABELS)
    members = [make_scorer("embedding", embedder), make_scorer("embedding", embedder, templates="{label}", refine=0)]
    ens = EnsembleScorer(members, "centering")
    res = run_scorer(ens, texts, labels, calibration="centering", multi_label=True, threshold=0.55)
    clf = freeze_run(ens, texts, labels, res, name="ens")
    save_classifier(clf, tmp_path / "ens")
    loaded = load_classifier(tmp_path / "ens")
    assert [c.method for c in loaded.components] == ["embedding", "embedding"] and loaded.multi_label
    assert not np.allclose(loaded.components[0].offsets, loaded.components[1].offsets)
    runner = ClassifierRunner(loaded, cache_entries=-1)
    # scored in two halves: the same rows as the whole run
    halves = [runner.predict(texts[:15]), runner.predict(texts[15:])]
    assert pd.concat(halves)["label"].tolist() == res.pred


@pytest.mark.slow
def test_lm_verbalizer_run_freezes_by_reference(corpus, causal_lm, tmp_path):
    from llm_backend.batch.frozen import ClassifierRunner, freeze_run
    from llm_backend.scorers.factory import make_scorer
    from llm_backend.scorers.zero_shot import run_scorer

    df, _ = corpus
    labels = make_labels(LABELS)
    few = [t for t in df["text"].tolist() if t.strip()][:2]
    lm = make_scorer("lm", causal_lm)
    res_lm = run_scorer(lm, few, labels, calibration="contextual")
    clf_lm = freeze_run(lm, few, labels, res_lm, name="lm")
    save_classifier(clf_lm, tmp_path / "lm")
    (comp,) = load_classifier(tmp_path / "lm").components
    assert comp.method == "lm" and comp.model["gguf_file"] and comp.calibration == "contextual"
    assert ClassifierRunner(load_classifier(tmp_path / "lm")).predict(few)["label"].tolist() == res_lm.pred
