"""The dataset every page and command works on: a table, its text and gold columns, and a fingerprint.

Pages hold one in the session (``ui.state``); ``score``/``train`` build one from ``--data``. Texts are cleaned once
(:func:`llm_backend.data.files.text_column_report`) and kept, gold labels are read one way, and the fingerprint ties
results to the exact rows they were computed on, so a page can mark or drop results made on other data.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from llm_backend.data.files import read_path, text_column_report
from llm_backend.core.errors import DataError


def clean_gold(values: Any) -> list[str]:
    """Gold cells as stripped strings; empty, NaN and None become "" (unlabelled)."""
    out = []
    for v in list(values):
        out.append("" if v is None or (not isinstance(v, str) and pd.isna(v)) or str(v) == "nan" else str(v).strip())
    return out


def text_fingerprints(texts: Any) -> list[str]:
    """Short stable hashes of texts (whitespace- and case-folded): how a saved model remembers what it was
    trained on without storing the texts themselves."""
    return [hashlib.sha1(" ".join(str(t).lower().split()).encode("utf-8")).hexdigest()[:16] for t in texts]


@dataclass
class Dataset:
    """``df`` is already sampled; ``source_rows`` is the size before sampling."""

    df: pd.DataFrame
    name: str
    text_column: str
    gold_column: str | None = None
    source_rows: int = 0
    notes: list[str] = field(default_factory=list)
    _texts: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _text_notes: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def texts(self) -> list[str]:
        """The text column cleaned once (numbers as strings, blanks as "")."""
        if self._texts is None:
            self._texts, self._text_notes = text_column_report(self.df[self.text_column])
        return self._texts

    def text_notes(self) -> list[str]:
        self.texts()
        return list(self._text_notes)

    def gold(self) -> list[str] | None:
        if not self.gold_column:
            return None
        return clean_gold(self.df[self.gold_column].tolist())

    @property
    def fingerprint(self) -> str:
        """Changes when rows, the text column or the gold column change (not when a label column is added)."""
        if self._fingerprint is None:
            h = pd.util.hash_pandas_object(self.df[self.text_column], index=True).sum()
            self._fingerprint = f"{self.name}:{len(self.df)}:{self.text_column}:{self.gold_column}:{h}"
        return self._fingerprint

    @classmethod
    def from_file(cls, path: str | Path, text_column: str, gold_column: str | None = None,
                  limit: int | None = None, sheet: str | None = None,
                  encoding: str | None = None) -> "Dataset":
        """Read a file the way the CLI does; ``limit`` keeps the first N rows; ``sheet``/``encoding`` as --sheet and
        --encoding give them (default: the first sheet, a detected encoding)."""
        table = read_path(path, sheet=sheet, encoding=encoding)
        df = table.df
        for col, what in ((text_column, "text"), (gold_column, "gold")):
            if col is not None and col not in df.columns:
                raise DataError(f"The {what} column '{col}' is not in the file. Columns: "
                                f"{', '.join(map(str, df.columns))}")
        n_total = len(df)
        if limit:
            df = df.head(limit)
        return cls(df, table.name, text_column, gold_column, source_rows=n_total, notes=list(table.notes))
