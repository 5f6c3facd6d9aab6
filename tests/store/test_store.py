"""The experiments store: schema upgrades, versioning, crash semantics, export/import, threads, the CLI."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from llm_backend.cli import main as cli_main
from llm_backend.data.labels import Label, make_labels
from llm_backend.evaluation.metrics import evaluate
from llm_backend.store.database import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Store,
    StoreError,
    compare_metrics,
    diff_settings,
    get_store,
    migrate,
)
from llm_backend.store import database as store_mod


@pytest.fixture
def db(tmp_path: Path) -> Store:
    s = Store(tmp_path / "studio.db")
    yield s
    s.close()


def _metrics() -> dict:
    gold = ["billing", "shipping", "billing", "refund", "shipping"]
    pred = ["billing", "shipping", "refund", "refund", "billing"]
    return evaluate(gold, pred, ["billing", "shipping", "refund"])


def test_default_path_pragmas_and_env(monkeypatch, tmp_path):
    s = get_store()
    assert s.path == Path(os.environ["ZSS_DATA_DIR"]) / "studio.db"
    assert s.journal_mode == "wal"
    assert s._query("PRAGMA foreign_keys")[0]["foreign_keys"] == 1
    assert s.schema_version == SCHEMA_VERSION
    monkeypatch.setenv("ZSS_DB_PATH", str(tmp_path / "elsewhere.db"))
    assert get_store().path == tmp_path / "elsewhere.db"


@pytest.mark.parametrize("start", [0, 1, 2])
def test_upgrade_from_older_schema_keeps_data(tmp_path, start):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=start)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == start
    if start >= 1:  # a run written by the old schema
        conn.execute("INSERT INTO projects(name, created_at) VALUES ('legacy', '2024-01-01T00:00:00+00:00')")
        conn.execute("INSERT INTO runs(project_id, kind, method, model, settings, metrics, status, started_at, "
                     "finished_at) VALUES (1, 'zero-shot', 'similarity', 'm', '{\"t\": 0.5}', '{\"accuracy\": 0.8}',"
                     " 'done', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:05+00:00')")
    conn.close()
    s = Store(path)
    assert s.schema_version == SCHEMA_VERSION
    if start >= 1:
        (run,) = s.list_runs(s.project_id("legacy"))
        assert run.accuracy == 0.8 and run.settings == {"t": 0.5} and run.status == "done" and run.note == ""
        assert run.duration_s == 5
    # new tables work after the upgrade
    pid = s.ensure_project("legacy")
    assert s.save_label_set(pid, "x", ["a", "b"]).version == 1
    s.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer version"):
        Store(path)


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    conn.close()

    def broken(c):
        c.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [MIGRATIONS[0], broken])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 2)
    with pytest.raises(StoreError, match="could not be upgraded from schema 1 to 2.*left unchanged"):
        Store(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert not conn.execute("SELECT name FROM sqlite_master WHERE name='half_done'").fetchall()
    conn.close()


def test_corrupted_file_gives_a_clear_message(tmp_path):
    bad = tmp_path / "studio.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        Store(bad)
    msg = str(info.value)
    assert "damaged" in msg and "studio.db" in msg and str(tmp_path) not in msg


def test_runs_lifecycle_filters_and_search(db):
    pid = db.ensure_project("p")
    assert db.ensure_project("p") == pid
    ds = db.ensure_dataset(pid, "Support tickets", "fp-1", source="sample", n_rows=10, text_column="text")
    assert db.ensure_dataset(pid, "Support tickets", "fp-1") == ds
    labels = make_labels([Label("billing", "money questions"), "shipping", "refund"])
    ls = db.save_label_set(pid, "support", labels)
    r1 = db.record_run(pid, "zero-shot", "similarity", "all-MiniLM-L6-v2", {"threshold": 0.3}, _metrics(),
                       dataset_id=ds, label_set_id=ls.id)
    r2 = db.start_run(pid, "prompt", "logprob", "SmolLM2-135M-Instruct", {"template": "Text: {text}"})
    db.fail_run(r2, "ModelError: out of memory")
    r3 = db.start_run(pid, "fine-tune", "setfit", "all-MiniLM-L6-v2", {"epochs": 1})

    runs = db.list_runs(pid)
    assert [r.id for r in runs] == [r3, r2, r1]
    by_id = {r.id: r for r in runs}
    assert by_id[r1].status == "done" and by_id[r1].accuracy == pytest.approx(0.6)
    assert by_id[r1].macro_f1 == pytest.approx(_metrics()["macro_f1"])
    assert by_id[r1].dataset_name == "Support tickets" and by_id[r1].label_set_id == ls.id
    assert by_id[r2].status == "failed" and "out of memory" in by_id[r2].error
    assert by_id[r3].status == "running"  # owned by this live process

    assert [r.id for r in db.list_runs(pid, kinds=["prompt"])] == [r2]
    assert [r.id for r in db.list_runs(pid, methods=["similarity", "setfit"])] == [r3, r1]
    assert [r.id for r in db.list_runs(pid, dataset_ids=[ds])] == [r1]
    assert [r.id for r in db.list_runs(pid, search="smollm")] == [r2]
    assert [r.id for r in db.list_runs(pid, search="threshold support")] == [r1]  # settings and dataset name
    assert [r.id for r in db.list_runs(pid, statuses=["failed"])] == [r2]
    assert db.delete_runs([r2, r3]) == 2
    assert [r.id for r in db.list_runs(pid)] == [r1]
    with pytest.raises(StoreError, match="No run"):
        db.get_run(r2)


def test_stale_running_runs_show_as_interrupted(db, monkeypatch):
    pid = db.ensure_project("p")
    rid = db.start_run(pid, "zero-shot", "nli", "m")
    # A run left by a process that died: another owner token.
    with db.transaction() as conn:
        conn.execute("UPDATE runs SET owner = 'dead-process' WHERE id = ?", (rid,))
    assert db.get_run(rid).status == "interrupted"
    rid2 = db.start_run(pid, "zero-shot", "nli", "m")
    assert db.get_run(rid2).status == "running"
    monkeypatch.setenv("ZSS_STALE_RUN_HOURS", "0")  # ours, but older than the limit
    assert db.get_run(rid2).status == "interrupted"
    assert {r.id for r in db.list_runs(pid, statuses=["interrupted"])} == {rid, rid2}


def test_crash_mid_transaction_loses_only_that_write(db):
    pid = db.ensure_project("p")
    keep = db.record_run(pid, "zero-shot", "similarity", "m", {}, {"accuracy": 0.5})
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO runs(project_id, kind, started_at) VALUES (?, 'x', 'now')", (pid,))
            raise RuntimeError("crash")
    assert [r.id for r in db.list_runs(pid)] == [keep]


def test_label_set_and_template_versions(db):
    pid = db.ensure_project("p")
    v1 = db.save_label_set(pid, "topics", ["World", "Sports"])
    assert db.save_label_set(pid, "topics", [{"name": "World"}, {"name": "Sports"}]).id == v1.id  # same content
    v2 = db.save_label_set(pid, "topics", [Label("World"), Label("Sports", phrasings=["football", "tennis"])])
    assert (v1.version, v2.version) == (1, 2)
    loaded = make_labels(db.get_label_set(v2.id).content)
    assert loaded[1].phrasings == ["football", "tennis"] and loaded[0].name == "World"
    assert [(v.name, v.version) for v in db.list_label_sets(pid)] == [("topics", 2), ("topics", 1)]
    t1 = db.save_template(pid, "short", {"template": "Text: {text}\nTopic:", "verbalizer": {"World": "world"}})
    t2 = db.save_template(pid, "short", {"template": "{text}\nThe topic is"})
    assert (t1.version, t2.version) == (1, 2) and db.get_template(t1.id).content["verbalizer"] == {"World": "world"}
    with pytest.raises(StoreError):
        db.save_template(pid, "bad", {})
    with pytest.raises(StoreError):
        db.save_label_set(pid, "empty", [])


def test_foreign_keys_cascade_and_set_null(db):
    pid = db.ensure_project("gone")
    ls = db.save_label_set(pid, "l", ["a", "b"])
    rid = db.record_run(pid, "zero-shot", label_set_id=ls.id)
    db.add_trained_model(pid, "clf", "/nowhere/clf", run_id=rid)
    other = db.ensure_project("kept")
    db.record_run(other, "zero-shot")
    db.delete_project(pid)
    assert db.list_runs(pid) == [] and db.list_label_sets(pid) == [] and db.list_trained_models(pid) == []
    assert len(db.list_runs(other)) == 1
    with pytest.raises(sqlite3.IntegrityError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO runs(project_id, kind, started_at) VALUES (999, 'x', 'now')")


def test_numpy_and_nan_values_are_stored_as_json(db):
    np = pytest.importorskip("numpy")
    pid = db.ensure_project("p")
    rid = db.record_run(pid, "x", settings={"w": np.float32(0.25), "arr": np.arange(3), "p": Path("/a/b")},
                        metrics={"accuracy": float("nan"), "macro_f1": np.float64(0.5)})
    run = db.get_run(rid)
    assert run.settings == {"w": 0.25, "arr": [0, 1, 2], "p": "b"}
    assert run.accuracy is None and run.macro_f1 == 0.5


def test_export_import_roundtrip(db, tmp_path):
    pid = db.ensure_project("alpha")
    ds = db.ensure_dataset(pid, "reviews", "fp-x", n_rows=3)
    ls = db.save_label_set(pid, "sentiment", ["positive", "negative", "neutral"])
    tp = db.save_template(pid, "t", {"template": "Review: {text}"})
    r1 = db.record_run(pid, "zero-shot", "similarity", "m", {"a": 1}, _metrics(), dataset_id=ds, label_set_id=ls.id,
                       template_id=tp.id)
    db.start_run(pid, "fine-tune", "setfit", "m")  # still running at export time
    db.add_trained_model(pid, "clf-1", tmp_path / "models" / "clf-1", run_id=r1, base_model="m")
    text = db.export_json(pid)
    doc = json.loads(text)
    assert doc["format"] == "zero-shot-studio/project" and len(doc["runs"]) == 2
    assert str(tmp_path) not in text  # model folders travel as names
    new_pid = db.import_project(text.encode())
    assert db.list_projects() == ["alpha", "alpha (2)"]
    runs = db.list_runs(new_pid)
    done = next(r for r in runs if r.kind == "zero-shot")
    assert done.metrics == db.get_run(r1).metrics and done.dataset_name == "reviews"
    assert db.get_label_set(done.label_set_id).content == [{"name": n} for n in ("positive", "negative", "neutral")]
    assert db.get_template(done.template_id).content == {"template": "Review: {text}"}
    assert next(r for r in runs if r.kind == "fine-tune").status == "failed"  # not resurrected as running
    (model,) = db.list_trained_models(new_pid)
    assert model["run_id"] == done.id and Path(model["path"]).name == "clf-1"
    assert db.import_project(doc, name="beta") and "beta" in db.list_projects()


@pytest.mark.parametrize("payload, match", [
    (b"", "empty"),
    (b"\xff\xfe\x00garbage", "not UTF-8|not valid JSON|not a Zero-Shot"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a Zero-Shot Studio project"),
    (json.dumps({"format": "zero-shot-studio/project", "version": 99, "project": {}}).encode(), "version 99"),
    (json.dumps({"format": "zero-shot-studio/project", "version": 1, "project": {"name": "x"},
                 "runs": [{"id": 1}]}).encode(), "incomplete"),
    (json.dumps({"format": "zero-shot-studio/project", "version": 1, "project": {"name": "x"},
                 "runs": "nope"}).encode(), "must be a list"),
])
def test_bad_import_files(db, payload, match):
    before = db.list_projects()
    with pytest.raises(StoreError, match=match):
        db.import_project(payload)
    assert db.list_projects() == before  # all or nothing


def test_concurrent_writers_from_threads(db):
    """Streamlit sessions are threads sharing one store: no lost or interleaved writes."""
    pid = db.ensure_project("p")
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(20):
                rid = db.start_run(pid, "zero-shot", f"m{k}", "model", {"i": i})
                db.finish_run(rid, {"accuracy": i / 20})
                db.save_label_set(pid, f"set-{k}", [f"a{i}", "b"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    runs = db.list_runs(pid)
    assert len(runs) == 160 and all(r.status == "done" for r in runs)
    assert len(db.list_label_sets(pid)) == 160
    assert {v.version for v in db.list_label_sets(pid) if v.name == "set-3"} == set(range(1, 21))


def test_two_connections_to_one_file(tmp_path):
    """Two server processes (or the CLI next to the app) on one file: WAL lets both write."""
    a, b = Store(tmp_path / "s.db"), Store(tmp_path / "s.db")
    pid = a.ensure_project("p")
    b.record_run(pid, "cli", "x")
    a.record_run(pid, "app", "y")
    assert {r.kind for r in a.list_runs(pid)} == {"cli", "app"} == {r.kind for r in b.list_runs(pid)}
    a.close()
    b.close()


def test_diff_and_compare(db):
    pid = db.ensure_project("p")
    a = db.get_run(db.record_run(pid, "zero-shot", "similarity", "m", {"threshold": 0.3, "opt": {"k": 1, "x": "s"}},
                                 _metrics()))
    b = db.get_run(db.record_run(pid, "zero-shot", "nli", "m", {"threshold": 0.5, "opt": {"k": 1}},
                                 {"accuracy": 0.9, "macro_f1": 0.8, "n": 5, "per_class": {"billing": {"f1": 1.0}},
                                  "ece": 0.1}))
    rows = diff_settings(a.settings, b.settings)
    assert rows[0]["changed"] and {r["setting"] for r in rows if r["changed"]} == {"threshold", "opt.x"}
    assert [r["setting"] for r in diff_settings(a.settings, b.settings, only_changed=True)] == ["opt.x", "threshold"]
    cmp = {r["metric"]: r for r in compare_metrics(a, b)}
    assert cmp["accuracy"]["delta"] == pytest.approx(0.3)
    assert cmp["F1 · billing"]["b"] == 1.0 and cmp["F1 · refund"]["b"] is None
    assert cmp["ece"]["a"] is None and cmp["ece"]["b"] == 0.1


def test_cli_projects_runs_export_import(tmp_path, capsys):
    db_path = tmp_path / "cli.db"
    s = Store(db_path)
    pid = s.ensure_project("default")
    s.record_run(pid, "zero-shot", "similarity", "all-MiniLM-L6-v2", {"t": 1}, {"accuracy": 0.75, "macro_f1": 0.7})
    s.close()
    assert cli_main(["store", "--db", str(db_path), "projects"]) == 0
    assert "default\t1 runs" in capsys.readouterr().out
    assert cli_main(["store", "--db", str(db_path), "runs", "--kind", "zero-shot"]) == 0
    out = capsys.readouterr().out
    assert "similarity" in out and "0.7500" in out
    out_file = tmp_path / "p.json"
    assert cli_main(["store", "--db", str(db_path), "export", "--project", "default", "-o", str(out_file)]) == 0
    assert json.loads(out_file.read_text())["runs"][0]["metrics"]["accuracy"] == 0.75
    assert cli_main(["store", "--db", str(db_path), "import", str(out_file), "--name", "copy"]) == 0
    assert "Imported as project 'copy' (1 runs)" in capsys.readouterr().out
    assert cli_main(["store", "--db", str(db_path), "runs", "--project", "nope"]) == 2
    assert "No project named 'nope'" in capsys.readouterr().err
    assert cli_main(["store", "--db", str(db_path), "import", str(tmp_path / "missing.json")]) == 2


def test_duration_prefers_the_time_the_page_measured(db):
    pid = db.ensure_project("p")
    timed = db.start_run(pid, "zero-shot", "embedding", "m")
    db.finish_run(timed, {"accuracy": 0.5, "seconds": 12.5})
    untimed = db.start_run(pid, "zero-shot", "embedding", "m")
    db.finish_run(untimed, {"accuracy": 0.5})
    by_id = {r.id: r for r in db.list_runs(pid)}
    assert by_id[timed].duration_s == 12.5
    assert by_id[untimed].duration_s is not None and 0 <= by_id[untimed].duration_s < 5
