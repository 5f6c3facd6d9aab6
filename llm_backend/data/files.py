"""Reading the analyst's table, whatever shape it arrives in, with messages they can act on.

Every reader returns a :class:`LoadedTable` with notes about what was guessed (encoding, delimiter, renamed
duplicate columns) so the page can say so instead of silently changing the data. Problems the user can fix raise
:class:`DataError` naming the fix.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from llm_backend.core.safe_yaml import NestingError, load_json

from llm_backend.core.config import PROJECT_ROOT, get_settings
from llm_backend.core.errors import DataError

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".json", ".jsonl", ".parquet")
#: Text formats that may also arrive gzip-compressed (``data.csv.gz``, or a gzip file named ``data.csv``).
TEXT_EXTENSIONS = (".csv", ".tsv", ".txt", ".json", ".jsonl")
COMMON_ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1", "shift_jis", "gb18030")
SAMPLES_DIR = PROJECT_ROOT / "samples"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NUMBER = re.compile(r"[-+]?\d[\d,]*(\.\d+)?([eE][-+]?\d+)?")


@dataclass
class LoadedTable:
    df: pd.DataFrame
    name: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _extension(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix == ".gz" and Path(Path(filename).stem).suffix.lower() in TEXT_EXTENSIONS:
        return Path(Path(filename).stem).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise DataError(
            f"'{Path(filename).name}' has an unsupported type '{suffix or 'none'}'. "
            "Use CSV, TSV, XLSX, JSON/JSONL or Parquet."
        )
    return suffix


def _utf8_damage(data: bytes) -> tuple[int, int]:
    """(bytes that are not valid UTF-8, non-ASCII characters that are) — tells damaged UTF-8 from another encoding."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode("utf-8"))
    good = sum(1 for ch in text if ord(ch) > 127 and ch != "\ufffd")
    return bad, good


def _mostly_cjk(text: str) -> bool:
    letters = [ch for ch in text[:20_000] if ch.isalpha()]
    cjk = sum(1 for ch in letters if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    return bool(letters) and cjk / len(letters) > 0.3


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str, list[str]]:
    """Bytes to text. UTF-8 first (with or without BOM), then a detector; a named encoding is used as given.

    Two cases the detector alone got wrong (issue 13/14): a UTF-8 file with one damaged byte was read whole as cp932
    (``Café`` → ``Cafﾃｩ``), and Chinese GBK files were sometimes taken for another CJK code page. So: when the valid
    non-ASCII UTF-8 characters outnumber the damaged bytes the file *is* UTF-8 — it is decoded with replacement
    characters and the note says how many bytes were bad; and GB18030 (a superset of GBK and GB2312) wins whenever it
    decodes the file cleanly into mostly Chinese text.
    """
    notes: list[str] = []
    if encoding:
        try:
            return data.decode(encoding), encoding, notes
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"The file cannot be read as {encoding}: {exc.reason if hasattr(exc, 'reason') else exc}. "
                            f"Try another encoding ({', '.join(COMMON_ENCODINGS)}).") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16", notes
    try:
        return data.decode("utf-8-sig"), "utf-8", notes
    except UnicodeDecodeError:
        pass
    bad, good = _utf8_damage(data)
    if good >= bad > 0:
        notes.append(f"The file is UTF-8 with {bad} damaged byte{'s' if bad != 1 else ''}; "
                     f"{'they were' if bad != 1 else 'it was'} replaced by \ufffd. If other characters look wrong "
                     "too, choose the file's encoding.")
        return data.decode("utf-8-sig", errors="replace"), "utf-8", notes
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    if text is not None and _mostly_cjk(text):
        notes.append("The file is not UTF-8; it was read as GB18030 (GBK), the usual encoding of Chinese Windows "
                     "files. If characters look wrong, choose the encoding.")
        return text, "gb18030", notes
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        guess = best.encoding
        # Short Western text is ambiguous between single-byte code pages (cp1250 reads "è" as "č"); cp1252, Excel's
        # default on Western Windows, is by far the likeliest of them when it decodes cleanly.
        if guess.replace("_", "").startswith(("cp125", "iso8859", "latin", "windows125")):
            try:
                data.decode("cp1252")
                guess = "cp1252"
            except UnicodeDecodeError:
                pass
        try:
            text = data.decode(guess)
        except (UnicodeDecodeError, LookupError):
            text = None
        if text is not None:
            notes.append(
                f"The file is not UTF-8; it was read as {guess}. If characters look wrong, choose the encoding."
            )
            return text, guess, notes
    raise DataError(
        "The file is not UTF-8 and its encoding could not be detected. "
        f"Choose its encoding (for example {', '.join(COMMON_ENCODINGS[3:])})."
    )


#: Leading bytes of file types that are sometimes renamed .csv/.json by mistake, with what to tell the user.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one too: if it is, give it the .xlsx extension)"),
    (b"\xd0\xcf\x11\xe0", "an old Office file (.xls or .doc: if it is a workbook, give it the .xls extension)"),
    (b"BZh", "a bzip2-compressed file (decompress it first)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (decompress it first)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive (extract it first)"),
    (b"Rar!", "a RAR archive (extract it first)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "a Parquet file (give it the .parquet extension)"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ", "a Windows program"),
)
GZIP_MAGIC = b"\x1f\x8b"


def sniff_binary(data: bytes) -> str | None:
    """What a text-named file really is, when its first bytes say it is a known binary format (else None)."""
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    return None


def gunzip_limited(data: bytes, limit: int, name: str) -> bytes:
    """Decompress a gzip file, refusing more than ``limit`` bytes of output (a 1 MB gzip can hold 1 GB of zeros)."""
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DataError(f"'{name}' is a gzip file but it is damaged ({exc}). Re-create it, or upload the "
                        "uncompressed file.") from None
    if len(out) > limit or d.unconsumed_tail:
        raise DataError(f"'{name}' is gzip-compressed and unpacks to more than the upload limit of "
                        f"{limit / 1024**2:.0f} MB (set ZSS_MAX_UPLOAD_MB to change it).")
    return out


def _sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _dedupe_columns(columns: list[object]) -> tuple[list[str], list[str]]:
    """Make column names unique and non-empty, reporting each rename."""
    seen: dict[str, int] = {}
    out, notes = [], []
    for i, col in enumerate(columns):
        name = str(col).strip() if col is not None and str(col).strip() and not str(col).startswith("Unnamed:") else f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            new = f"{name} ({seen[name]})"
            notes.append(f"Duplicate column name '{name}' renamed to '{new}'.")
            name = new
        else:
            seen[name] = 1
        out.append(name)
    return out, notes


def _read_delimited(text: str, delimiter: str | None, is_tsv: bool) -> tuple[pd.DataFrame, str, list[str]]:
    notes: list[str] = []
    if not text.strip():
        raise DataError("The file is empty.")
    delim = delimiter or ("\t" if is_tsv else _sniff_delimiter(text))
    # The csv module refuses fields over 128 kB by default, and that error read like a delimiter problem; a cell
    # may be as large as the file itself (long texts are cut later, with a note, see text_column_report).
    csv.field_size_limit(max(csv.field_size_limit(), min(len(text) + 1, 2**31 - 1)))
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delim))
        # index_col=False: a row with more fields than the header must be an error, not silently become the index.
        df = pd.read_csv(io.StringIO(text), sep=delim, header=0, dtype=str, keep_default_na=False,
                         na_values=[], skip_blank_lines=True, on_bad_lines="error", engine="python", index_col=False)
    except (pd.errors.ParserError, csv.Error, StopIteration) as exc:
        raise DataError(
            f"The file could not be parsed with delimiter {delim!r}: {str(exc).splitlines()[0][:200]}. "
            "Choose another delimiter, or check for unbalanced quotes."
        ) from None
    names, rename_notes = _dedupe_columns(header if len(header) == df.shape[1] else list(df.columns))
    df.columns = names
    notes += rename_notes
    if df.shape[1] == 1 and len(df) > 0:
        others = [d for d in ",;\t|" if d != delim and d in text[:5000]]
        if others:
            notes.append(
                f"Only one column was found with delimiter {delim!r}; the file also contains {others[0]!r}. "
                "If columns look merged, choose that delimiter."
            )
    return df, delim, notes


def list_sheets(data: bytes) -> list[str]:
    if not data.startswith(b"PK") and not data.startswith(b"\xd0\xcf\x11\xe0"):
        raise DataError("The Excel file cannot be opened: it is not a workbook (is it a CSV saved with an .xlsx "
                        "name?). Save it from Excel as .xlsx, or upload it as .csv.")
    try:
        with pd.ExcelFile(io.BytesIO(data)) as book:
            return [str(s) for s in book.sheet_names]
    except Exception:  # openpyxl/zipfile raise many types for a damaged file; their words do not help
        raise DataError("The Excel file cannot be opened: it is damaged or not a real workbook. Open and re-save "
                        "it in Excel, or export the sheet as CSV.") from None


def read_table(
    data: bytes,
    filename: str,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    max_bytes: int | None = None,
    keep_lists: bool = False,
) -> LoadedTable:
    """Read an uploaded or local file into a DataFrame of strings and numbers, with notes on every guess.

    List and record cells become text (see :func:`_flatten_nested_columns`) unless ``keep_lists``: token-level data
    (a JSONL of ``tokens`` / ``tags`` lists for the NER page) needs the lists themselves.
    """
    limit = max_bytes if max_bytes is not None else get_settings().max_upload_bytes
    if len(data) > limit:
        raise DataError(
            f"'{Path(filename).name}' is {len(data) / 1024**2:.0f} MB, above the upload limit of "
            f"{limit / 1024**2:.0f} MB (set ZSS_MAX_UPLOAD_MB to change it). Sample the file first, or split it."
        )
    if not data:
        raise DataError("The file is empty.")
    ext = _extension(filename)
    table = LoadedTable(pd.DataFrame(), Path(filename).name)
    if ext in TEXT_EXTENSIONS:
        if data.startswith(GZIP_MAGIC):
            data = gunzip_limited(data, limit, Path(filename).name)
            table.notes.append(f"'{Path(filename).name}' is gzip-compressed; it was decompressed "
                               f"({len(data) / 1024**2:.1f} MB).")
            if not data.strip():
                raise DataError("The file is empty (after decompressing).")
        what = sniff_binary(data)
        if what is not None and encoding is None:
            raise DataError(f"'{Path(filename).name}' is not a {ext.lstrip('.').upper()} text file: it is {what}. "
                            "Upload the table itself (CSV, TSV, XLSX, JSON/JSONL or Parquet).")
    if ext in (".csv", ".tsv", ".txt"):
        text, table.encoding, notes = decode_text(data, encoding)
        table.df, table.delimiter, more = _read_delimited(text, delimiter, ext == ".tsv")
        table.notes += notes + more
    elif ext in (".xlsx", ".xls"):
        table.sheets = list_sheets(data)
        table.sheet = sheet if sheet is not None else table.sheets[0]
        if table.sheet not in table.sheets:
            raise DataError(f"The workbook has no sheet '{table.sheet}'. Sheets: {', '.join(table.sheets)}")
        if len(table.sheets) > 1 and sheet is None:
            table.notes.append(f"The workbook has {len(table.sheets)} sheets; showing '{table.sheet}'. Choose another sheet if needed.")
        try:
            df = pd.read_excel(io.BytesIO(data), sheet_name=table.sheet)
        except Exception as exc:
            raise DataError(f"Sheet '{table.sheet}' cannot be read: {str(exc).splitlines()[0][:200]}") from None
        table.notes += _uncached_formulas(data, table.sheet, df)
        names, notes = _dedupe_columns(list(df.columns))
        df.columns = names
        table.df, table.notes = df, table.notes + notes
    elif ext in (".json", ".jsonl"):
        text, table.encoding, notes = decode_text(data, encoding)
        table.notes += notes
        table.df = _read_json(text, ext == ".jsonl")
    else:
        try:
            table.df = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:
            raise DataError(f"The Parquet file cannot be read: {str(exc).splitlines()[0][:200]}") from None
        names, notes = _dedupe_columns(list(table.df.columns))
        table.df.columns = names
        table.notes += notes
    if table.df.shape[1] == 0:
        raise DataError("The file has no columns.")
    if len(table.df) == 0:
        raise DataError(f"The file has a header ({', '.join(map(str, table.df.columns[:8]))}) but no rows.")
    max_rows = get_settings().max_rows
    if len(table.df) > max_rows:
        raise DataError(f"'{Path(filename).name}' has {len(table.df):,} rows, above this server's limit of "
                        f"{max_rows:,} (ZSS_MAX_ROWS). Sample or split the file first.")
    table.df = table.df.reset_index(drop=True)
    if not keep_lists:
        table.notes += _flatten_nested_columns(table.df)
    return table


def _flatten_nested_columns(df: pd.DataFrame) -> list[str]:
    """Cells holding lists or records (Parquet list/struct columns, JSON arrays) become explicit text, with a note.

    Left alone they were scored as numpy's ``str`` of the array (``[1 2]``): silently wrong texts. Lists are joined
    with ``"; "``; records and anything else nested become JSON.
    """
    import numpy as np

    notes = []
    for col in list(df.columns):
        s = df[col]
        if s.dtype != object:
            continue
        sample = s.head(200).tolist()
        kinds = {type(v).__name__ for v in sample if isinstance(v, (list, tuple, np.ndarray, dict))}
        if not kinds:
            continue

        def flat(v: object) -> object:
            if isinstance(v, np.ndarray):
                v = v.tolist()
            if isinstance(v, (list, tuple)):
                if all(not isinstance(x, (list, tuple, dict, np.ndarray)) for x in v):
                    return "; ".join("" if x is None else str(x) for x in v)
                return json.dumps(v, ensure_ascii=False, default=str)
            if isinstance(v, dict):
                return json.dumps(v, ensure_ascii=False, default=str)
            return v

        df[col] = s.map(flat)
        what = "records" if kinds == {"dict"} else "lists"
        notes.append(f"Column '{col}' holds {what}, not plain values; "
                     + ("they were written out as JSON text." if what == "records" else
                        "each list's items were joined with '; ' into one text."))
    return notes


def _uncached_formulas(data: bytes, sheet: str, df: pd.DataFrame) -> list[str]:
    """Formulas whose results were never saved read as empty cells: say so, or refuse when a whole column is.

    Workbooks written by scripts (openpyxl, pandas) keep ``=A1&B1`` without its value; pandas reads the cached value
    and gets nothing, so the texts were all empty and ``train`` still saved a model (issue 13).
    """
    empty_cols = [i for i, col in enumerate(df.columns) if df[col].isna().any()]
    if not empty_cols:
        return []
    try:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        ws = book[sheet]
        counts: dict[int, int] = {}
        for r, row in enumerate(ws.iter_rows(min_row=2, values_only=True)):
            if r >= len(df):
                break
            for i in empty_cols:
                if i < len(row) and isinstance(row[i], str) and row[i].startswith("=") and pd.isna(df.iat[r, i]):
                    counts[i] = counts.get(i, 0) + 1
        book.close()
    except Exception:  # noqa: BLE001  (.xls, damaged parts: the normal read already succeeded, keep it)
        return []
    notes = []
    for i, n in counts.items():
        col = df.columns[i]
        if n >= df[col].isna().sum() and df[col].isna().all():
            raise DataError(f"Column '{col}' of sheet '{sheet}' holds {n:,} formulas whose results were never saved "
                            "(the workbook was written by a program, not by Excel), so every value reads as empty. "
                            "Open and save it in Excel or LibreOffice (that stores the results), or export the "
                            "sheet as CSV.")
        notes.append(f"{n:,} cells of column '{col}' are formulas without saved results and read as empty. Open and "
                     "save the workbook in Excel or LibreOffice to store their values.")
    return notes


def _read_json(text: str, lines_hint: bool) -> pd.DataFrame:
    stripped = text.strip()
    if not stripped:
        raise DataError("The file is empty.")
    try:
        return _read_json_records(stripped, lines_hint)
    except NestingError as exc:
        raise DataError(str(exc)) from None


def _read_json_records(stripped: str, lines_hint: bool) -> pd.DataFrame:
    if lines_hint or (stripped.startswith("{") and "\n{" in stripped):
        records = []
        for number, line in enumerate(stripped.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(load_json(line, what=f"JSON Lines file (line {number})"))
            except json.JSONDecodeError as exc:
                raise DataError(f"The JSON Lines file is malformed at line {number}, column {exc.colno}: "
                                f"{exc.msg}.") from None
    else:
        try:
            records = load_json(stripped, what="JSON file")
        except json.JSONDecodeError as exc:
            raise DataError(f"The JSON is malformed at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    if isinstance(records, dict):
        # {"data": [...]} or {"col": [values]} are both common; prefer a list of records inside.
        lists = [v for v in records.values() if isinstance(v, list)]
        if len(lists) == 1 and lists[0] and isinstance(lists[0][0], dict):
            records = lists[0]
        else:
            try:
                return pd.DataFrame(records)
            except ValueError:
                raise DataError("The JSON object is not a table: expected a list of records.") from None
    if not isinstance(records, list) or not records:
        raise DataError("The JSON holds no records: expected a list of objects like [{\"text\": …}, …].")
    if not all(isinstance(r, dict) for r in records):
        if all(isinstance(r, str) for r in records):
            return pd.DataFrame({"text": records})
        raise DataError("The JSON list mixes objects and other values: expected a list of objects.")
    df = pd.json_normalize(records)
    names, _ = _dedupe_columns(list(df.columns))
    df.columns = names
    return df


def read_path(path: str | Path, **kwargs: object) -> LoadedTable:
    """Read a file from disk with the same rules as an upload (used by the CLI and benchmarks)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"No such file: {p}")
    limit = kwargs.pop("max_bytes", None)
    limit = int(limit) if limit is not None else get_settings().max_upload_bytes  # type: ignore[call-overload]
    size = p.stat().st_size
    if size > limit:  # checked before reading: the CLI honours ZSS_MAX_UPLOAD_MB like the pages
        raise DataError(f"'{p.name}' is {size / 1024**2:.0f} MB, above the limit of {limit / 1024**2:.0f} MB "
                        "(set ZSS_MAX_UPLOAD_MB to change it). Sample the file first, or split it.")
    return read_table(p.read_bytes(), p.name, max_bytes=limit, **kwargs)  # type: ignore[arg-type]


def text_column_report(series: pd.Series) -> tuple[list[str], list[str]]:
    """Texts as strings plus notes about blanks and non-text values, which are kept (as '') rather than dropped."""
    notes: list[str] = []
    values = series.tolist()
    texts: list[str] = []
    blanks = numbers = controls = long = 0
    max_chars = get_settings().max_text_chars
    for v in values:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            blanks += 1
            texts.append("")
            continue
        s = str(v)
        if _CONTROL.search(s):
            # NUL and other control bytes come from binary exports; tokenizers choke or silently drop them.
            controls += 1
            s = _CONTROL.sub(" ", s)
        # CSV cells arrive as strings, so "42" counts as a number too.
        if (isinstance(v, (int, float)) and not isinstance(v, bool)) or _NUMBER.fullmatch(s.strip()):
            numbers += 1
        if not s.strip():
            blanks += 1
        long += len(s) > max_chars
        texts.append(s)
    if blanks:
        notes.append(f"{blanks} of {len(values)} rows have an empty text; they are kept and scored as empty.")
    if long:
        notes.append(f"{long} text(s) are longer than {max_chars:,} characters (the longest has "
                     f"{max(len(t) for t in texts):,}); models read only the first {max_chars:,} "
                     "(ZSS_MAX_TEXT_CHARS).")
    if controls:
        notes.append(f"{controls} texts contained NUL or other control characters; they were replaced by spaces.")
    if numbers and numbers > len(values) / 2:
        notes.append(f"{numbers} of {len(values)} values in '{series.name}' are numbers: is this the text column?")
    elif numbers:
        notes.append(f"{numbers} values in '{series.name}' are numbers; they are treated as text.")
    return texts, notes


#: First characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: object) -> object:
    """A cell that a spreadsheet would run as a formula, prefixed with ``'`` so it shows as text; numbers stay.

    Exported predictions echo the user's texts, and a text like ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` would
    run when a colleague opens the CSV in Excel.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value.strip()):
        return "'" + value
    return value


def to_csv_safe(df: pd.DataFrame, path: str | Path | None = None, *, index: bool = False) -> str | None:
    """``df.to_csv`` with formula-leading text cells escaped (column names too); every CSV export goes through here."""
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(escape_formula)
    safe.columns = [escape_formula(str(c)) for c in safe.columns]
    if index:
        safe.index = safe.index.map(escape_formula)
    if path is None:
        return safe.to_csv(index=index)
    safe.to_csv(path, index=index)
    return None


def guess_text_column(df: pd.DataFrame) -> str:
    """The column with the longest average string value: usually the free text."""
    best, best_len = str(df.columns[0]), -1.0
    for col in df.columns:
        s = df[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            mean_len = s.astype(str).str.len().mean()
            if mean_len > best_len:
                best, best_len = str(col), float(mean_len)
    return best


def guess_label_column(df: pd.DataFrame, text_column: str) -> str | None:
    """A low-cardinality column that looks like labels, or None."""
    preferred = ("label", "labels", "category", "class", "intent", "sentiment", "topic", "gold")
    for col in df.columns:
        if str(col).lower() in preferred and col != text_column:
            return str(col)
    for col in df.columns:
        if col == text_column:
            continue
        n_unique = df[col].nunique(dropna=True)
        if 2 <= n_unique <= min(100, max(2, len(df) // 3)) and df[col].astype(str).str.len().mean() < 40:
            return str(col)
    return None


def sample_rows(df: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """A seeded random sample that keeps the original row numbers, so results can be traced back."""
    if n <= 0:
        raise DataError("The sample size must be at least 1.")
    if n >= len(df):
        return df
    return df.sample(n=n, random_state=seed).sort_index()


def list_samples() -> dict[str, Path]:
    """Bundled sample datasets by display name."""
    if not SAMPLES_DIR.is_dir():
        return {}
    return {p.stem.replace("_", " ").capitalize(): p for p in sorted(SAMPLES_DIR.glob("*.csv"))}


def load_sample(name: str) -> LoadedTable:
    samples = list_samples()
    if name not in samples:
        raise DataError(f"No bundled sample named '{name}'. Available: {', '.join(samples)}")
    table = read_path(samples[name])
    table.name = name
    return table
