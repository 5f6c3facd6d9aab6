"""A batch job: its identity, its output folder, and the pieces every engine shares.

Both engines run the same three steps, so they write the same partitions:

1. :func:`partition_frames` reads one input file lazily and yields its partitions (tagged with file and partition
   number; a partition already written is replaced by a one-row *skip marker* so the driver still counts it);
2. :func:`score_frame` labels a frame with a :class:`~llm_backend.batch.frozen.ClassifierRunner` (a row's result
   never depends on the other rows in the frame, so how an engine batches rows does not matter);
3. :class:`Collector` gathers scored rows per partition, drops duplicates by row number (a retried worker may
   deliver a row twice), and writes each partition once it is complete, atomically (temporary file + rename) under
   a name fixed by the input (``part-<file>-<partition>.parquet``).

The output folder holds ``_job.json`` (what the job is: classifier fingerprint, input files with sizes and times,
columns, partition size). A rerun with the same job skips the partitions already written; a folder holding another
job's files is refused, so two jobs never mix their rows.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from llm_backend.batch.frozen import FrozenClassifier
from llm_backend.batch.readers import ROW_COLUMN, InputFile, iter_partitions
from llm_backend.core.errors import DataError, UserError

JOB_FILE = "_job.json"
SUMMARY_FILE = "_SUCCESS.json"
JOB_FORMAT = "zero-shot-studio/batch-job"
PART_RE = re.compile(r"^part-(\d{5})-(\d{6})\.parquet$")
TMP_RE = re.compile(r"^\.tmp-[0-9a-f]{32}-part-\d{5}-\d{6}\.parquet$")
RESERVED = ("text", "label", "score", "margin", "file")
#: Tag columns that travel with rows through the engines and are dropped before writing.
TAGS = ("_file", "_part", "_n", "_last", "_skip")
DEFAULT_BATCH_ROWS = 512


@dataclass
class BatchJob:
    """What to score and where: everything that decides the output, and nothing that does not (engine, workers)."""

    classifier_path: str
    clf: FrozenClassifier
    files: list[InputFile]
    text_column: str
    id_column: str | None
    output: Path
    rows_per_partition: int
    batch_rows: int = DEFAULT_BATCH_ROWS
    cache_entries: int = 20_000

    def __post_init__(self) -> None:
        if self.rows_per_partition < 1:
            raise UserError("--rows-per-partition must be at least 1.")
        if self.batch_rows < 1:
            raise UserError("--batch-rows must be at least 1.")
        if self.id_column and (self.id_column in RESERVED or self.id_column.startswith("_")):
            raise UserError(f"The id column may not be called '{self.id_column}' (the output uses "
                            f"{', '.join(RESERVED)}); rename it in the input.")

    @property
    def id_name(self) -> str:
        return self.id_column or ROW_COLUMN

    @property
    def with_file_column(self) -> bool:
        """Row numbers repeat across files, so the file name goes with them when there are several inputs."""
        return self.id_column is None and len(self.files) > 1

    def manifest(self) -> dict[str, Any]:
        return {
            "format": JOB_FORMAT, "version": 1,
            "classifier": {"name": self.clf.name, "fingerprint": self.clf.fingerprint},
            "inputs": [{"name": f.name, "size": f.size, "mtime_ns": f.mtime_ns} for f in self.files],
            "text_column": self.text_column, "id_column": self.id_column,
            "rows_per_partition": self.rows_per_partition,
        }

    @property
    def job_id(self) -> str:
        return hashlib.sha256(json.dumps(self.manifest(), sort_keys=True).encode()).hexdigest()[:16]


def part_name(file_index: int, part: int) -> str:
    return f"part-{file_index:05d}-{part:06d}.parquet"


def prepare_output(job: BatchJob) -> set[tuple[int, int]]:
    """Create or reopen the output folder for ``job``; return the partitions already written.

    Refuses a folder holding another job's manifest, or files this job did not write (never mixes two jobs' rows).
    Removes this engine's own temporary files left by a killed run.
    """
    out = job.output
    if out.exists() and not out.is_dir():
        raise UserError(f"The output '{out.name}' is a file; give a folder.")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / JOB_FILE
    entries = [p for p in out.iterdir()]
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UserError(f"The output folder '{out.name}' has a damaged {JOB_FILE}; use an empty folder.") from None
        old_id = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16] if isinstance(old, dict) \
            else ""
        if old_id != job.job_id:
            what = old.get("classifier", {}).get("name", "?") if isinstance(old, dict) else "?"
            raise UserError(
                f"The output folder '{out.name}' holds the partitions of another job (classifier '{what}', other "
                "inputs or settings). Use an empty folder for this job, or delete that one.")
    else:
        foreign = [p.name for p in entries if not TMP_RE.match(p.name)]
        if foreign:
            raise UserError(f"The output folder '{out.name}' is not empty and was not written by a batch job "
                            f"({', '.join(sorted(foreign)[:3])}…). Use an empty folder.")
        tmp = out / f".tmp-{uuid.uuid4().hex}-{JOB_FILE}"
        tmp.write_text(json.dumps(job.manifest(), indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, manifest_path)
    done: set[tuple[int, int]] = set()
    for p in out.iterdir():
        if TMP_RE.match(p.name):
            p.unlink(missing_ok=True)
            continue
        m = PART_RE.match(p.name)
        if m:
            if _partition_job(p) != job.job_id:
                raise UserError(f"The output folder '{out.name}' holds a partition of another job ({p.name}). Use an "
                                "empty folder.")
            done.add((int(m.group(1)), int(m.group(2))))
    return done


def _partition_job(path: Path) -> str:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path).metadata or {}
    except Exception:  # noqa: BLE001 - a damaged file is simply not ours
        return ""
    return meta.get(b"zss_job", b"").decode()


def partition_frames(job: BatchJob, f: InputFile, done: set[tuple[int, int]]) -> Iterator[pd.DataFrame]:
    """The partitions of one file, tagged; partitions in ``done`` become one-row skip markers (not scored)."""
    last_part = None
    pending: pd.DataFrame | None = None
    for part, frame in iter_partitions(f, job.text_column, job.id_column, job.rows_per_partition):
        # Emit one behind, so the file's last partition can be flagged when it is known to be last.
        if pending is not None:
            yield pending
        n = len(frame)
        if (f.index, part) in done:
            frame = frame.iloc[:1].copy()
            frame["text"] = ""
            skip = 1
        else:
            skip = 0
        frame = frame.assign(_file=f.index, _part=part, _n=n, _last=0, _skip=skip)
        pending, last_part = frame, part
    if pending is not None:
        pending["_last"] = 1
        yield pending
    del last_part


def score_frame(runner: Any, frame: pd.DataFrame, batch_rows: int = DEFAULT_BATCH_ROWS) -> pd.DataFrame:
    """Label a tagged frame; skip markers pass through unscored. Scored in slices of ``batch_rows`` rows."""
    todo = frame[frame["_skip"] == 0] if "_skip" in frame else frame
    parts = []
    for start in range(0, len(todo), batch_rows):
        piece = todo.iloc[start:start + batch_rows]
        pred = runner.predict(piece["text"].tolist())
        parts.append(pred.set_index(piece.index))
    scored = frame.drop(columns=["text"])
    if parts:
        pred = pd.concat(parts)
        scored = scored.join(pred)
    else:
        scored = scored.assign(label=None, score=np.nan, margin=np.nan)
    return scored


def write_partition(job: BatchJob, file_index: int, part: int, rows: pd.DataFrame) -> int:
    """Write one complete partition atomically; returns how many of its rows had empty text (skipped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = rows.sort_values(ROW_COLUMN, kind="stable")
    cols: dict[str, Any] = {}
    if job.id_column:
        cols[job.id_column] = pa.Array.from_pandas(rows[job.id_column].reset_index(drop=True))
    else:
        cols[ROW_COLUMN] = rows[ROW_COLUMN].to_numpy(dtype=np.int64)
        if job.with_file_column:
            cols["file"] = [job.files[file_index].name] * len(rows)
    cols["label"] = rows["label"].astype(object).where(rows["label"].notna(), None).to_numpy(dtype=object)
    cols["score"] = rows["score"].to_numpy(dtype=np.float64)
    cols["margin"] = rows["margin"].to_numpy(dtype=np.float64)
    empty = int(rows["label"].isna().sum())
    table = pa.table(cols)
    if "label" in cols:
        table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(cols["label"], pa.string()))
    meta = {b"zss_job": job.job_id.encode(), b"zss_rows": str(len(rows)).encode(), b"zss_empty": str(empty).encode(),
            b"zss_classifier": job.clf.fingerprint.encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    name = part_name(file_index, part)
    tmp = job.output / f".tmp-{uuid.uuid4().hex}-{name}"
    pq.write_table(table, tmp)
    os.replace(tmp, job.output / name)
    return empty


@dataclass
class Collector:
    """Gathers scored rows per partition and writes each one when complete; never writes a partial partition."""

    job: BatchJob
    progress: bool = True
    total_rows: int | None = None
    started: float = field(default_factory=time.perf_counter)
    buffers: dict[tuple[int, int], list[pd.DataFrame]] = field(default_factory=dict)
    expected: dict[tuple[int, int], int] = field(default_factory=dict)
    last_part: dict[int, int] = field(default_factory=dict)
    written: set[tuple[int, int]] = field(default_factory=set)
    skipped_done: set[tuple[int, int]] = field(default_factory=set)
    rows_scored: int = 0
    rows_resumed: int = 0
    empty: int = 0
    _last_print: float = 0.0

    def add(self, scored: pd.DataFrame) -> None:
        for (fi, pi), g in scored.groupby(["_file", "_part"], sort=False):
            key = (int(fi), int(pi))
            n = int(g["_n"].iloc[0])
            if int(g["_last"].max()):
                self.last_part[key[0]] = key[1]
            if int(g["_skip"].max()):
                if key not in self.skipped_done:
                    self.skipped_done.add(key)
                    self.rows_resumed += n
                continue
            if key in self.written:
                continue  # a retried worker delivered rows of a partition already written
            self.expected[key] = n
            self.buffers.setdefault(key, []).append(g)
            have = sum(len(x) for x in self.buffers[key])
            if have >= n:
                rows = pd.concat(self.buffers[key]).drop_duplicates(ROW_COLUMN)
                if len(rows) == n:
                    self.empty += write_partition(self.job, key[0], key[1], rows)
                    self.written.add(key)
                    self.rows_scored += n
                    del self.buffers[key]
                else:
                    self.buffers[key] = [rows]
        self._report()

    def _report(self, final: bool = False) -> None:
        if not self.progress:
            return
        now = time.perf_counter()
        if not final and now - self._last_print < 1.0:
            return
        self._last_print = now
        done = self.rows_scored + self.rows_resumed
        rate = self.rows_scored / max(now - self.started, 1e-9)
        total = f"/{self.total_rows:,}" if self.total_rows else ""
        resumed = f", {len(self.skipped_done)} already written" if self.skipped_done else ""
        print(f"\rbatch: {done:,}{total} rows, {len(self.written)} partition(s) written{resumed} "
              f"({rate:,.0f} rows/s)", end="\n" if final else "", file=sys.stderr, flush=True)

    def finish(self, engine: str) -> dict[str, Any]:
        """Check every partition of every file is on disk, then write the job summary; an error otherwise."""
        self._report(final=True)
        if self.buffers:
            keys = ", ".join(part_name(*k) for k in sorted(self.buffers)[:3])
            raise DataError(f"The job ended with {len(self.buffers)} incomplete partition(s) ({keys}); nothing of "
                            "them was written. Rerun the same command to finish them.")
        missing = []
        for f in self.job.files:
            last = self.last_part.get(f.index)
            for p in range(0 if last is None else last + 1):
                if not (self.job.output / part_name(f.index, p)).is_file():
                    missing.append(part_name(f.index, p))
        if missing:
            raise DataError(f"{len(missing)} partition(s) are missing from the output ({', '.join(missing[:3])}). "
                            "Rerun the same command to finish them.")
        summary = self.summary(engine)
        tmp = self.job.output / f".tmp-{uuid.uuid4().hex}-{SUMMARY_FILE}"
        tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        os.replace(tmp, self.job.output / SUMMARY_FILE)
        return summary

    def summary(self, engine: str) -> dict[str, Any]:
        import pyarrow.parquet as pq

        rows = empty = parts = 0
        for p in sorted(self.job.output.glob("part-*.parquet")):
            meta = pq.read_metadata(p).metadata or {}
            rows += int(meta.get(b"zss_rows", b"0"))
            empty += int(meta.get(b"zss_empty", b"0"))
            parts += 1
        return {"job": self.job.job_id, "classifier": self.job.clf.name, "engine": engine, "rows": rows,
                "empty_text_skipped": empty, "partitions": parts, "files": len(self.job.files),
                "scored_this_run": self.rows_scored, "resumed_rows": self.rows_resumed,
                "seconds": round(time.perf_counter() - self.started, 2)}
