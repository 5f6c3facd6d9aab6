"""Reading files the way analysts have them, including the broken ones."""
from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from llm_backend.core.errors import DataError
from llm_backend.data.files import (
    guess_label_column,
    guess_text_column,
    list_samples,
    load_sample,
    read_path,
    read_table,
    sample_rows,
    text_column_report,
)

CSV = "text,label\nThe parcel never arrived,shipping\nI was charged twice,billing\n"


def test_csv_roundtrip_and_delimiter_sniffing():
    t = read_table(CSV.encode(), "x.csv")
    assert list(t.df.columns) == ["text", "label"] and len(t.df) == 2
    t2 = read_table(CSV.replace(",", ";").encode(), "x.csv")
    assert t2.delimiter == ";" and t2.df.loc[1, "label"] == "billing"
    t3 = read_table(CSV.replace(",", "\t").encode(), "x.tsv")
    assert t3.delimiter == "\t" and t3.df.shape == (2, 2)


def test_wrong_delimiter_is_reported():
    t = read_table(CSV.replace(",", ";").encode(), "x.csv", delimiter=",")
    assert t.df.shape[1] == 1
    assert any("';'" in n for n in t.notes)


def test_non_utf8_is_detected_and_named():
    data = "text,label\nCafé crème très bon,positive\nDéçu du résultat,negative\n".encode("cp1252")
    t = read_table(data, "x.csv")
    assert t.df.loc[0, "text"] == "Café crème très bon"
    assert t.encoding and t.encoding.lower().replace("-", "") != "utf8"
    assert any("not UTF-8" in n for n in t.notes)
    with pytest.raises(DataError, match="cannot be read as utf-8"):
        read_table(data, "x.csv", encoding="utf-8")


def test_empty_header_only_and_size_limit():
    with pytest.raises(DataError, match="empty"):
        read_table(b"", "x.csv")
    with pytest.raises(DataError, match="no rows"):
        read_table(b"text,label\n", "x.csv")
    with pytest.raises(DataError, match="upload limit of 1 MB"):
        read_table(b"a" * (2 * 1024 * 1024), "big.csv", max_bytes=1024 * 1024)
    with pytest.raises(DataError, match="unsupported type"):
        read_table(b"abc", "x.docx")


def test_duplicate_columns_are_renamed():
    t = read_table(b"text,text,label\na,b,c\n", "x.csv")
    assert list(t.df.columns) == ["text", "text (2)", "label"]
    assert any("Duplicate column" in n for n in t.notes)


def test_malformed_csv_gives_message():
    with pytest.raises(DataError, match="could not be parsed"):
        read_table(b'text,label\n"unclosed quote,1\nfoo,bar,baz,qux\n', "x.csv")


def test_xlsx_with_several_sheets():
    buf = io.BytesIO()
    with pd.ExcelWriter(buf) as xw:
        pd.DataFrame({"a": [1]}).to_excel(xw, sheet_name="notes", index=False)
        pd.DataFrame({"text": ["hello", "bye"], "label": ["x", "y"]}).to_excel(xw, sheet_name="data", index=False)
    t = read_table(buf.getvalue(), "book.xlsx")
    assert t.sheets == ["notes", "data"] and t.sheet == "notes" and any("2 sheets" in n for n in t.notes)
    t2 = read_table(buf.getvalue(), "book.xlsx", sheet="data")
    assert t2.df["text"].tolist() == ["hello", "bye"]


def test_json_jsonl_parquet():
    recs = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]
    assert read_table(json.dumps(recs).encode(), "d.json").df.shape == (2, 2)
    assert read_table(json.dumps({"data": recs}).encode(), "d.json").df.shape == (2, 2)
    jl = "\n".join(json.dumps(r) for r in recs).encode()
    assert read_table(jl, "d.jsonl").df["label"].tolist() == ["x", "y"]
    with pytest.raises(DataError, match="malformed"):
        read_table(b'[{"text": "a",}', "d.json")
    buf = io.BytesIO()
    pd.DataFrame(recs).to_parquet(buf)
    assert read_table(buf.getvalue(), "d.parquet").df.shape == (2, 2)
    with pytest.raises(DataError, match="Parquet"):
        read_table(b"not parquet", "d.parquet")


def test_text_column_with_blanks_and_numbers():
    s = pd.Series(["hello", None, "", 42, 3.5], name="text")
    texts, notes = text_column_report(s)
    assert texts == ["hello", "", "", "42", "3.5"]
    assert any("empty text" in n for n in notes) and any("numbers" in n for n in notes)


def test_sampling_is_seeded_and_keeps_row_numbers():
    df = pd.DataFrame({"text": [f"t{i}" for i in range(100)]})
    a, b = sample_rows(df, 10, seed=3), sample_rows(df, 10, seed=3)
    assert a.index.tolist() == b.index.tolist() and len(a) == 10
    assert sample_rows(df, 10, seed=4).index.tolist() != a.index.tolist()
    assert len(sample_rows(df, 1000)) == 100
    with pytest.raises(DataError):
        sample_rows(df, 0)


def test_bundled_samples_are_real_labelled_sets():
    samples = list_samples()
    assert len(samples) >= 2
    for name in samples:
        t = load_sample(name)
        text_col = guess_text_column(t.df)
        gold = guess_label_column(t.df, text_col)
        assert len(t.df) >= 150 and gold is not None
        # real sentences, not ids: > 5 words per text on average (CJK characters count as words: no spaces)
        units = t.df[text_col].map(lambda x: len(x.split()) if x.isascii() else len(x.replace(" ", "")))
        assert units.mean() > 5, name
        assert 2 <= t.df[gold].nunique() <= 12


def test_read_path_shared_data(banking77):
    from tests.conftest import SHARED_DATA

    t = read_path(SHARED_DATA / "banking77_train.csv")
    assert len(t.df) == len(banking77) and guess_label_column(t.df, "text") == "category"
