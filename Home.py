"""Home: load a dataset, choose its text and gold-label columns, and see what the studio can do with it."""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from llm_backend.core.config import get_settings
from llm_backend.core.errors import DataError
from llm_backend.core.workshop import limits, row_cap
from llm_backend.data.files import (
    COMMON_ENCODINGS,
    SUPPORTED_EXTENSIONS,
    LoadedTable,
    guess_label_column,
    guess_text_column,
    list_samples,
    load_sample,
    read_table,
    sample_rows,
    text_column_report,
)
from ui.language import show_language_notice
from ui import state
from ui.charts import label_counts_chart
from ui.errors import user_errors
from ui.sidebar import dataset_caption, render_sidebar
from ui.text import plain

st.set_page_config(page_title="Zero-Shot Studio", page_icon="🧪", layout="wide")
dataset_slot = render_sidebar()
state.restore_home_widgets()  # back from another page: the loader shows what made the active dataset

st.title("🧪 Zero-Shot Studio")
st.write(
    "Prototype label sets, prompt templates and small models on **your own text** — no training needed for a "
    "first answer. Load a dataset here; every page then works on it."
)

PAGES = [
    ("pages/1_Zero-shot_labels.py", "🏷️", "Zero-shot label testing", "try a label set with several methods; accuracy against gold labels"),
    ("pages/2_Prompt_templates.py", "📝", "Prompt templates", "templates, verbalizers, few-shot examples; compare prompts"),
    ("pages/3_Embedding_map.py", "🗺️", "Embedding map", "see clusters and labels in 2D; select points; discover categories"),
    ("pages/4_Fine-tune_runs.py", "🎯", "Fine-tune runs", "few-shot training, LoRA and distillation, measured against zero-shot"),
    ("pages/5_Experiments.py", "📒", "Experiments", "saved runs, label sets and templates"),
    ("pages/6_Explain.py", "🔎", "Explain", "why a row got its label: words for and against it; attention maps"),
    ("pages/7_Named_entities.py", "🔖", "Named entities", "fine-tune, evaluate and run a token tagger (CoNLL)"),
]
available = [p for p in PAGES if (Path(__file__).parent / p[0]).is_file()]
PER_ROW = 4  # seven pages in one row cut their names ("Zero-shot labe…")
for start in range(0, len(available), PER_ROW):
    for col, (path, icon, title, blurb) in zip(st.columns(PER_ROW), available[start:start + PER_ROW]):
        with col:
            st.page_link(path, label=title, icon=icon)
            st.caption(blurb)

st.header("1 · Load a dataset")
settings = get_settings()
samples = list_samples()
source = st.radio("Source", ["Bundled sample", "Upload a file"], horizontal=True, key="home_source",
                  disabled=not samples, index=0 if samples else 1)

table: LoadedTable | None = None
if source == "Bundled sample":
    name = st.selectbox("Sample dataset", list(samples), key="home_sample")
    with user_errors("Loading the sample"):
        table = load_sample(name)
else:
    upload = st.file_uploader(
        f"CSV, TSV, XLSX, JSON/JSONL or Parquet (up to {settings.max_upload_mb} MB)",
        type=[e.lstrip(".") for e in SUPPORTED_EXTENSIONS],
        key="home_upload",
    )
    with st.expander("Reading options (encoding, delimiter, sheet)"):
        c1, c2 = st.columns(2)
        encoding = c1.selectbox("Encoding", ["(detect)", *COMMON_ENCODINGS], key="home_encoding")
        delimiter = c2.selectbox("Delimiter", ["(detect)", ",", ";", "tab", "|"], key="home_delimiter")
        sheet_slot = st.empty()
    if upload is not None:
        data = upload.getvalue()
        enc = None if encoding == "(detect)" else encoding
        delim = {"(detect)": None, "tab": "\t"}.get(delimiter, delimiter)
        sheet = st.session_state.get("home_sheet")
        digest = hashlib.sha1(data[:1_000_000]).hexdigest() + str(len(data))
        cache_key = (upload.name, digest, enc, delim, sheet)
        cached = st.session_state.get("home_upload_cache")
        if cached and cached[0] == cache_key:
            table = cached[1]
        else:
            with user_errors("Reading the file"), st.spinner("Reading the file…"):
                table = read_table(data, upload.name, encoding=enc, delimiter=delim, sheet=sheet)
                st.session_state["home_upload_cache"] = (cache_key, table)
        if table is not None and len(table.sheets) > 1:
            sheet_slot.selectbox("Sheet", table.sheets, key="home_sheet")

if table is None:
    if state.get_dataset() is not None:
        st.info(f"Still using the dataset loaded before: **{plain(state.get_dataset().name)}**. Upload a file or "
                "pick a sample to replace it.")
    st.stop()

for note in table.notes:
    st.warning(note)

df = table.df
columns = [str(c) for c in df.columns]
n_total = len(df)
# A new table gets fresh column guesses and row count: widget values kept from another file would be wrong for it.
table_id = (table.name, tuple(columns), n_total, table.sheet)
if st.session_state.get("home_table_id") != table_id:
    st.session_state["home_table_id"] = table_id
    st.session_state["home_text_col"] = guess_text_column(df)
    guess = guess_label_column(df, st.session_state["home_text_col"])
    st.session_state["home_gold_col"] = guess or "(none)"
    st.session_state["home_n_rows"] = min(n_total, 2000, row_cap(n_total))

st.header("2 · Choose columns")
c1, c2 = st.columns(2)
text_col = c1.selectbox("Text column", columns, key="home_text_col")
gold_choices = ["(none)"] + [c for c in columns if c != text_col]
if st.session_state.get("home_gold_col") not in gold_choices:
    st.session_state["home_gold_col"] = "(none)"
gold_sel = c2.selectbox("Gold-label column (optional)", gold_choices, key="home_gold_col")
gold_col = None if gold_sel == "(none)" else gold_sel

st.header("3 · Rows to use")
c1, c2 = st.columns(2)
max_rows = row_cap(n_total)
if max_rows < n_total:
    st.info(f"{limits().describe()} This file has {n_total:,} rows: a seeded sample of at most {max_rows:,} is used.")
if st.session_state.get("home_n_rows", 1) > max_rows:
    st.session_state["home_n_rows"] = max_rows
n_rows = int(c1.number_input(f"Rows to use (of {n_total:,})", min_value=1, max_value=max_rows,
                             step=100, key="home_n_rows",
                             help="A seeded random sample keeps pages fast on large files; the row numbers are kept."))
seed = int(c2.number_input("Sample seed", min_value=0, value=0, step=1, key="home_seed"))
try:
    used = sample_rows(df, n_rows, seed)
except DataError as exc:
    st.error(str(exc))
    st.stop()

texts, text_notes = text_column_report(used[text_col])
for note in text_notes:
    st.warning(note)
show_language_notice(used, text_col)  # detected language; non-English preselects a multilingual embedder

ds = state.ActiveDataset(used, table.name, text_col, gold_col, source_rows=n_total, notes=table.notes + text_notes)
for message in state.activate_dataset(ds):
    st.info(plain(message, 500))
state.remember_home_widgets()
ds = state.get_dataset()
dataset_caption(dataset_slot)

m1, m2, m3, m4 = st.columns(4)
m1.metric("Rows in use", f"{len(used):,}", delta=None if n_rows >= n_total else f"sampled from {n_total:,}",
          delta_color="off")
m2.metric("Columns", len(columns))
m3.metric("Mean text length", f"{sum(len(t) for t in texts) / max(len(texts), 1):.0f} chars")
m4.metric("Gold classes", used[gold_col].nunique() if gold_col else "—")
st.success(f"**{plain(table.name)}** is the active dataset ({len(used):,} rows). Open a page above to work on it.")

st.subheader("Preview")
st.dataframe(used.head(50), width="stretch", hide_index=False)
if gold_col:
    st.subheader("Gold-label distribution")
    label_counts_chart(used[gold_col].astype(str).str.strip(), f"{used[gold_col].nunique()} classes",
                       key="home_gold_chart")
