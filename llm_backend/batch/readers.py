"""Reading an archive lazily: CSV, Parquet and JSON Lines in fixed-size partitions, never the whole file.

A batch job is a list of input files (a path or a glob, expanded and sorted) cut into partitions of
``rows_per_partition`` rows each, counted from the start of each file. The cut depends only on the files, so a rerun
(or another engine) sees the same partitions with the same names, which is what makes resuming and "no duplicate
rows after a retry" possible.

- Parquet: ``pyarrow.parquet.ParquetFile.iter_batches`` over the two needed columns.
- CSV/TSV: pandas' chunked reader, every column as text and empty cells as "" (as ``score`` reads them).
- JSON Lines: pandas' chunked ``read_json(lines=True)``.

Each partition is re-buffered to exactly ``rows_per_partition`` rows, so how a library happens to chunk a file never
changes the partitions.
"""
from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from llm_backend.core.errors import DataError

BATCH_EXTENSIONS = (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson")
#: Default partition size: small enough to resume at a fine grain and keep memory flat, large enough that the
#: per-file overhead of Parquet stays negligible.
DEFAULT_ROWS_PER_PARTITION = 20_000
ROW_COLUMN = "row"


@dataclass(frozen=True)
class InputFile:
    index: int
    path: str
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def kind(self) -> str:
        ext = Path(self.path).suffix.lower()
        return {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}[ext]


def expand_inputs(pattern: str | os.PathLike[str] | list[str]) -> list[InputFile]:
    """The input files, sorted; a clear error when nothing matches or a type cannot be read lazily."""
    patterns = [str(p) for p in pattern] if isinstance(pattern, list) else [str(pattern)]
    paths: list[str] = []
    for pat in patterns:
        pat = os.path.expanduser(pat.strip())
        if not pat:
            raise DataError("Give an input file or glob (--input).")
        if glob.has_magic(pat):
            found = sorted(glob.glob(pat, recursive=True))
            if not found:
                raise DataError(f"The input glob '{pat}' matches no file.")
            paths += [p for p in found if os.path.isfile(p)]
        elif os.path.isdir(pat):
            found = sorted(str(p) for p in Path(pat).iterdir() if p.suffix.lower() in BATCH_EXTENSIONS)
            if not found:
                raise DataError(f"The input folder '{Path(pat).name}' holds no {', '.join(BATCH_EXTENSIONS)} file.")
            paths += found
        elif os.path.isfile(pat):
            paths.append(pat)
        else:
            raise DataError(f"No such input file: {pat}")
    paths = list(dict.fromkeys(os.path.abspath(p) for p in paths))
    if not paths:
        raise DataError("The input matches only folders, no files.")
    bad = [Path(p).name for p in paths if Path(p).suffix.lower() not in BATCH_EXTENSIONS]
    if bad:
        raise DataError(f"Batch jobs read {', '.join(BATCH_EXTENSIONS)} files; these are not: {', '.join(bad[:5])}. "
                        "Convert spreadsheets to CSV or Parquet first.")
    out = []
    for i, p in enumerate(paths):
        st = os.stat(p)
        out.append(InputFile(i, p, st.st_size, st.st_mtime_ns))
    return out


def _csv_sep(f: InputFile) -> str:
    if f.kind == "tsv":
        return "\t"
    with open(f.path, "r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        sample = fh.read(64_000)
    try:
        return csv.Sniffer().sniff("\n".join(sample.splitlines()[:50]), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def file_columns(f: InputFile) -> list[str]:
    """Column names of one input file, read from its header / schema / first record only."""
    try:
        if f.kind == "parquet":
            import pyarrow.parquet as pq

            return [str(c) for c in pq.ParquetFile(f.path).schema_arrow.names]
        if f.kind in ("csv", "tsv"):
            with open(f.path, "r", encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader(fh, delimiter=_csv_sep(f)), [])
            return [h.strip() for h in header]
        with open(f.path, "r", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        raise DataError(f"'{f.name}' is not JSON Lines of objects.")
                    return [str(k) for k in rec]
        return []
    except DataError:
        raise
    except UnicodeDecodeError:
        raise DataError(f"'{f.name}' is not UTF-8. Batch jobs read UTF-8 text; convert the file first.") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow / json raise many types for a damaged file
        raise DataError(f"'{f.name}' cannot be read: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") from None


def check_columns(files: list[InputFile], text_column: str, id_column: str | None) -> None:
    """Every file must have the text (and id) column: found before any scoring, never a job that stops halfway."""
    problems = []
    for f in files:
        cols = file_columns(f)
        missing = [c for c in (text_column, id_column) if c and c not in cols]
        if missing:
            problems.append(f"{f.name} (no {', '.join(repr(m) for m in missing)}; has {', '.join(cols[:8])})")
    if problems:
        raise DataError(f"{len(problems)} of {len(files)} input file(s) lack a needed column: "
                        + "; ".join(problems[:5]) + ("…" if len(problems) > 5 else ""))


def _raw_chunks(f: InputFile, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    if f.kind == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(f.path)
        for rb in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            yield rb.to_pandas(types_mapper=pd.ArrowDtype)  # ints with nulls stay ints: one schema per job
        return
    if f.kind in ("csv", "tsv"):
        reader = pd.read_csv(f.path, sep=_csv_sep(f), header=0, dtype=str, keep_default_na=False, na_values=[],
                             usecols=columns, chunksize=chunk_rows, encoding="utf-8-sig", skip_blank_lines=True,
                             index_col=False)
    else:
        reader = pd.read_json(f.path, lines=True, chunksize=chunk_rows, dtype=False, encoding="utf-8")
    with reader:
        for chunk in reader:
            for c in columns:
                if c not in chunk.columns:
                    raise DataError(f"'{f.name}' has records without the column '{c}'.")
            yield chunk[columns]


def iter_partitions(f: InputFile, text_column: str, id_column: str | None, rows_per_partition: int
                    ) -> Iterator[tuple[int, pd.DataFrame]]:
    """(partition number, frame with ``row``, the id column if any, and ``text``) of exactly ``rows_per_partition``
    rows (the last one shorter), in file order."""
    columns = list(dict.fromkeys([text_column] + ([id_column] if id_column else [])))
    buf: list[pd.DataFrame] = []
    have = 0
    part = 0
    start_row = 0
    try:
        for chunk in _raw_chunks(f, columns, rows_per_partition):
            buf.append(chunk)
            have += len(chunk)
            while have >= rows_per_partition:
                whole = pd.concat(buf, ignore_index=True) if len(buf) > 1 else buf[0].reset_index(drop=True)
                yield part, _frame(whole.iloc[:rows_per_partition], start_row, text_column, id_column)
                rest = whole.iloc[rows_per_partition:]
                buf, have = ([rest] if len(rest) else []), len(rest)
                part += 1
                start_row += rows_per_partition
        if have:
            whole = pd.concat(buf, ignore_index=True) if len(buf) > 1 else buf[0].reset_index(drop=True)
            yield part, _frame(whole, start_row, text_column, id_column)
    except DataError:
        raise
    except UnicodeDecodeError:
        raise DataError(f"'{f.name}' is not UTF-8. Batch jobs read UTF-8 text; convert the file first.") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"'{f.name}' cannot be read past row {start_row + have}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") from None


def _frame(df: pd.DataFrame, start_row: int, text_column: str, id_column: str | None) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    out: dict[str, Any] = {ROW_COLUMN: range(start_row, start_row + len(df))}
    if id_column:
        out[id_column] = df[id_column].reset_index(drop=True)
    text = df[text_column]
    # Missing values of any flavour (None, NaN, pd.NA) become None, which the scorer counts as empty text.
    out["text"] = text.astype(object).where(text.notna(), None).to_numpy(dtype=object)
    return pd.DataFrame(out)


def count_rows(f: InputFile) -> int | None:
    """Row count when it is free (Parquet metadata); None for text formats (counting would read them twice)."""
    if f.kind == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(f.path).metadata.num_rows)
    return None
