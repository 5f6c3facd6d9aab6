"""Zero-shot label testing: edit a label set, score the active dataset with one or more methods, inspect errors.

Thin page: widgets → llm_backend.scorers.zero_shot → drawings. Results live in session state so filters and views never
rerun models; a new run happens only on the Run/Compare buttons.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from llm_backend.data.files import to_csv_safe
from llm_backend.core.errors import LabelError, UserError
from llm_backend.core.workshop import RunTimer
from llm_backend.data.labels import (
    Label,
    dump_labels,
    labels_from_gold,
    load_labels_text,
    parse_label_list,
)
from llm_backend.scorers.calibration import CALIBRATION_TITLES, CALIBRATIONS
from llm_backend.scorers.embedding import (
    DEFAULT_TEMPLATE,
    GENERIC_TEMPLATES,
    EmbeddingScorer,
)
from llm_backend.scorers.ensemble import EnsembleScorer
from llm_backend.scorers.factory import (
    METHOD_ROLES,
    METHOD_TITLES,
    make_scorer,
    method_available,
)
from llm_backend.scorers.zero_shot import (
    DEFAULT_CALIBRATION,
    ZeroShotResult,
    compare_results,
    confusable_pairs,
    gold_coverage,
    label_similarity,
    labels_from_frame,
    labels_to_frame,
    metrics_table,
    prepare_labels,
    run_scorer,
    suggest_phrasings,
)
from ui import state
from ui.errors import user_errors
from ui.models import get_model, registry
from ui.persistence import record_run
from ui.progress import progress_bar
from ui.sidebar import render_sidebar

RESULT = "zs_result"  # {"result": ZeroShotResult, "fingerprint": str, "texts": list[str]}
COMPARE = "zs_compare"
CONFUSABLE = "zs_confusable"
RUNS = "zs_run_count"  # how many model runs this session made (tests check filters do not rerun)
EDITOR_VERSION = "zs_editor_version"
EDITOR_BASE = "zs_editor_base"  # the label list the editor started from (its edits are deltas on top of it)
LABELS_SEEN = "zs_labels_seen"  # the list this page last stored, to notice other pages changing the label set

st.set_page_config(page_title="Zero-shot labels · Zero-Shot Studio", page_icon="🏷️", layout="wide")
render_sidebar()
st.title("🏷️ Zero-shot label testing")
ds = state.require_dataset()
texts = ds.texts()
gold = ds.gold()
st.caption(f"Dataset **{ds.name}**: {len(texts):,} rows, text `{ds.text_column}`"
           + (f", gold `{ds.gold_column}`" if ds.gold_column else " (no gold column: no accuracy, only predictions)"))

# ------------------------------------------------------------------------------------------------ label set
if state.LABELS not in st.session_state:
    st.session_state[state.LABELS] = labels_from_gold(gold) if gold else []


def _set_labels(labels: list[Label]) -> None:
    """Replace the label set and restart the editor from it (a fresh key drops the old edits)."""
    st.session_state[state.LABELS] = labels
    st.session_state[EDITOR_BASE] = labels
    st.session_state[LABELS_SEEN] = labels
    st.session_state[EDITOR_VERSION] = st.session_state.get(EDITOR_VERSION, 0) + 1


if st.session_state.get(LABELS_SEEN) is not st.session_state[state.LABELS]:
    _set_labels(st.session_state[state.LABELS])


st.header("1 · Label set")
tab_edit, tab_paste, tab_file = st.tabs(["Edit table", "Paste a list", "Load / save"])
with tab_edit:
    st.caption("One row per label. Names are written to the predictions; names like `card_arrival` or `Sci/Tech` are "
               "turned into words automatically. Add a description or extra phrasings (separated by `;`) to help.")
    edited = st.data_editor(labels_to_frame(st.session_state[EDITOR_BASE]), num_rows="dynamic", hide_index=True,
                            key=f"zs_label_editor_{st.session_state.get(EDITOR_VERSION, 0)}",
                            column_config={"name": st.column_config.TextColumn("name", required=True),
                                           "description": st.column_config.TextColumn("description"),
                                           "phrasings": st.column_config.TextColumn("extra phrasings (; separated)")})
    label_problem: str | None = None
    try:
        current = labels_from_frame(edited)
        st.session_state[state.LABELS] = current
        st.session_state[LABELS_SEEN] = current
    except LabelError as exc:
        label_problem = str(exc)
        st.error(label_problem)
    if gold and st.button("Reset to the gold labels", key="zs_reset_gold"):
        _set_labels(labels_from_gold(gold))
        st.rerun()
with tab_paste:
    pasted = st.text_area("One label per line (or comma-separated); `name: description` keeps a description",
                          key="zs_paste", height=150)
    if st.button("Use this list", key="zs_paste_apply"):
        with user_errors("Reading the list"):
            _set_labels(parse_label_list(pasted))
            st.rerun()
with tab_file:
    upload = st.file_uploader("Load a label set (YAML or JSON)", type=["yaml", "yml", "json"], key="zs_label_upload")
    if upload is not None and st.button("Load this file", key="zs_label_load"):
        with user_errors("Loading the label set"):
            _set_labels(load_labels_text(upload.getvalue().decode("utf-8", errors="replace")))
            st.rerun()
    labs = st.session_state[state.LABELS]
    if labs:
        c1, c2 = st.columns(2)
        c1.download_button("Download label set (YAML)", dump_labels(labs, "yaml"), "labels.yaml", "text/yaml",
                           key="zs_dl_labels_yaml")
        c2.download_button("Download label set (JSON)", dump_labels(labs, "json"), "labels.json", "application/json",
                           key="zs_dl_labels_json")

labels: list[Label] = st.session_state[state.LABELS]
if gold and labels:
    missing, n_rows = gold_coverage(gold, [l.name for l in labels])
    if missing:
        st.warning(f"{n_rows} row(s) have gold labels that are not in the label set (they count as errors): "
                   + ", ".join(f"`{m}`" for m in missing[:20]) + (" …" if len(missing) > 20 else ""))

# ------------------------------------------------------------------------------------------------ method
st.header("2 · Method")
reg = registry()
options = ["embedding"]
if method_available("lm") and reg.by_role("causal_lm"):
    options.append("lm")
if reg.by_role("nli"):
    options.append("nli")
if method_available("trained") and reg.by_role("classifier"):
    options.append("trained")
options.append("ensemble")
if not reg.by_role("nli"):
    st.caption("NLI entailment needs an NLI model (e.g. a local MNLI folder): add one in the sidebar.")


def method_settings(prefix: str, default_method: str = "embedding") -> dict[str, Any]:
    """Widgets for one method configuration; the compare section reuses them with another prefix."""
    c1, c2, c3 = st.columns([1.2, 1.2, 1.6])
    method = c1.selectbox("Method", options, index=options.index(default_method) if default_method in options else 0,
                          format_func=lambda m: METHOD_TITLES[m], key=f"{prefix}_method")
    cfg: dict[str, Any] = {"method": method}
    members = [m for m in options if m not in ("ensemble", "trained")]
    if method == "ensemble":
        cfg["members"] = c2.multiselect("Methods to average", members, default=members[:2],
                                        format_func=lambda m: METHOD_TITLES[m], key=f"{prefix}_members")
        cfg["models"] = {m: reg.default(METHOD_ROLES[m]).name for m in cfg["members"]}
    else:
        specs = reg.by_role(METHOD_ROLES[method])
        cfg["models"] = {method: c2.selectbox("Model", [s.name for s in specs], key=f"{prefix}_model",
                                              help="; ".join(f"{s.name}: {s.description}" for s in specs))}
    uses_template = method in ("embedding", "nli") or (method == "ensemble" and
                                                       {"embedding", "nli"} & set(cfg.get("members", [])))
    if uses_template:
        several = c3.checkbox("Average several generic templates", key=f"{prefix}_several",
                              help="Averages: " + " | ".join(GENERIC_TEMPLATES))
        default = "\n".join(GENERIC_TEMPLATES) if several else DEFAULT_TEMPLATE
        cfg["templates"] = c3.text_area("Hypothesis template(s), one per line, with {label}", default, height=90,
                                        key=f"{prefix}_template_{int(several)}")
    if method == "embedding" or "embedding" in cfg.get("members", []):
        cfg["refine"] = int(c3.checkbox(
            "Refine label vectors on these texts", value=True, key=f"{prefix}_refine",
            help="Moves each label's vector toward the texts it most confidently claims (transductive). "
                 "Raised accuracy on every data set we measured; turn off to score each text independently."))
    if method == "lm" or "lm" in cfg.get("members", []):
        c3.caption("The LM prompt is edited on the Prompt templates page; its default is used here.")
    return cfg


cfg_a = method_settings("zs_a")
c1, c2, c3, c4 = st.columns(4)
calibration = c1.selectbox("Calibration", CALIBRATIONS, index=CALIBRATIONS.index(DEFAULT_CALIBRATION),
                           format_func=lambda c: CALIBRATION_TITLES[c], key="zs_calibration")
mode = c2.radio("Labels per text", ["single-label", "multi-label"], horizontal=True, key="zs_mode")
multi = mode == "multi-label"
threshold = c3.slider("Multi-label threshold", 0.05, 0.95, 0.5, 0.05, key="zs_threshold", disabled=not multi)
floor = c4.slider("'None of these' below (0 = off)", 0.0, 0.9, 0.0, 0.05, key="zs_none_below", disabled=multi,
                  help="Single-label: predict '(none)' when the top probability is below this floor.")


def build_scorer(cfg: dict[str, Any]):
    """Load the models a configuration needs (shared across sessions) and build its scorer."""
    templates = cfg.get("templates")

    def one(method: str):
        spec = reg.get(cfg["models"][method])
        return make_scorer(method, get_model(spec), templates=templates, refine=cfg.get("refine")), spec.name

    if cfg["method"] == "ensemble":
        if not cfg.get("members"):
            raise UserError("Choose at least one method to average in the ensemble.")
        built = [one(m) for m in cfg["members"]]
        return EnsembleScorer([s for s, _ in built], calibration), " + ".join(n for _, n in built)
    return one(cfg["method"])


def run_config(cfg: dict[str, Any], run_labels: list[Label], what: str) -> ZeroShotResult:
    labs = prepare_labels(run_labels, multi)
    scorer, model_name = build_scorer(cfg)
    # The workshop's time limit stops a run between batches.
    bar, cb = progress_bar(f"{what}: scoring {len(texts):,} texts × {len(labs)} labels", RunTimer(what))
    result = run_scorer(scorer, texts, labs, calibration=calibration, multi_label=multi, threshold=threshold,
                        none_below=floor or None, progress=cb, model_name=model_name)
    bar.empty()
    st.session_state[RUNS] = st.session_state.get(RUNS, 0) + 1
    return result


if st.button("Run", type="primary", key="zs_run", disabled=label_problem is not None):
    with user_errors("Scoring"):
        res = run_config(cfg_a, labels, "Run")
        st.session_state[RESULT] = {"result": res, "fingerprint": ds.fingerprint, "texts": texts}
        st.session_state[state.PREDICTIONS] = res.predictions_state(ds.fingerprint)
        record_run("zero-shot", cfg_a["method"], res.model,
                   {**{k: v for k, v in cfg_a.items() if k != "models"}, "calibration": calibration,
                    "multi_label": multi, "threshold": threshold, "none_below": floor, "n_texts": len(texts)},
                   {**(res.evaluate(gold) if gold else {"n": len(texts)}), "seconds": round(res.seconds, 2)},
                   labels=labels)
        st.session_state.pop(CONFUSABLE, None)
        st.session_state.pop(COMPARE, None)

stored = st.session_state.get(RESULT)
if stored is None or stored["fingerprint"] != ds.fingerprint:
    st.info("Set up the label set and method, then press **Run**.")
    st.stop()

# ------------------------------------------------------------------------------------------------ results
res: ZeroShotResult = stored["result"]
st.header("3 · Results")
st.caption(res.describe())
if res.calibration.note:
    st.caption(f"Calibration: {res.calibration.note}")
for note in res.notes:
    st.info(note)

table = res.table(texts)
if gold:
    table.insert(1, "gold", gold)
f1, f2 = st.columns([2, 1])
pick = f1.multiselect("Show predicted labels", sorted(set(res.pred)), key="zs_filter_labels",
                      placeholder="all labels")
low = f2.slider("Only rows with score below", 0.0, 1.0, 1.0, 0.05, key="zs_filter_low",
                help="Low top-label probability = the method is unsure; check these first.")
view = table
if pick:
    view = view[view["predicted"].isin(pick)]
if low < 1.0:
    view = view[view["score"] < low]
st.dataframe(view, width="stretch", height=320)
st.caption(f"{len(view):,} of {len(table):,} rows shown.")

counts = pd.Series(res.pred).value_counts().rename_axis("label").reset_index(name="rows")
st.plotly_chart(px.bar(counts, x="label", y="rows", title="Predicted label distribution"), width="stretch",
                key="zs_dist_chart")

metrics = res.evaluate(gold) if gold else None
if metrics and metrics["n"]:
    st.subheader("Against the gold labels")
    m1, m2, m3 = st.columns(3)
    m1.metric("Accuracy", f"{metrics['accuracy']:.3f}")
    m2.metric("Macro-F1", f"{metrics['macro_f1']:.3f}")
    m3.metric("Rows with gold", f"{metrics['n']:,}")
    if metrics["unknown_gold"]:
        st.warning("Gold labels not in the label set (always counted wrong): "
                   + ", ".join(f"`{u}`" for u in metrics["unknown_gold"]))
    left, right = st.columns([1, 1.3])
    left.dataframe(metrics_table(metrics).round(3), width="stretch", hide_index=True)
    fig = px.imshow(np.asarray(metrics["confusion"]), x=metrics["labels"], y=metrics["labels"], text_auto=True,
                    color_continuous_scale="Blues", labels={"x": "predicted", "y": "gold", "color": "rows"},
                    title="Confusion matrix")
    right.plotly_chart(fig, width="stretch", key="zs_confusion")
    wrong = table[table["gold"] != table["predicted"]] if not res.multi_label else \
        table[[g not in p.split("; ") for g, p in zip(table["gold"], table["predicted"])]]
    with st.expander(f"Misclassified rows ({len(wrong):,})"):
        st.dataframe(wrong[["text", "gold", "predicted", "score", "margin"]], width="stretch")

st.download_button("Download predictions (CSV)", to_csv_safe(table).encode("utf-8"), "predictions.csv",
                   "text/csv", key="zs_dl_pred")

# ------------------------------------------------------------------------------------------------ confusable labels
st.header("4 · Confusable labels")
st.caption("Label pairs whose meanings sit very close in embedding space, or that the confusion matrix mixes most, "
           "with words from the texts nearest each label as candidate phrasings.")
if st.button("Find confusable labels", key="zs_confusable_btn"):
    with user_errors("Finding confusable labels"):
        emb = EmbeddingScorer(get_model(reg.default("embedder")), res.templates or None)
        bar, cb = progress_bar("Embedding texts", RunTimer("Embedding texts"))
        text_vecs = emb.text_embeddings(texts, progress=cb)
        label_vecs = emb.label_embeddings(res.labels)
        bar.empty()
        st.session_state[CONFUSABLE] = {
            "pairs": confusable_pairs(res.label_names, label_similarity(label_vecs), metrics),
            "suggest": suggest_phrasings(texts, text_vecs, label_vecs, res.labels),
        }
conf = st.session_state.get(CONFUSABLE)
if conf:
    if conf["pairs"].empty:
        st.success("No label pair stands out.")
    else:
        st.dataframe(conf["pairs"], width="stretch", hide_index=True)
    sugg = pd.DataFrame([{"label": k, "distinctive words near it": ", ".join(v)} for k, v in conf["suggest"].items()])
    st.dataframe(sugg, width="stretch", hide_index=True)
    st.caption("Add the fitting words as extra phrasings or a description in the label table, then run again.")

# ------------------------------------------------------------------------------------------------ compare
st.header("5 · Compare")
what = st.radio("Compare the run above with", ["another method", "another label set"], horizontal=True,
                key="zs_compare_what")
if what == "another method":
    cfg_b = method_settings("zs_b", default_method="ensemble" if "ensemble" in options else "embedding")
    labels_b_text = None
else:
    cfg_b = cfg_a
    labels_b_text = st.text_area("Label set B (one per line, `name: description` allowed)",
                                 "\n".join(l.name for l in labels), key="zs_compare_labels")
if st.button("Run comparison", key="zs_compare_btn"):
    with user_errors("Comparing"):
        labels_b = parse_label_list(labels_b_text) if labels_b_text is not None else res.labels
        res_b = run_config(cfg_b, labels_b, "Compare")
        st.session_state[COMPARE] = {"result": res_b, "cmp": compare_results(res, res_b, texts, gold)}
cmp_state = st.session_state.get(COMPARE)
if cmp_state:
    res_b, cmp = cmp_state["result"], cmp_state["cmp"]
    st.caption(f"A: {res.describe()}  \nB: {res_b.describe()}")
    cols = st.columns(3)
    cols[0].metric("Agreement", f"{cmp['agreement']:.3f}")
    if "metrics_a" in cmp:
        ma, mb = cmp["metrics_a"], cmp["metrics_b"]
        cols[1].metric("Accuracy A → B", f"{mb['accuracy']:.3f}", f"{mb['accuracy'] - ma['accuracy']:+.3f}")
        cols[2].metric("Macro-F1 A → B", f"{mb['macro_f1']:.3f}", f"{mb['macro_f1'] - ma['macro_f1']:+.3f}")
    st.caption(f"{cmp['n_differ']:,} rows differ.")
    st.dataframe(cmp["differ"], width="stretch", height=280, hide_index=True)
