"""The home page: samples, uploads of every supported type, column choice, sampling, and bad files."""
from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import app_test
from ui import state


def home() -> AppTest:
    at = app_test("Home.py")
    at.run()
    assert not at.exception
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="home_source").set_value("Upload a file").run()
    at.file_uploader(key="home_upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


def active(at: AppTest) -> state.ActiveDataset:
    return at.session_state[state.DATASET]


def test_sample_loads_and_becomes_active_dataset():
    at = home()
    assert at.selectbox(key="home_sample").value
    ds = active(at)
    assert len(ds.df) >= 150 and ds.gold_column is not None
    assert any("is the active dataset" in s.value for s in at.success)
    at.selectbox(key="home_sample").set_value("Support tickets").run()
    ds = active(at)
    assert ds.name == "Support tickets" and ds.text_column == "text" and ds.gold_column == "category"


def test_upload_csv_pick_columns_and_sample():
    rows = "\n".join(f"{i},ticket number {i} about my order,cat{i % 3}" for i in range(300))
    at = upload(home(), "tickets.csv", ("id,body,topic\n" + rows).encode())
    ds = active(at)
    assert ds.text_column == "body" and ds.gold_column == "topic" and len(ds.df) == 300
    at.selectbox(key="home_gold_col").set_value("(none)").run()
    assert active(at).gold_column is None
    at.number_input(key="home_n_rows").set_value(50).run()
    at.number_input(key="home_seed").set_value(7).run()
    ds = active(at)
    assert len(ds.df) == 50 and ds.source_rows == 300
    first = ds.df.index.tolist()
    at.number_input(key="home_seed").set_value(8).run()
    assert active(at).df.index.tolist() != first


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("empty.csv", b"", "empty"),
        ("header.csv", b"text,label\n", "no rows"),
        ("bad.json", b'{"text": ', "malformed"),
        ("garbage.parquet", b"\x00\x01 not parquet", "Parquet file cannot be read"),
        ("broken.xlsx", b"not a workbook", "Excel file cannot be opened"),
    ],
)
def test_bad_files_give_a_message_not_a_traceback(name, data, message):
    at = upload(home(), name, data)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_size_limit_is_named(monkeypatch):
    monkeypatch.setenv("ZSS_MAX_UPLOAD_MB", "1")
    at = upload(home(), "big.csv", b"text\n" + b"x" * (2 * 1024 * 1024))
    assert any("upload limit of 1 MB" in e.value for e in at.error)


def test_non_utf8_and_wrong_delimiter_are_explained():
    data = "texte;étiquette\nTrès déçu du produit;négatif\nSuper qualité;positif\n".encode("cp1252")
    at = upload(home(), "fr.csv", data)
    assert any("not UTF-8" in w.value for w in at.warning)
    assert active(at).df.shape[1] == 2
    at.selectbox(key="home_delimiter").set_value(",").run()
    assert any("Only one column" in w.value for w in at.warning)


def test_xlsx_with_several_sheets_lets_user_pick():
    buf = io.BytesIO()
    with pd.ExcelWriter(buf) as xw:
        pd.DataFrame({"note": ["readme"]}).to_excel(xw, sheet_name="about", index=False)
        pd.DataFrame({"text": [f"review {i} was fine" for i in range(5)], "label": ["a", "b"] * 2 + ["a"]}).to_excel(
            xw, sheet_name="data", index=False)
    at = upload(home(), "book.xlsx", buf.getvalue())
    assert any("2 sheets" in w.value for w in at.warning)
    at.selectbox(key="home_sheet").set_value("data").run()
    ds = active(at)
    assert ds.text_column == "text" and len(ds.df) == 5


def test_blank_and_numeric_text_values_are_reported():
    data = b"text,label\nhello there,a\n,b\n42,a\n"
    at = upload(home(), "x.csv", data)
    msgs = " ".join(w.value for w in at.warning)
    assert "empty text" in msgs and "numbers" in msgs


def test_duplicate_columns_and_jsonl_and_parquet():
    at = upload(home(), "dup.csv", b"text,text,label\na b c,d e f,x\ng h i,j k l,y\n")
    assert any("Duplicate column" in w.value for w in at.warning)
    at.file_uploader(key="home_upload").set_value(("d.jsonl", b'{"text": "alpha beta", "y": "1"}\n{"text": "gamma", "y": "2"}\n',
                                                   "application/json")).run()
    assert active(at).df.shape == (2, 2)
    buf = io.BytesIO()
    pd.DataFrame({"text": ["one two", "three four"], "label": ["a", "b"]}).to_parquet(buf)
    at.file_uploader(key="home_upload").set_value(("d.parquet", buf.getvalue(), "application/octet-stream")).run()
    assert active(at).gold_column == "label"


def test_sidebar_shows_device_and_memory():
    at = home()
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "Device:" in captions and "CPU" in captions and "MB RAM" in captions and "Dataset:" in captions


def test_adding_a_folder_that_is_not_a_model(_isolated_data_dir):
    folder = _isolated_data_dir / "not-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    at = home()
    at.sidebar.text_input(key="zss_add_model_where").set_value(str(folder)).run()
    at.sidebar.button(key="zss_add_model_btn").click().run()
    errors = [e.value for e in at.sidebar.error]
    assert any("not a model folder" in e for e in errors), errors
    assert not any(str(_isolated_data_dir) in e for e in errors)  # no absolute paths shown
    at.sidebar.text_input(key="zss_add_model_where").set_value("/etc").run()
    at.sidebar.button(key="zss_add_model_btn").click().run()
    assert any("outside the folders" in e.value for e in at.sidebar.error)
    assert not at.exception


def test_adding_the_bundled_embedder_folder_as_a_model(registry, monkeypatch):
    from llm_backend.models.registry import resolve_location

    folder = resolve_location(registry.default("embedder"))
    monkeypatch.setenv("ZSS_PATH_ROOTS", str(folder))
    at = home()
    at.sidebar.text_input(key="zss_add_model_where").set_value(folder).run()
    at.sidebar.button(key="zss_add_model_btn").click().run()
    assert any("as a sentence embedder" in s.value for s in at.sidebar.success)
    assert [m.role for m in at.session_state[state.USER_MODELS]] == ["embedder"]


def test_active_upload_survives_a_visit_to_another_page():
    """Issue 18: going back to Home used to replace the uploaded file with the first bundled sample."""
    at = home()
    csv = "body,topic\n" + "\n".join(f"text number {i},t{i % 3}" for i in range(30))
    upload(at, "mine.csv", csv.encode())
    assert active(at).name == "mine.csv"
    fingerprint = active(at).fingerprint
    at.switch_page("pages/5_Experiments.py").run()
    assert not at.exception
    at.switch_page("Home.py").run()
    assert not at.exception
    assert active(at).name == "mine.csv" and active(at).fingerprint == fingerprint
    assert any("Still using the dataset loaded before" in i.value for i in at.info)


def test_changing_the_dataset_clears_results_of_the_old_one():
    at = home()
    at.session_state[state.PREDICTIONS] = {"pred": ["x"], "fingerprint": active(at).fingerprint}
    at.session_state[state.LABELS] = ["stale"]
    other = next(o for o in at.selectbox(key="home_sample").options if o != active(at).name)
    at.selectbox(key="home_sample").set_value(other).run()
    assert not at.exception
    assert active(at).name == other
    assert state.PREDICTIONS not in at.session_state and state.LABELS not in at.session_state
    assert any("were cleared" in i.value for i in at.info)


def test_user_strings_render_as_plain_text():
    """Issue 13: a file or column name with markdown must not render as markdown (images, links, bold)."""
    at = home()
    evil_col = "**bold**![x](http://example.invalid/p.png)"
    csv = f"{evil_col},topic\n" + "\n".join(f"some longer text {i},t{i % 2}" for i in range(10))
    upload(at, "![img](http://example.invalid/a.png).csv", csv.encode())
    assert not at.exception
    shown = [e.value for e in [*at.markdown, *at.caption, *at.info, *at.success, *at.warning, *at.error,
                               *at.sidebar.caption]]
    assert any("example" in v for v in shown)  # the names are shown ...
    live = re.compile(r"(?<!\\)\]\(http|(?<!\\)\*\*bold")  # an unescaped link/image target or bold
    assert not any(live.search(v) for v in shown), shown  # ... but never as live markdown
