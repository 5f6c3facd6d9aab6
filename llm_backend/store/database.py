"""Experiments that outlive the browser tab: projects, datasets, label sets, templates, runs and trained models.

One SQLite file (``ZSS_DB_PATH``, default ``<data_dir>/studio.db``) in WAL mode, so readers (the Experiments page of
one session) never block the writer (a run finishing in another). The Streamlit server runs every browser session in
its own thread, so the store holds **one connection guarded by a lock** (``check_same_thread=False``): SQLite
serialises writers anyway, and one connection keeps the transaction rules simple.

Crash safety comes from the run lifecycle, not from holding a transaction open for minutes: a run is inserted as
``running`` when it starts and updated to ``done``/``failed`` when it ends, each in its own short transaction. A
process that dies mid-run therefore loses only that run, which the store shows as ``interrupted`` (its owner process
is gone, or it is older than ``ZSS_STALE_RUN_HOURS``).

Datasets are stored by *fingerprint* and origin, never their rows: the database stays small, and an analyst's data
does not leak into an exported project file.

Schema changes are ordered migrations keyed by ``PRAGMA user_version``; opening an older file upgrades it in one
transaction, and a file from a newer version of the app is refused instead of being misread.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from llm_backend.core.config import get_settings
from llm_backend.core.errors import UserError

EXPORT_FORMAT = "zero-shot-studio/project"
EXPORT_VERSION = 1
RUN_STATUSES = ("running", "done", "failed")
# Identifies this process: a "running" row owned by another process that no longer runs it is interrupted.
PROCESS_TOKEN = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


class StoreError(UserError):
    """The experiments database cannot be opened or written, or an export file is not valid."""


# --------------------------------------------------------------------------------------------------- migrations
#: Name prefix of projects published for every participant (workshop mode keeps the others private).
SHARED_PREFIX = "shared · "

def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run several statements inside the caller's transaction (``executescript`` would COMMIT it first)."""
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def _m1_initial(conn: sqlite3.Connection) -> None:
    """Version 1: projects, datasets and runs (what the first release stored)."""
    _script(conn, 
        """
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            n_rows INTEGER,
            text_column TEXT,
            gold_column TEXT,
            created_at TEXT NOT NULL,
            UNIQUE(project_id, fingerprint)
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            kind TEXT NOT NULL,
            method TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}',
            metrics TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'running',
            started_at TEXT NOT NULL,
            finished_at TEXT
        );
        """
    )


def _m2_versions_and_models(conn: sqlite3.Connection) -> None:
    """Version 2: versioned label sets and templates, trained models, run ownership and errors, indexes."""
    _script(conn, 
        """
        CREATE TABLE label_sets (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            labels TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE(project_id, name, version)
        );
        CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE(project_id, name, version)
        );
        CREATE TABLE trained_models (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            base_model TEXT NOT NULL DEFAULT '',
            info TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        ALTER TABLE runs ADD COLUMN label_set_id INTEGER REFERENCES label_sets(id) ON DELETE SET NULL;
        ALTER TABLE runs ADD COLUMN template_id INTEGER REFERENCES templates(id) ON DELETE SET NULL;
        ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN error TEXT NOT NULL DEFAULT '';
        CREATE INDEX runs_project_started ON runs(project_id, started_at);
        CREATE INDEX runs_kind ON runs(project_id, kind, method);
        """
    )


def _m3_notes(conn: sqlite3.Connection) -> None:
    """Version 3: a free-text note per run, so analysts can say why they ran it."""
    conn.execute("ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''")


def _m4_classifiers(conn: sqlite3.Connection) -> None:
    """Version 4: frozen classifiers (``freeze`` / "Export classifier"), each linked to the run it came from."""
    _script(conn,
        """
        CREATE TABLE classifiers (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            fingerprint TEXT NOT NULL DEFAULT '',
            info TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX classifiers_project ON classifiers(project_id, id)
        """
    )


# Append only: each entry upgrades from version i to i + 1. Never edit a released migration.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m1_initial, _m2_versions_and_models, _m3_notes,
                                                           _m4_classifiers]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Bring the schema to ``target`` (default: latest) in one transaction; returns the version reached."""
    target = SCHEMA_VERSION if target is None else target
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"The experiments database was written by a newer version of the app (schema {current}, this app "
            f"knows {SCHEMA_VERSION}). Update the app, or point ZSS_DB_PATH to another file."
        )
    if current >= target:
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        for version in range(current, target):
            MIGRATIONS[version](conn)
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        conn.execute("ROLLBACK")
        raise StoreError(f"The experiments database could not be upgraded from schema {current} to {target} "
                         f"({_reason(exc)}); it was left unchanged. Free disk space or check file permissions.") from None
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return target


# ------------------------------------------------------------------------------------------------------ helpers
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_default(obj: Any) -> Any:
    """numpy scalars/arrays, paths and sets appear in settings and metrics; store them as plain JSON."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return obj.name
    return str(obj)


def _clean_floats(obj: Any) -> Any:
    """NaN/inf are not JSON: store them as null so exports load in any JSON reader."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean_floats(v) for v in obj]
    return obj


def to_json(value: Any) -> str:
    roundtrip = json.loads(json.dumps(value if value is not None else {}, default=_json_default))
    return json.dumps(_clean_floats(roundtrip), ensure_ascii=False, sort_keys=True, allow_nan=False)


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def default_db_path() -> Path:
    env = os.environ.get("ZSS_DB_PATH")
    return Path(env).expanduser() if env else get_settings().data_dir / "studio.db"


def stale_after_seconds() -> float:
    try:
        return float(os.environ.get("ZSS_STALE_RUN_HOURS", 6)) * 3600
    except ValueError:
        return 6 * 3600


@dataclass
class Run:
    """One row of the runs table, decoded, with ``status`` already showing ``interrupted`` for stale runs."""

    id: int
    project_id: int
    kind: str
    method: str
    model: str
    settings: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    started_at: str
    finished_at: str | None
    dataset_id: int | None = None
    dataset_name: str | None = None
    dataset_fingerprint: str | None = None
    label_set_id: int | None = None
    template_id: int | None = None
    error: str = ""
    note: str = ""

    @property
    def accuracy(self) -> float | None:
        return _num(self.metrics.get("accuracy"))

    @property
    def macro_f1(self) -> float | None:
        return _num(self.metrics.get("macro_f1"))

    @property
    def duration_s(self) -> float | None:
        """Compute time the page measured (``metrics["seconds"]``) when given, else wall time between the stamps.

        Pages that save a run after computing it (``record_run``) have stamps a moment apart; their own timing is
        the number an analyst wants to compare.
        """
        measured = _num(self.metrics.get("seconds"))
        if measured is not None:
            return measured
        if not self.finished_at:
            return None
        try:
            return (datetime.fromisoformat(self.finished_at) - datetime.fromisoformat(self.started_at)).total_seconds()
        except (ValueError, TypeError):  # TypeError: a naive and an aware stamp (older imports)
            return None

    @property
    def title(self) -> str:
        """A one-line name for pickers: '#12 zero-shot · similarity · all-MiniLM-L6-v2 (acc 0.81)'."""
        acc = f" (acc {self.accuracy:.3f})" if self.accuracy is not None else ""
        parts = [p for p in (self.kind, self.method, self.model) if p]
        return f"#{self.id} " + " · ".join(parts) + acc + ("" if self.status == "done" else f" [{self.status}]")


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Versioned:
    """A label set or template version."""

    id: int
    project_id: int
    name: str
    version: int
    content: Any
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)


# -------------------------------------------------------------------------------------------------------- store
class Store:
    """The experiments database. Thread-safe: every method takes the store's lock around its SQL."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._lock = threading.RLock()
        self._conn = self._open()

    # ---- connection
    def _open(self) -> sqlite3.Connection:
        name = self.path.name
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"The experiments database '{name}' cannot be opened ({_reason(exc)}). "
                             "Check that its folder is writable, or set ZSS_DB_PATH.") from None
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # e.g. a network file system; still correct, just less concurrent
                conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a crash loses at most the last commit
            migrate(conn)
            conn.execute("SELECT count(*) FROM runs").fetchone()
        except StoreError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"The experiments database '{name}' is damaged or is not a database ({_reason(exc)}). "
                "Move the file away (the app starts a new one) or point ZSS_DB_PATH to another file."
            ) from None
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands or none of it does."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"The experiments database is busy or read-only ({_reason(exc)}).") from None
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._conn.execute("ROLLBACK")
                    raise StoreError(f"Saving to the experiments database failed ({_reason(exc)}).") from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cur = self._conn.execute(sql, params)
                cols = [d[0] for d in cur.description or []]
                return [dict(zip(cols, row)) for row in cur.fetchall()]
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"Reading the experiments database failed ({_reason(exc)}).") from None

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0]["user_version"])

    @property
    def journal_mode(self) -> str:
        return str(self._query("PRAGMA journal_mode")[0]["journal_mode"])

    # ---- projects
    def ensure_project(self, name: str) -> int:
        name = (name or "").strip()
        if not name:
            raise StoreError("A project needs a name.")
        if len(name) > 200:
            raise StoreError("Project names are limited to 200 characters.")
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
            if row:
                return int(row[0])
            return int(conn.execute("INSERT INTO projects(name, created_at) VALUES (?, ?)", (name, _now())).lastrowid)

    def project_id(self, name: str) -> int:
        rows = self._query("SELECT id FROM projects WHERE name = ?", (name,))
        if not rows:
            raise StoreError(f"No project named '{name}'. Projects: {', '.join(self.list_projects()) or 'none yet'}.")
        return int(rows[0]["id"])

    def list_projects(self) -> list[str]:
        return [r["name"] for r in self._query("SELECT name FROM projects ORDER BY name")]

    def delete_project(self, project_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))

    # ---- datasets
    def ensure_dataset(
        self,
        project_id: int,
        name: str,
        fingerprint: str,
        *,
        source: str = "",
        n_rows: int | None = None,
        text_column: str | None = None,
        gold_column: str | None = None,
    ) -> int:
        """The dataset row for this fingerprint (created once per project): where the data came from, not its rows."""
        if not fingerprint:
            raise StoreError("A dataset needs a fingerprint.")
        from llm_backend.core.text_clean import strip_invisible

        name = strip_invisible(str(name)).strip()[:NAME_MAX] or "dataset"
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM datasets WHERE project_id = ? AND fingerprint = ?",
                               (project_id, fingerprint)).fetchone()
            if row:
                return int(row[0])
            return int(conn.execute(
                "INSERT INTO datasets(project_id, name, fingerprint, source, n_rows, text_column, gold_column, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (project_id, name, fingerprint, source, n_rows, text_column, gold_column, _now()),
            ).lastrowid)

    def list_datasets(self, project_id: int) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM datasets WHERE project_id = ? ORDER BY id", (project_id,))

    # ---- label sets and templates (versioned by name)
    def _save_versioned(self, table: str, column: str, project_id: int, name: str, content: Any) -> Versioned:
        from llm_backend.core.text_clean import strip_invisible

        name = strip_invisible(name or "").strip()[:NAME_MAX] or "untitled"
        body = to_json(content)
        with self.transaction() as conn:
            latest = conn.execute(
                f"SELECT id, version, {column}, created_at FROM {table} WHERE project_id = ? AND name = ? "
                "ORDER BY version DESC LIMIT 1", (project_id, name)).fetchone()
            if latest and latest[2] == body:  # saving the same content again is not a new version
                return Versioned(int(latest[0]), project_id, name, int(latest[1]), json.loads(body), latest[3])
            version = int(latest[1]) + 1 if latest else 1
            created = _now()
            new_id = conn.execute(
                f"INSERT INTO {table}(project_id, name, version, {column}, created_at) VALUES (?, ?, ?, ?, ?)",
                (project_id, name, version, body, created)).lastrowid
        return Versioned(int(new_id), project_id, name, version, json.loads(body), created)

    def _list_versioned(self, table: str, column: str, project_id: int) -> list[Versioned]:
        rows = self._query(f"SELECT * FROM {table} WHERE project_id = ? ORDER BY name, version DESC", (project_id,))
        return [Versioned(r["id"], r["project_id"], r["name"], r["version"], _loads(r[column]), r["created_at"])
                for r in rows]

    def _get_versioned(self, table: str, column: str, item_id: int, what: str) -> Versioned:
        rows = self._query(f"SELECT * FROM {table} WHERE id = ?", (item_id,))
        if not rows:
            raise StoreError(f"No {what} with id {item_id}: it may have been deleted.")
        r = rows[0]
        return Versioned(r["id"], r["project_id"], r["name"], r["version"], _loads(r[column]), r["created_at"])

    def save_label_set(self, project_id: int, name: str, labels: Sequence[Any]) -> Versioned:
        """Save labels (``Label`` objects or dicts); a changed set under the same name becomes the next version."""
        items = [_label_dict(l) for l in labels]
        if not items:
            raise StoreError("The label set is empty: nothing to save.")
        return self._save_versioned("label_sets", "labels", project_id, name, items)

    def list_label_sets(self, project_id: int) -> list[Versioned]:
        return self._list_versioned("label_sets", "labels", project_id)

    def get_label_set(self, label_set_id: int) -> Versioned:
        return self._get_versioned("label_sets", "labels", label_set_id, "label set")

    def save_template(self, project_id: int, name: str, template: Mapping[str, Any]) -> Versioned:
        """Save a prompt template as a dict (whatever the prompt page uses: template text, verbalizers, ...)."""
        if not isinstance(template, Mapping) or not template:
            raise StoreError("A template is saved as a non-empty dictionary (for example {'template': '...'}).")
        return self._save_versioned("templates", "body", project_id, name, dict(template))

    def list_templates(self, project_id: int) -> list[Versioned]:
        return self._list_versioned("templates", "body", project_id)

    def get_template(self, template_id: int) -> Versioned:
        return self._get_versioned("templates", "body", template_id, "template")

    # ---- runs
    def start_run(
        self,
        project_id: int,
        kind: str,
        method: str = "",
        model: str = "",
        settings: Mapping[str, Any] | None = None,
        *,
        dataset_id: int | None = None,
        label_set_id: int | None = None,
        template_id: int | None = None,
        note: str = "",
    ) -> int:
        """Insert a run as ``running`` and commit at once: if the process dies, the row says so."""
        if not kind:
            raise StoreError("A run needs a kind (the page or command that made it).")
        with self.transaction() as conn:
            return int(conn.execute(
                "INSERT INTO runs(project_id, dataset_id, kind, method, model, settings, metrics, status, started_at,"
                " label_set_id, template_id, owner, note) VALUES (?, ?, ?, ?, ?, ?, '{}', 'running', ?, ?, ?, ?, ?)",
                (project_id, dataset_id, kind, method or "", model or "", to_json(settings or {}), _now(),
                 label_set_id, template_id, PROCESS_TOKEN, note or ""),
            ).lastrowid)

    def finish_run(self, run_id: int, metrics: Mapping[str, Any] | None = None, status: str = "done",
                   error: str = "") -> None:
        if status not in RUN_STATUSES or status == "running":
            raise StoreError(f"A run ends as 'done' or 'failed', not '{status}'.")
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE runs SET metrics = ?, status = ?, error = ?, finished_at = ? WHERE id = ?",
                (to_json(metrics or {}), status, (error or "")[:2000], _now(), run_id))
            if cur.rowcount == 0:
                raise StoreError(f"Run {run_id} no longer exists (deleted while it ran?).")

    def fail_run(self, run_id: int, error: str) -> None:
        self.finish_run(run_id, {}, status="failed", error=error)

    def record_run(self, project_id: int, kind: str, method: str = "", model: str = "",
                   settings: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
                   **links: Any) -> int:
        """A finished run in one call, for pages that only save after the work is done."""
        run_id = self.start_run(project_id, kind, method, model, settings, **links)
        self.finish_run(run_id, metrics)
        return run_id

    def update_settings(self, run_id: int, settings: Mapping[str, Any]) -> None:
        """Settings learnt during the run (an automatically chosen threshold, the epochs actually trained)."""
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET settings = ? WHERE id = ?", (to_json(settings), run_id))

    def set_note(self, run_id: int, note: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET note = ? WHERE id = ?", (note[:2000], run_id))

    def _decode_run(self, r: dict[str, Any]) -> Run:
        status = r["status"]
        if status == "running":
            try:
                age = (datetime.now(timezone.utc) - datetime.fromisoformat(r["started_at"])).total_seconds()
            except (ValueError, TypeError):
                age = math.inf
            if r.get("owner") != PROCESS_TOKEN or age > stale_after_seconds():
                status = "interrupted"
        return Run(
            id=r["id"], project_id=r["project_id"], kind=r["kind"], method=r["method"], model=r["model"],
            settings=_loads(r["settings"]), metrics=_loads(r["metrics"]), status=status, started_at=r["started_at"],
            finished_at=r["finished_at"], dataset_id=r["dataset_id"], dataset_name=r.get("dataset_name"),
            dataset_fingerprint=r.get("dataset_fingerprint"), label_set_id=r.get("label_set_id"),
            template_id=r.get("template_id"), error=r.get("error") or "", note=r.get("note") or "",
        )

    def list_runs(
        self,
        project_id: int | None = None,
        *,
        kinds: Iterable[str] | None = None,
        methods: Iterable[str] | None = None,
        dataset_ids: Iterable[int] | None = None,
        statuses: Iterable[str] | None = None,
        search: str | None = None,
        limit: int | None = 5000,
    ) -> list[Run]:
        """Runs newest first, at most ``limit`` (None: all; :meth:`count_runs` gives the true total). ``search`` matches kind, method, model, dataset name, settings, note and error."""
        where, params = [], []  # type: ignore[var-annotated]
        if project_id is not None:
            where.append("r.project_id = ?")
            params.append(project_id)
        for column, values in (("r.kind", kinds), ("r.method", methods), ("r.dataset_id", dataset_ids)):
            values = list(values) if values is not None else None
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if search and search.strip():
            for term in search.strip().split():
                like = f"%{term.replace('%', '').replace('_', '')}%"
                where.append("(r.kind LIKE ? OR r.method LIKE ? OR r.model LIKE ? OR coalesce(d.name, '') LIKE ? "
                             "OR r.settings LIKE ? OR r.note LIKE ? OR r.error LIKE ?)")
                params.extend([like] * 7)
        sql = ("SELECT r.*, d.name AS dataset_name, d.fingerprint AS dataset_fingerprint FROM runs r "
               "LEFT JOIN datasets d ON d.id = r.dataset_id")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        runs = [self._decode_run(r) for r in self._query(sql, params)]
        if statuses is not None:
            wanted = set(statuses)
            runs = [r for r in runs if r.status in wanted]
        return runs

    def get_run(self, run_id: int) -> Run:
        rows = self._query("SELECT r.*, d.name AS dataset_name, d.fingerprint AS dataset_fingerprint FROM runs r "
                           "LEFT JOIN datasets d ON d.id = r.dataset_id WHERE r.id = ?", (run_id,))
        if not rows:
            raise StoreError(f"No run with id {run_id}: it may have been deleted.")
        return self._decode_run(rows[0])

    def delete_runs(self, run_ids: Iterable[int]) -> int:
        ids = [int(i) for i in run_ids]
        if not ids:
            return 0
        with self.transaction() as conn:
            return conn.execute(f"DELETE FROM runs WHERE id IN ({','.join('?' * len(ids))})", ids).rowcount

    # ---- trained models
    def add_trained_model(self, project_id: int, name: str, path: str | os.PathLike[str], *, run_id: int | None = None,
                          base_model: str = "", info: Mapping[str, Any] | None = None) -> int:
        with self.transaction() as conn:
            return int(conn.execute(
                "INSERT INTO trained_models(project_id, run_id, name, path, base_model, info, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (project_id, run_id, name, str(path), base_model, to_json(info or {}), _now())).lastrowid)

    def list_trained_models(self, project_id: int) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM trained_models WHERE project_id = ? ORDER BY id DESC", (project_id,))
        for r in rows:
            r["info"] = _loads(r["info"])
            r["exists"] = Path(r["path"]).is_dir()
        return rows

    # ---- frozen classifiers (machine-local artifacts: listed here, not included in project exports)
    def add_classifier(self, project_id: int, name: str, path: str | os.PathLike[str], *, run_id: int | None = None,
                       fingerprint: str = "", info: Mapping[str, Any] | None = None) -> int:
        with self.transaction() as conn:
            return int(conn.execute(
                "INSERT INTO classifiers(project_id, run_id, name, path, fingerprint, info, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (project_id, run_id, str(name)[:200], str(path), str(fingerprint)[:64], to_json(info or {}),
                 _now())).lastrowid)

    def list_classifiers(self, project_id: int) -> list[dict[str, Any]]:
        """Frozen classifiers newest first, with the run they came from (``run_id``) and whether the folder exists."""
        rows = self._query("SELECT * FROM classifiers WHERE project_id = ? ORDER BY id DESC", (project_id,))
        for r in rows:
            r["info"] = _loads(r["info"])
            r["exists"] = Path(r["path"]).is_dir()
        return rows

    # ---- export / import
    def export_project(self, project_id: int) -> dict[str, Any]:
        """Everything about a project as one JSON-ready dict (dataset fingerprints, never dataset rows)."""
        proj = self._query("SELECT * FROM projects WHERE id = ?", (project_id,))
        if not proj:
            raise StoreError(f"No project with id {project_id}.")
        runs = self._query("SELECT * FROM runs WHERE project_id = ? ORDER BY id", (project_id,))
        for r in runs:
            r["settings"], r["metrics"] = _loads(r["settings"]), _loads(r["metrics"])
            r["status"] = self._decode_run(dict(r, settings="{}", metrics="{}")).status
            r.pop("owner", None)
        models = self._query("SELECT * FROM trained_models WHERE project_id = ? ORDER BY id", (project_id,))
        for m in models:
            m["info"] = _loads(m["info"])
            m["path"] = Path(m["path"]).name  # the folder name, not where it lives on this machine
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "schema": SCHEMA_VERSION,
            "exported_at": _now(),
            "project": {"name": proj[0]["name"], "created_at": proj[0]["created_at"]},
            "datasets": self.list_datasets(project_id),
            "label_sets": [{"id": v.id, "name": v.name, "version": v.version, "labels": v.content,
                            "created_at": v.created_at} for v in self.list_label_sets(project_id)],
            "templates": [{"id": v.id, "name": v.name, "version": v.version, "body": v.content,
                           "created_at": v.created_at} for v in self.list_templates(project_id)],
            "runs": runs,
            "trained_models": models,
        }

    def export_json(self, project_id: int) -> str:
        return json.dumps(self.export_project(project_id), ensure_ascii=False, indent=1, default=_json_default)

    def import_project(self, data: Mapping[str, Any] | str | bytes, name: str | None = None) -> int:
        """Import an exported project as a new project (a numbered name when it exists); all or nothing.

        Every field is type- and size-checked and dates are normalised to UTC first (:func:`_validated_export`), so a
        hostile or hand-edited file fails with one clear :class:`StoreError` and writes nothing.
        """
        doc = _validated_export(_parse_export(data))
        base = (name if name is not None else doc["project"]["name"] or "imported").strip() or "imported"
        from llm_backend.core.text_clean import strip_invisible

        base = strip_invisible(base)[:NAME_MAX - 10].strip() or "imported"
        existing = set(self.list_projects())
        new_name, i = base, 1
        while new_name in existing:
            i += 1
            new_name = f"{base} ({i})"
        try:
            with self.transaction() as conn:
                pid = conn.execute("INSERT INTO projects(name, created_at) VALUES (?, ?)",
                                   (new_name, doc["project"]["created_at"] or _now())).lastrowid
                ids: dict[str, dict[int, int]] = {"datasets": {}, "label_sets": {}, "templates": {}, "runs": {}}
                for d in doc["datasets"]:
                    ids["datasets"][d["id"]] = conn.execute(
                        "INSERT INTO datasets(project_id, name, fingerprint, source, n_rows, text_column, gold_column,"
                        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (pid, d["name"], d["fingerprint"], d["source"], d["n_rows"], d["text_column"],
                         d["gold_column"], d["created_at"] or _now())).lastrowid
                for table, column in (("label_sets", "labels"), ("templates", "body")):
                    for v in doc[table]:
                        ids[table][v["id"]] = conn.execute(
                            f"INSERT INTO {table}(project_id, name, version, {column}, created_at) VALUES (?,?,?,?,?)",
                            (pid, v["name"], v["version"], to_json(v[column]), v["created_at"] or _now())).lastrowid
                for r in doc["runs"]:
                    ids["runs"][r["id"]] = conn.execute(
                        "INSERT INTO runs(project_id, dataset_id, kind, method, model, settings, metrics, status,"
                        " started_at, finished_at, label_set_id, template_id, owner, error, note)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)",
                        (pid, ids["datasets"].get(r["dataset_id"]), r["kind"], r["method"], r["model"],
                         to_json(r["settings"]), to_json(r["metrics"]), r["status"], r["started_at"] or _now(),
                         r["finished_at"], ids["label_sets"].get(r["label_set_id"]),
                         ids["templates"].get(r["template_id"]), r["error"], r["note"])).lastrowid
                for m in doc["trained_models"]:
                    conn.execute(
                        "INSERT INTO trained_models(project_id, run_id, name, path, base_model, info, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (pid, ids["runs"].get(m["run_id"]), m["name"], str(get_settings().models_dir / m["path"]),
                         m["base_model"], to_json(m["info"]), m["created_at"] or _now()))
        except (KeyError, TypeError, ValueError, OverflowError, RecursionError, sqlite3.Error) as exc:
            raise StoreError(f"The project file is incomplete or inconsistent ({type(exc).__name__}: "
                             f"{_reason(exc)[:120]}). Nothing was imported.") from None
        return int(pid)

    def share_project(self, project_id: int, label: str) -> str:
        """Publish a copy of a project under ``shared · label`` and return its name.

        In workshop mode every participant works in a private project; sharing copies it (through the same
        validated export/import path as a file) so the trainer and the others can open it, while the private one
        stays private. A new share of the same label gets a numbered name instead of overwriting an earlier one.
        """
        label = (label or "").strip() or "project"
        pid = self.import_project(self.export_project(project_id), name=f"{SHARED_PREFIX}{label}")
        return next(r["name"] for r in self._query("SELECT name FROM projects WHERE id = ?", (pid,)))

    def shared_projects(self) -> list[str]:
        """Projects published with :meth:`share_project`, which workshop participants may open."""
        return [p for p in self.list_projects() if p.startswith(SHARED_PREFIX)]

    def count_runs(self, project_id: int | None = None) -> int:
        """The true number of runs (``list_runs`` returns at most its ``limit``)."""
        if project_id is None:
            return int(self._query("SELECT count(*) AS n FROM runs")[0]["n"])
        return int(self._query("SELECT count(*) AS n FROM runs WHERE project_id = ?", (project_id,))[0]["n"])


def _label_dict(label: Any) -> dict[str, Any]:
    if isinstance(label, Mapping):
        return {k: v for k, v in label.items() if v not in (None, "", [])}
    if isinstance(label, str):
        return {"name": label}
    out = {"name": getattr(label, "name", str(label))}
    for key in ("description", "phrasings", "display"):
        value = getattr(label, key, None)
        if value:
            out[key] = list(value) if key == "phrasings" else value
    return out


# ----------------------------------------------------------------------------------------------- import checks
#: Sizes an imported project may have. An honest export of a busy project is far below them (a 2,000-run project
#: exports to about 6 MB); above them an import is refused before anything is written.
IMPORT_MAX_ITEMS = 200_000
IMPORT_MAX_TEXT = 2_000  # characters of an error or a note (what the store itself keeps)
NAME_MAX = 200
_INT64 = 2**63 - 1


class _Check:
    """Typed field access with messages that say which item and field is wrong (``runs[3].started_at``)."""

    def __init__(self, where: str, item: Any) -> None:
        if not isinstance(item, Mapping):
            raise StoreError(f"{where} must be an object, not a {type(item).__name__}. Nothing was imported.")
        self.where, self.item = where, item

    def fail(self, key: str, what: str) -> StoreError:
        return StoreError(f"The project file is incomplete or inconsistent: {self.where}.{key} {what}. "
                          "Nothing was imported.")

    def integer(self, key: str, *, required: bool = False, low: int = -_INT64, high: int = _INT64) -> int | None:
        value = self.item.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self.fail(key, f"must be a whole number, not {type(value).__name__}")
        if not low <= value <= high:
            raise self.fail(key, f"is out of range ({value})")
        return value

    def text(self, key: str, *, required: bool = False, limit: int = NAME_MAX, default: str = "") -> str:
        from llm_backend.core.text_clean import strip_invisible

        value = self.item.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(key, "is missing")
            return default
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.fail(key, f"must be text, not {type(value).__name__}")
        value = str(value)
        if len(value) > limit:
            raise self.fail(key, f"is {len(value):,} characters long; the limit is {limit:,}")
        return strip_invisible(value) if limit <= NAME_MAX else value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.item.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be an object, not {type(value).__name__}")
        return dict(value)

    def date(self, key: str) -> str | None:
        return normalise_date(self.item.get(key), lambda what: self.fail(key, what))


def normalise_date(value: Any, fail: Callable[[str], Exception] | None = None) -> str | None:
    """An ISO time as the store writes it (UTC, ``+00:00``, seconds); naive times are taken as UTC.

    Imported files mixed naive and aware times, and comparing them crashed the Experiments page (issue 13).
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        if fail is None:
            return None
        raise fail(f"must be an ISO date-time text, not {type(value).__name__}")
    try:
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        if fail is None:
            return None
        raise fail(f"is not an ISO date-time ({value[:40]!r})") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).isoformat(timespec="seconds")


def _validated_export(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A clean copy of an export: every field type-checked, sized, dates normalised; StoreError before any write."""
    from llm_backend.core.safe_yaml import NestingError, check_depth

    try:
        check_depth(dict(doc), what="project file")
    except NestingError as exc:
        raise StoreError(f"{exc} Nothing was imported.") from None
    total = sum(len(doc.get(k) or []) for k in ("datasets", "label_sets", "templates", "runs", "trained_models"))
    if total > IMPORT_MAX_ITEMS:
        raise StoreError(f"The project file holds {total:,} items; the limit is {IMPORT_MAX_ITEMS:,}. Nothing was "
                         "imported.")
    proj = _Check("project", doc["project"])
    out: dict[str, Any] = {"project": {"name": proj.text("name", default="imported"),
                                       "created_at": proj.date("created_at")}}
    seen: dict[str, set[int]] = {}

    def unique_id(section: str, c: _Check) -> int:
        value = c.integer("id", required=True)
        ids = seen.setdefault(section, set())
        if value in ids:
            raise c.fail("id", f"repeats id {value}")
        ids.add(value)  # type: ignore[arg-type]
        return value  # type: ignore[return-value]

    out["datasets"] = []
    for i, d in enumerate(doc.get("datasets") or []):
        c = _Check(f"datasets[{i}]", d)
        out["datasets"].append({
            "id": unique_id("datasets", c), "name": c.text("name", required=True),
            "fingerprint": c.text("fingerprint", required=True), "source": c.text("source", limit=2000),
            "n_rows": c.integer("n_rows", low=0), "text_column": c.text("text_column") or None,
            "gold_column": c.text("gold_column") or None, "created_at": c.date("created_at")})
    out["label_sets"] = []
    for i, v in enumerate(doc.get("label_sets") or []):
        c = _Check(f"label_sets[{i}]", v)
        labels = v.get("labels")
        if not isinstance(labels, list) or not labels:
            raise c.fail("labels", "must be a non-empty list of labels")
        for j, lab in enumerate(labels):
            if not isinstance(lab, (str, Mapping)):
                raise c.fail(f"labels[{j}]", f"must be a name or an object, not {type(lab).__name__}")
            name = lab if isinstance(lab, str) else lab.get("name")
            if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
                raise c.fail(f"labels[{j}]", f"needs a name of 1 to {NAME_MAX} characters")
        out["label_sets"].append({"id": unique_id("label_sets", c), "name": c.text("name", required=True),
                                  "version": c.integer("version", required=True, low=1, high=1_000_000),
                                  "labels": labels, "created_at": c.date("created_at")})
    out["templates"] = []
    for i, v in enumerate(doc.get("templates") or []):
        c = _Check(f"templates[{i}]", v)
        body = v.get("body")
        if not isinstance(body, Mapping):
            raise c.fail("body", f"must be a template object (name, template, verbalizer), not "
                                 f"{type(body).__name__}")
        from llm_backend.core.errors import TemplateError
        from llm_backend.prompts.templates import check_template_body

        try:
            check_template_body(body)
        except TemplateError as exc:
            raise c.fail("body", f"is not a usable template: {exc}") from None
        out["templates"].append({"id": unique_id("templates", c), "name": c.text("name", required=True),
                                 "version": c.integer("version", required=True, low=1, high=1_000_000),
                                 "body": dict(body), "created_at": c.date("created_at")})
    out["runs"] = []
    for i, r in enumerate(doc.get("runs") or []):
        c = _Check(f"runs[{i}]", r)
        status = c.text("status", limit=20)
        out["runs"].append({
            "id": unique_id("runs", c), "kind": c.text("kind", required=True, limit=50),
            "method": c.text("method"), "model": c.text("model", limit=500),
            "settings": c.mapping("settings"), "metrics": c.mapping("metrics"),
            "status": status if status in ("done", "failed") else "failed",
            "error": c.text("error", limit=IMPORT_MAX_TEXT) or ("" if status in ("done", "failed")
                                                                   else "interrupted before export"),
            "note": c.text("note", limit=IMPORT_MAX_TEXT), "started_at": c.date("started_at"),
            "finished_at": c.date("finished_at"), "dataset_id": c.integer("dataset_id"),
            "label_set_id": c.integer("label_set_id"), "template_id": c.integer("template_id")})
    out["trained_models"] = []
    for i, m in enumerate(doc.get("trained_models") or []):
        c = _Check(f"trained_models[{i}]", m)
        out["trained_models"].append({
            "name": c.text("name", required=True), "path": Path(c.text("path", limit=1000) or c.text("name")).name,
            "run_id": c.integer("run_id"), "base_model": c.text("base_model", limit=500), "info": c.mapping("info"),
            "created_at": c.date("created_at")})
    try:
        to_json(out)  # values inside settings/metrics/info must serialise (huge ints, odd keys)
    except (TypeError, ValueError, OverflowError) as exc:
        raise StoreError(f"The project file holds values that cannot be stored ({exc}). Nothing was imported.") from None
    return out


def _parse_export(data: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise StoreError("The project file is not UTF-8 text: choose a .json file exported by this app.") from None
    if isinstance(data, str):
        if not data.strip():
            raise StoreError("The project file is empty.")
        limit = get_settings().max_upload_bytes
        if len(data) > limit:
            raise StoreError(f"The project file is {len(data) / 1024**2:.0f} MB, above the {limit / 1024**2:.0f} MB "
                             "limit (ZSS_MAX_UPLOAD_MB).")
        from llm_backend.core.safe_yaml import NestingError, load_json

        try:
            data = load_json(data, what="project file")
        except NestingError as exc:
            raise StoreError(str(exc)) from None
        except json.JSONDecodeError as exc:
            raise StoreError(f"The project file is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    if not isinstance(data, Mapping) or data.get("format") != EXPORT_FORMAT:
        raise StoreError("This is not a Zero-Shot Studio project file (its 'format' field is missing or different).")
    version = data.get("version")
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise StoreError(f"The project file has format version {version!r}; this app reads up to {EXPORT_VERSION}. "
                         "Update the app.")
    if not isinstance(data.get("project"), Mapping):
        raise StoreError("The project file has no 'project' section.")
    for key in ("datasets", "label_sets", "templates", "runs", "trained_models"):
        if not isinstance(data.get(key, []), list):
            raise StoreError(f"The project file's '{key}' section must be a list.")
    return dict(data)


def _reason(exc: BaseException) -> str:
    """The first line of an sqlite/OS error, without the file's full path."""
    from llm_backend.core.paths import redact

    return redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]


# ------------------------------------------------------------------------------------------------ process cache
_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def get_store(path: str | os.PathLike[str] | None = None) -> Store:
    """One store per database file per process, shared by every session thread (it carries its own lock)."""
    db = Path(path) if path is not None else default_db_path()
    key = str(db.expanduser().resolve())
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None or not db.exists():  # a deleted file (tests, "start over") gets a fresh store
            store = Store(db)
            _STORES[key] = store
        return store



# ---------------------------------------------------------------------------------------------------- comparing
def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys ({'a': {'b': 1}} -> {'a.b': 1}), so two runs can be diffed line by line."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix or "(value)": value}


def diff_settings(a: Mapping[str, Any], b: Mapping[str, Any], only_changed: bool = False) -> list[dict[str, Any]]:
    """Rows {setting, a, b, changed} over the union of both runs' settings, changed ones first."""
    fa, fb = flatten(a), flatten(b)
    rows = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, "—"), fb.get(key, "—")
        changed = va != vb
        if changed or not only_changed:
            rows.append({"setting": key, "a": _cell(va), "b": _cell(vb), "changed": changed})
    return sorted(rows, key=lambda r: not r["changed"])


def compare_metrics(a: Run, b: Run) -> list[dict[str, Any]]:
    """Rows {metric, a, b, delta} for the headline numbers and each class's F1 (b minus a)."""
    rows = []

    def add(name: str, va: Any, vb: Any) -> None:
        na, nb = _num(va), _num(vb)
        rows.append({"metric": name, "a": na, "b": nb, "delta": (nb - na) if na is not None and nb is not None else None})

    for key in ("accuracy", "macro_f1", "n"):
        if key in a.metrics or key in b.metrics:
            add(key, a.metrics.get(key), b.metrics.get(key))
    pa, pb = a.metrics.get("per_class") or {}, b.metrics.get("per_class") or {}
    for label in list(dict.fromkeys([*pa, *pb])):
        add(f"F1 · {label}", (pa.get(label) or {}).get("f1"), (pb.get(label) or {}).get("f1"))
    shown = {"accuracy", "macro_f1", "n", "per_class", "confusion", "labels", "unknown_gold", "missing_gold"}
    for key in sorted((set(a.metrics) | set(b.metrics)) - shown):
        va, vb = a.metrics.get(key), b.metrics.get(key)
        if _num(va) is not None or _num(vb) is not None:
            add(key, va, vb)
    return rows


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
