"""Prompt templates: write a template, preview it on a row, run it (score / cloze / generate), compare up to 4.

The page only reads widgets and draws; rendering, few-shot selection, scoring, comparison and run records live in
``llm_backend.prompts`` (``templates``, ``runner``, ``run_records``); the editor, library panel and result views are
``ui.prompt_editor``, ``ui.template_library`` and ``ui.prompt_results``. Runs go in chunks: each chunk's results are kept in the
session, so a Stop click (or editing the next template) never loses what was computed.
"""
from __future__ import annotations

import streamlit as st

from llm_backend.prompts.lm_scoring import NORMALIZE
from llm_backend.prompts.run_records import run_record, unique_run_name
from llm_backend.prompts.runner import (
    MODE_TITLES,
    MODES,
    PROMPT_CALIBRATION_TITLES,
    PROMPT_CALIBRATIONS,
    RunConfig,
    TemplateRun,
    default_prompt_model,
)
from llm_backend.prompts.templates import PromptTemplate
from ui import state
from ui.errors import user_errors
from ui.explain_panel import explain_prompt_run_panel
from ui.export_classifier import export_classifier
from ui.models import get_model, model_picker, registry
from ui.persistence import record_run
from ui.prompt_editor import load_into_editor, start_editor, template_editor
from ui.prompt_results import compare_runs, run_results
from ui.sidebar import render_sidebar
from ui.template_library import template_library
from ui.text import plain

st.set_page_config(page_title="Prompt templates · Zero-Shot Studio", page_icon="📝", layout="wide")
render_sidebar()
st.title("📝 Prompt templates")
ds = state.require_dataset()

RESULTS = "pt_results"  # {run name: PromptRunResult}; a reused template name gets "#2", never overwrites
JOB_NAME = "pt_job_name"  # the run name of the job in flight
NEWEST = "pt_newest"  # set when a run ends: the Results panel switches to it
JOB = "pt_job"  # the TemplateRun in progress
CHUNK = 8

gold = ds.gold()
gold_labels = sorted({g for g in gold if g}) if gold else []
start_editor(gold_labels)  # a template reopened from Experiments, or the starter template
results: dict = st.session_state.setdefault(RESULTS, {})

template_library(load_into_editor)
template: PromptTemplate | None = template_editor(ds, gold_labels)

# ----------------------------------------------------------------------------------------------- settings
st.subheader("Run settings")
s1, s2, s3 = st.columns(3)
mode = s1.radio("Mode", MODES, format_func=lambda m: MODE_TITLES[m], key="pt_mode")
with s2:
    role = "masked_lm" if mode == "cloze" else "causal_lm"
    spec = model_picker(role, "Masked LM" if mode == "cloze" else "Causal LM", key=f"pt_model_{mode}",
                        default=default_prompt_model(registry(), role).name)  # the CLI's default too
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
    rec = run_record(job.result(), job.cfg)
    record_run("prompt", rec.method, job.model.spec.name, rec.settings, rec.metrics, labels=rec.labels,
               template=rec.template, template_name=rec.template_name, note=note)


job: TemplateRun | None = st.session_state.get(JOB)
b1, b2 = st.columns([1, 1])
start = b1.button(f"Run on {int(n_rows)} rows", type="primary", key="pt_run", disabled=template is None or job is not None)
if start and template is not None:
    with user_errors("Preparing the run"):
        job = _make_run()
        st.session_state[JOB] = job
        st.session_state[JOB_NAME] = unique_run_name(job.t.name, results)
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
shown = None
if results:
    shown = run_results(results, st.session_state.pop(NEWEST, None))
    explain_prompt_run_panel(results[shown], key=f"pt_xp_{list(results).index(shown)}")
    if st.button("Clear results", key="pt_clear"):
        st.session_state[RESULTS] = {}
        st.rerun()
if len(results) >= 2:
    compare_runs(results)

if shown in results:  # the run shown above, frozen for `batch` (score mode, text-only templates, random demonstrations)
    export_classifier(prompt_result=results[shown], key="pt_export", default_name="prompt-classifier")
