"""Prompt templates: write a template, preview it on a row, run it (score / cloze / generate), compare up to 4.

The page only reads widgets and draws; rendering, few-shot selection, scoring and comparison live in
``llm_backend.prompts.templates`` / ``llm_backend.prompts.runner``. Runs go in chunks: each chunk's results are kept in the
session, so a Stop click (or editing the next template) never loses what was computed.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from llm_backend.data.files import to_csv_safe
from llm_backend.core.paths import display_path
from llm_backend.prompts.lm_scoring import NORMALIZE
from llm_backend.prompts.runner import (
    MODE_TITLES,
    MODES,
    PROMPT_CALIBRATION_TITLES,
    PROMPT_CALIBRATIONS,
    RunConfig,
    TemplateRun,
    compare,
)
from llm_backend.prompts.templates import (
    RESERVED,
    PromptTemplate,
    TemplateLibrary,
    check_verbalizer,
    load_template_upload,
    shipped_templates,
    template_from_dict,
    verbalizer_from_labels,
)
from ui import state
from ui.errors import user_errors
from ui.explain_panel import explain_prompt_run_panel
from ui.export_classifier import export_classifier
from ui.models import get_model, model_picker, registry
from ui.persistence import TEMPLATE_TO_LOAD, record_run
from ui.sidebar import render_sidebar
from ui.text import plain

st.set_page_config(page_title="Prompt templates · Zero-Shot Studio", page_icon="📝", layout="wide")
render_sidebar()
st.title("📝 Prompt templates")
ds = state.require_dataset()

RESULTS = "pt_results"  # {run name: PromptRunResult}; a reused template name gets "#2", never overwrites
JOB_NAME = "pt_job_name"  # the run name of the job in flight
NEWEST = "pt_newest"  # set when a run ends: the Results panel switches to it
JOB = "pt_job"  # the TemplateRun in progress
VERSION = "pt_editor_version"
BASE = "pt_base"  # the template the editor started from
CHUNK = 8

gold = ds.gold()
gold_labels = sorted({g for g in gold if g}) if gold else []


def _default_template() -> PromptTemplate:
    labels = gold_labels or ["positive", "negative"]
    return PromptTemplate(
        name="My template",
        template="Text: {{ text }}\n\nWhich category fits this text best: {{ answers }}? Answer with one word.",
        verbalizer=verbalizer_from_labels(labels))


def _load_into_editor(tpl: PromptTemplate) -> None:
    st.session_state[BASE] = tpl
    st.session_state["pt_name"] = tpl.name
    st.session_state["pt_template"] = tpl.template
    st.session_state["pt_desc"] = tpl.description
    st.session_state["pt_k"] = int(tpl.few_shot)
    st.session_state[VERSION] = st.session_state.get(VERSION, 0) + 1


# A template reopened from the Experiments page replaces the editor's content (before the widgets are drawn).
pending = st.session_state.pop(TEMPLATE_TO_LOAD, None)
if pending is not None:
    with user_errors("Opening the saved template"):
        _load_into_editor(template_from_dict(pending, source="saved template"))
        st.success(f"Opened the saved template '{plain(pending.get('name', ''))}'.")
if BASE not in st.session_state:
    _load_into_editor(_default_template())
results: dict = st.session_state.setdefault(RESULTS, {})

# ------------------------------------------------------------------------------------------------ library
with st.expander("Template library: load, save, rename, delete, download, upload", expanded=False):
    folder = st.text_input("Library folder", value=str(TemplateLibrary().folder), key="pt_folder",
                           help="A folder inside the allowed roots; templates are saved there as YAML files.")
    lib = None
    with user_errors("Opening the library"):
        lib = TemplateLibrary.at(folder)
        st.caption(f"Folder: {plain(display_path(lib.folder))}")
    shipped = {f"[shipped] {t.name}": t for t in shipped_templates()}
    saved = {t.name: t for t in lib.list()} if lib else {}
    options = list(saved) + list(shipped)
    c1, c2 = st.columns([3, 1])
    choice = c1.selectbox("Template", options, key="pt_pick") if options else None
    c2.button("Load", key="pt_load", disabled=not choice,
              on_click=lambda: _load_into_editor(saved.get(choice) or shipped[choice]))
    if choice in saved and lib is not None:
        c3, c4 = st.columns([3, 1])
        new_name = c3.text_input("Rename to", key="pt_rename_to")
        if c4.button("Rename", key="pt_rename"):
            with user_errors("Renaming"):
                lib.rename(choice, new_name)
                st.success(f"Renamed to '{plain(new_name)}'.")
        if st.button("Delete", key="pt_delete"):
            with user_errors("Deleting"):
                lib.delete(choice)
                st.success(f"Deleted '{plain(choice)}'.")
    upload = st.file_uploader("Upload a template (.yaml)", type=["yaml", "yml"], key="pt_upload")
    if upload is not None:
        with user_errors("Reading the template"):
            uploaded = load_template_upload(upload.getvalue(), upload.name)  # parsed once per content, not every rerun
            st.button(f"Load '{plain(uploaded.name)}'", key="pt_load_upload", on_click=lambda: _load_into_editor(uploaded))

# ------------------------------------------------------------------------------------------------- editor
base: PromptTemplate = st.session_state[BASE]
left, right = st.columns([3, 2])
with left:
    st.text_input("Name", key="pt_name")
    st.text_area("Template", key="pt_template", height=180,
                 help="Jinja placeholders: " + "; ".join(f"{{{{ {k} }}}}: {v}" for k, v in RESERVED.items())
                 + ". Other columns: {{ column_name }}.")
    cols = [c for c in ds.df.columns if str(c).isidentifier()]
    st.caption("Placeholders: `{{ text }}` (the text column), " + ", ".join(plain("{{ " + str(c) + " }}") for c in cols[:8])
               + ", `{{ answers }}`, `{{ label_list }}`, `{{ examples_block }}`; `[MASK]` for cloze mode.")
    st.text_input("Description", key="pt_desc")
with right:
    st.markdown("**Verbalizer**: answer words per label (comma-separated)")
    verb_df = pd.DataFrame({"label": list(base.verbalizer), "words": [", ".join(w) for w in base.verbalizer.values()]})
    edited = st.data_editor(verb_df, num_rows="dynamic", hide_index=True, width="stretch",
                            key=f"pt_verb_{st.session_state[VERSION]}")
    if gold_labels:
        st.button("Fill from gold labels", key="pt_fill", on_click=lambda: _load_into_editor(PromptTemplate(
            st.session_state["pt_name"], st.session_state["pt_template"], verbalizer_from_labels(gold_labels),
            int(st.session_state["pt_k"]), st.session_state["pt_desc"])))
    st.number_input("Few-shot examples per label", 0, 16, key="pt_k",
                    help="k rows per label with gold labels, never the row itself.")

template: PromptTemplate | None = None
with user_errors("Reading the template"):
    verbalizer = check_verbalizer({str(r["label"]).strip(): r["words"] for _, r in edited.iterrows()
                                   if str(r.get("label") or "").strip()})
    template = PromptTemplate(st.session_state["pt_name"].strip() or "template", st.session_state["pt_template"],
                              verbalizer, int(st.session_state["pt_k"]), st.session_state["pt_desc"])
if template is not None:
    d1, d2 = st.columns(2)
    d1.download_button("Download template (.yaml)", template.to_yaml(), file_name=f"{template.name}.yaml",
                       mime="application/x-yaml", key="pt_download")
    if d2.button("Save to library", key="pt_save"):
        with user_errors("Saving"):
            path = TemplateLibrary.at(st.session_state.get("pt_folder")).save(template)
            st.success(f"Saved as {plain(display_path(path))}.")

# ----------------------------------------------------------------------------------------------- settings
st.subheader("Run settings")
s1, s2, s3 = st.columns(3)
mode = s1.radio("Mode", MODES, format_func=lambda m: MODE_TITLES[m], key="pt_mode")
with s2:
    spec = model_picker("masked_lm" if mode == "cloze" else "causal_lm",
                        "Masked LM" if mode == "cloze" else "Causal LM", key=f"pt_model_{mode}")
    selection = st.selectbox("Few-shot selection", ["random", "nearest"], key="pt_selection",
                             format_func=lambda s: {"random": "random (seeded)",
                                                    "nearest": "nearest neighbours (embeddings)"}[s])
    seed = st.number_input("Seed", 0, 10_000, 0, key="pt_seed")
with s3:
    if mode == "generate":
        max_new = st.number_input("Max new tokens", 1, 256, 16, key="pt_max_new")
        temperature = st.slider("Temperature", 0.0, 2.0, 0.0, 0.1, key="pt_temp")
        calibration = "none"
    else:
        max_new, temperature = 16, 0.0
        calibration = st.selectbox("Calibration", PROMPT_CALIBRATIONS, key="pt_cal",
                                   format_func=lambda c: PROMPT_CALIBRATION_TITLES[c])
    normalize = "mean"
    if mode == "score":
        normalize = st.selectbox("Multi-token answers", NORMALIZE, key="pt_normalize",
                                 format_func=lambda n: {"mean": "mean log-prob per token", "sum": "sum (joint)",
                                                        "first": "first token only"}[n])
    n_rows = st.number_input("Rows to run (from the top)", 1, len(ds.df), min(len(ds.df), 50), key="pt_rows")
cfg = RunConfig(mode=mode, selection=selection, seed=int(seed), calibration=calibration, max_new_tokens=int(max_new),
                temperature=float(temperature), limit=int(n_rows), normalize=normalize)


def _models():
    model = get_model(spec)
    emb = get_model(registry().default("embedder")) if selection == "nearest" and template and template.few_shot else None
    return model, emb


def _make_run(rows=None) -> TemplateRun:
    model, emb = _models()
    return TemplateRun(template, ds.df, ds.text_column, ds.gold_column, cfg,
                       lm=model if mode != "cloze" else None, masked_lm=model if mode == "cloze" else None,
                       embedder=emb, rows=rows)


# ------------------------------------------------------------------------------------------------ preview
st.subheader("Preview")
row = st.number_input("Row", 0, len(ds.df) - 1, 0, key="pt_row")
if template is not None:
    with user_errors("Rendering the preview"):
        preview_run = _make_run(rows=[int(row)])
        prompt = preview_run.prompt_for(0)
        st.caption(f"{preview_run.count_tokens(prompt)} tokens for {plain(spec.name)}"
                   + (" (chat template applied)" if preview_run.chat else ""))
        st.code(prompt, language=None, wrap_lines=True)
        for note in preview_run.notes:
            st.caption(note)

# --------------------------------------------------------------------------------------------------- run
def _record(job: TemplateRun, note: str = "") -> None:
    """Save the run (its template, settings and metrics) to the experiment store; never breaks the page."""
    res = job.result()
    settings = dict(vars(job.cfg))
    settings.update(n_rows=len(res.rows))
    metrics = {**(res.metrics or {}), "seconds": round(res.seconds, 2)}
    if res.mode == "generate":
        metrics["n_unmapped"] = res.n_unmapped
    record_run("prompt", res.mode, job.model.spec.name, settings, metrics,
               labels=list(res.template.verbalizer), template=res.template.to_dict(), template_name=res.template.name,
               note=note)


def _unique_name(name: str) -> str:
    """A new run never replaces an earlier result: a reused template name gets "#2", "#3"… (issue 18)."""
    if name not in results:
        return name
    n = 2
    while f"{name} #{n}" in results:
        n += 1
    return f"{name} #{n}"


job: TemplateRun | None = st.session_state.get(JOB)
b1, b2 = st.columns([1, 1])
start = b1.button(f"Run on {int(n_rows)} rows", type="primary", key="pt_run", disabled=template is None or job is not None)
if start and template is not None:
    with user_errors("Preparing the run"):
        job = _make_run()
        st.session_state[JOB] = job
        st.session_state[JOB_NAME] = _unique_name(job.t.name)
# Drawn after a start so it is enabled while the run goes: a click interrupts the loop below and lands here.
stop = b2.button("Stop", key="pt_stop", disabled=job is None)
run_name = st.session_state.get(JOB_NAME, "")
if stop and job is not None:
    results[run_name] = job.result()
    _record(job, note=f"stopped after {job.done} of {len(job.rows)} rows")
    st.session_state.pop(JOB, None)
    st.session_state[NEWEST] = run_name
    job = None
    st.info("Stopped; the rows done so far are kept.")
if job is not None:
    bar = st.progress(job.done / len(job.rows), text=f"{plain(job.t.name)}: {job.done}/{len(job.rows)} rows")
    with user_errors("Running the template"):
        while job.done < len(job.rows):
            job.run_chunk(CHUNK)
            results[run_name] = job.result()  # partial results survive a Stop click or a rerun
            bar.progress(job.done / len(job.rows), text=f"{plain(job.t.name)}: {job.done}/{len(job.rows)} rows")
        results[run_name] = job.result()
        _record(job)
    st.session_state.pop(JOB, None)
    st.session_state[NEWEST] = run_name

# ----------------------------------------------------------------------------------------------- results
if results:
    st.subheader("Results")
    newest = st.session_state.pop(NEWEST, None)
    if newest in results:  # a run just ended: the panel shows it, not the one picked before
        st.session_state["pt_show"] = newest
    shown = st.selectbox("Run", list(results), index=len(results) - 1, key="pt_show")
    res = results[shown]
    m = res.metrics
    c = st.columns(4)
    c[0].metric("Rows", len(res.rows))
    if m and m.get("accuracy") is not None:
        c[1].metric("Accuracy", f"{m['accuracy']:.3f}")
        c[2].metric("Macro-F1", f"{m['macro_f1']:.3f}")
    if res.mode == "generate":
        c[3].metric("Unmapped", res.n_unmapped)
    else:
        c[3].metric("Seconds / 100 rows", f"{100 * res.seconds / max(1, len(res.rows)):.1f}")
    for note in res.notes:
        st.caption(note)
    st.dataframe(res.frame(), width="stretch", hide_index=True)
    st.download_button("Download predictions (CSV)", to_csv_safe(res.frame()), file_name=f"{shown}.csv",
                       key="pt_dl_results")
    explain_prompt_run_panel(res, key=f"pt_xp_{list(results).index(shown)}")
    if st.button("Clear results", key="pt_clear"):
        st.session_state[RESULTS] = {}
        st.rerun()

if len(results) >= 2:
    st.subheader("Compare templates")
    names = st.multiselect("Runs to compare (up to 4)", list(results), default=list(results)[-4:],
                           max_selections=4, key="pt_compare")
    if len(names) >= 2:
        with user_errors("Comparing"):
            cmp = compare([results[n] for n in names])
            st.dataframe(cmp["summary"], width="stretch", hide_index=True)
            st.markdown("**Agreement** (share of rows with the same prediction)")
            st.dataframe(cmp["agreement"].round(3), width="stretch")
            st.markdown(f"**Rows where they disagree**: {len(cmp['disagreements'])} of {len(cmp['rows'])}")
            st.dataframe(cmp["disagreements"], width="stretch", hide_index=True)
            one = st.selectbox("Prompts side by side for row", cmp["rows"], key="pt_cmp_row")
            pcols = st.columns(len(names))
            for col, n, label in zip(pcols, names, cmp["names"]):
                r = results[n]
                with col:
                    st.markdown(f"**{plain(label)}**")
                    st.code(r.prompts[r.rows.index(one)], language=None, wrap_lines=True)

export_classifier(unsupported="Prompt-template runs (Jinja prompts, few-shot examples) cannot be frozen yet. For batch "
                  "scoring, freeze the LM verbalizer or embedding method from the zero-shot page.", key="pt_export")
