"""Zero-shot label testing: edit a label set, score the active dataset with one or more methods, inspect errors.

Widgets → llm_backend (build_scorer, run_scorer, confusion analysis) → drawings. Results live in session state so
filters never rerun models. Fast methods run in the script; slow ones (the LM, ensembles with it) show a measured
estimate first and run in the background with Stop (llm_backend.training.runs.SCORING).
"""
from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from llm_backend.data.labels import Label, parse_label_list
from llm_backend.scorers import estimate as est
from llm_backend.scorers.calibration import CALIBRATION_TITLES, CALIBRATIONS
from llm_backend.scorers.defaults import corpus_chars
from llm_backend.scorers.embedding import EmbeddingScorer
from llm_backend.scorers.factory import ScorerConfig, build_scorer
from llm_backend.training.runs import SCORING, zero_shot_job
from llm_backend.core.workshop import RunTimer
from llm_backend.scorers.zero_shot import DEFAULT_CALIBRATION, ZeroShotResult, compare_results, confusable_report, \
    prepare_labels, run_scorer
from ui import state
from ui.background import run_panel, session_alive
from ui.errors import user_errors
from ui.explain_panel import explain_row_panel
from ui.language import dataset_language, warn_label_language
from ui.label_editor import label_editor
from ui.method_form import method_form
from ui.export_classifier import export_classifier
from ui.models import get_model, registry
from ui.persistence import record_run
from ui.progress import progress_bar
from ui.sidebar import render_sidebar
from ui.text import plain
from ui.wording_help_panel import wording_help_panel
from ui.zero_shot_view import comparison_view, results_view

RESULT = "zs_result"  # {"result": ZeroShotResult, "fingerprint": str, "dataset": str}
COMPARE = "zs_compare"
CONFUSABLE = "zs_confusable"
RUNS = "zs_run_count"  # how many model runs this session made (tests check filters do not rerun)
BG = "zs_background"  # the background TrainingRun of a slow configuration
OWNER = "zs_owner"
MAX_SAVED_PREDICTIONS = 20_000  # per-row predictions kept with a saved run, so Experiments can reopen its results
BACKGROUND_ABOVE_S = 15.0  # estimated runs longer than this go to the background

st.set_page_config(page_title="Zero-shot labels · Zero-Shot Studio", page_icon="🏷️", layout="wide")
render_sidebar()
st.title("🏷️ Zero-shot label testing")
ds = state.require_dataset()
texts, gold = ds.texts(), ds.gold()
st.caption(f"Dataset **{plain(ds.name)}**: {len(texts):,} rows, text column {plain(ds.text_column)}"
           + (f", gold column {plain(ds.gold_column)}" if ds.gold_column else
              " (no gold column: no accuracy, only predictions)"))
st.session_state.setdefault(OWNER, uuid.uuid4().hex)

st.header("1 · Label set")
labels, label_problem = label_editor(gold)

st.header("2 · Method")
c1, c2, c3, c4 = st.columns(4)
calibration = c1.selectbox("Calibration", CALIBRATIONS, index=CALIBRATIONS.index(DEFAULT_CALIBRATION),
                           format_func=lambda c: CALIBRATION_TITLES[c], key="zs_calibration")
multi = c2.radio("Labels per text", ["single-label", "multi-label"], horizontal=True, key="zs_mode") == "multi-label"
threshold = c3.slider("Multi-label threshold", 0.05, 0.95, 0.5, 0.05, key="zs_threshold", disabled=not multi)
floor = c4.slider("'None of these' below (0 = off)", 0.0, 0.9, 0.0, 0.05, key="zs_none_below", disabled=multi,
                  help="Single-label: predict '(none)' when the top probability is below this floor.")
language = dataset_language(ds.df, ds.text_column)  # preselects a multilingual embedder and template
label_names = [l.name for l in labels]
n_chars = corpus_chars(texts)  # small corpora get the larger embedder (as `score`)
cfg_a = method_form("zs_a", calibration, language=language, label_names=label_names, corpus_chars=n_chars)
decision = {"calibration": calibration, "multi_label": multi, "threshold": threshold, "none_below": floor}


def _finish(res: ZeroShotResult, cfg: ScorerConfig, kind: str, run_labels: list[Label]) -> None:
    """Keep a finished run (A or the comparison's B) and save it to Experiments."""
    st.session_state[RUNS] = st.session_state.get(RUNS, 0) + 1
    metrics = res.evaluate(gold) if gold else {"n": len(texts)}
    record_run("zero-shot" if kind == "run" else "zero-shot-compare", cfg.method, res.model,
               {**cfg.as_settings(), **decision, "n_texts": len(texts)},
               {**metrics, "seconds": round(res.seconds, 2), "predictions": list(res.pred)[:MAX_SAVED_PREDICTIONS]},
               labels=run_labels, labels_name=f"{ds.name} labels")
    if kind == "run":
        st.session_state[RESULT] = {"result": res, "fingerprint": ds.fingerprint, "dataset": ds.name,
                                    "metrics": metrics if gold else None}
        st.session_state[state.PREDICTIONS] = res.predictions_state(ds.fingerprint)
        st.session_state.pop(CONFUSABLE, None)
        st.session_state.pop(COMPARE, None)
    elif st.session_state.get(RESULT):
        base = st.session_state[RESULT]["result"]
        st.session_state[COMPARE] = {"result": res, "cmp": compare_results(base, res, texts, gold)}


def _estimate_widget(cfg: ScorerConfig, n_labels: int, key: str) -> float | None:
    """Show the measured estimate for ``cfg``; slow unmeasured configurations get a 'Measure speed' button."""
    seconds = est.estimate(cfg.cost_key(), cfg.cost_units(len(texts), max(n_labels, 1)), 1)
    if seconds is not None:
        st.caption(f"⏱ Estimated {est.describe_seconds(seconds)} for {len(texts):,} rows × {n_labels} labels "
                   "(measured on this server)." + (" It runs in the background; Stop ends it." if
                                                    seconds > BACKGROUND_ABOVE_S or cfg.is_slow() else ""))
    elif cfg.is_slow():
        st.warning("This method is slow on a CPU (it reads every text once per label) and has not been measured yet. "
                   "Measure it on 4 rows first to see how long the whole run would take.")
        if st.button("⏱ Measure speed", key=f"{key}_probe"):
            with user_errors("Measuring"), st.spinner("Scoring 4 rows…"):
                scorer, _ = build_scorer(cfg, registry(), get_model)
                labs = prepare_labels(labels, multi)
                seconds_per = est.probe(scorer, texts, labs, cfg.cost_key())  # per text × label
                est.record(cfg.cost_key(), cfg.cost_units(est.PROBE_ROWS, len(labs)), 1,
                           seconds_per * est.PROBE_ROWS * len(labs))
                st.rerun()
    return seconds


def _start(cfg: ScorerConfig, run_labels: list[Label], kind: str, seconds: float | None) -> None:
    labs = prepare_labels(run_labels, multi)
    scorer, model_name = build_scorer(cfg, registry(), get_model)

    def go(progress: Any) -> ZeroShotResult:
        return run_scorer(scorer, texts, labs, calibration=calibration, multi_label=multi, threshold=threshold,
                          none_below=floor or None, progress=progress, model_name=model_name)

    def remember(res: ZeroShotResult, s: float) -> None:
        est.record(cfg.cost_key(), cfg.cost_units(len(texts), len(labs)), 1, s)

    if cfg.is_slow() or (seconds or 0) > BACKGROUND_ABOVE_S:
        run = SCORING.start(f"{st.session_state[OWNER]}:zs", kind, zero_shot_job(go, remember), alive=session_alive())
        run.settings = {"kind": kind, "cfg": cfg, "labels": labs}
        st.session_state[BG] = run
        return
    bar, cb = progress_bar(f"Scoring {len(texts):,} texts × {len(labs)} labels", RunTimer("Run"))
    res = go(cb)
    bar.empty()
    remember(res, res.seconds)
    _finish(res, cfg, kind, labs)


warn_label_language(label_names, language, cfg_a.models.get(cfg_a.method))
bg = st.session_state.get(BG)
busy = bg is not None and bg.running
seconds_a = _estimate_widget(cfg_a, len(labels), "zs_a")
if st.button("Run", type="primary", key="zs_run", disabled=label_problem is not None or busy or
             (cfg_a.is_slow() and seconds_a is None)):
    with user_errors("Scoring"):
        _start(cfg_a, labels, "run", seconds_a)
run_panel("zs_bg", BG, lambda r: _finish(r.result, r.settings["cfg"], r.settings["kind"], r.settings["labels"]))

stored = st.session_state.get(RESULT)
if stored is not None and stored["fingerprint"] != ds.fingerprint:
    st.warning(f"The last results were computed on another dataset ({plain(stored['dataset'])}); they are hidden. "
               "Run again on this one.")
if stored is None or stored["fingerprint"] != ds.fingerprint:
    st.info("Set up the label set and method, then press **Run**.")
    st.stop()

res: ZeroShotResult = stored["result"]
st.header("3 · Results")
metrics = results_view(res, texts, gold, stored.get("metrics"))
export_classifier(res, texts, lambda: build_scorer(cfg_a, registry(), get_model)[0], key="zs_export")
explain_row_panel(texts, res.labels, lambda: build_scorer(cfg_a, registry(), get_model)[0], key="zs")

st.header("4 · Confusable labels")
st.caption("Label pairs whose meanings sit very close in embedding space, or that the confusion matrix mixes most.")
if st.button("Find confusable labels", key="zs_confusable_btn"):
    with user_errors("Finding confusable labels"):
        bar, cb = progress_bar("Embedding texts", RunTimer("Embedding texts"))
        emb = EmbeddingScorer(get_model(registry().default("embedder")), res.templates or None)
        st.session_state[CONFUSABLE] = confusable_report(emb, texts, res, metrics, progress=cb)
        bar.empty()
conf = st.session_state.get(CONFUSABLE)
if conf:
    if conf["pairs"].empty:
        st.success("No label pair stands out.")
    else:
        st.dataframe(conf["pairs"], width="stretch", hide_index=True)

wording_help_panel(lambda: build_scorer(cfg_a, registry(), get_model)[0], texts, res, gold, ds.fingerprint)

st.header("5 · Compare")
what = st.radio("Compare the run above with", ["another method", "another label set"], horizontal=True,
                key="zs_compare_what")
if what == "another method":
    st.caption("Pick the method for B below; slow methods show their estimated time before you run them.")
    cfg_b, labels_b_text = method_form("zs_b", calibration, "embedding", language=language, label_names=label_names,
                                       corpus_chars=n_chars), None
else:
    cfg_b = cfg_a
    labels_b_text = st.text_area("Label set B (one per line, `name: description` allowed)",
                                 "\n".join(l.name for l in labels), key="zs_compare_labels")
seconds_b = _estimate_widget(cfg_b, len(res.labels), "zs_b") if what == "another method" else seconds_a
if st.button("Run comparison", key="zs_compare_btn", disabled=busy or (cfg_b.is_slow() and seconds_b is None)):
    with user_errors("Comparing"):
        _start(cfg_b, parse_label_list(labels_b_text) if labels_b_text is not None else res.labels, "compare",
               seconds_b)
if st.session_state.get(COMPARE):
    comparison_view(res, st.session_state[COMPARE]["result"], st.session_state[COMPARE]["cmp"])
