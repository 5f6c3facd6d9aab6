"""Fine-tune runs: train a small classifier on a few labelled rows and compare it with zero-shot on the same split.

Widgets → llm_backend.training.split (rows), training_runs (background job, baseline, teacher) → drawings in
ui/fine_tune_view.py. Training runs in a background thread polled by a fragment, so the page stays usable and Stop
ends the run cleanly after the current step (and by itself when the browser session goes away).
"""
from __future__ import annotations

import uuid

import pandas as pd
import streamlit as st

from llm_backend.data.dataset import Dataset
from llm_backend.data.files import read_table
from llm_backend.core.device import pick_device
from llm_backend.core.errors import TrainingError
from llm_backend.data.labels import Label, make_labels
from llm_backend.data.language import recommended_embedder
from llm_backend.scorers import estimate as est
from llm_backend.training.loop import TRAINING_METHODS
from llm_backend.training.cross_validation import cross_validate_job
from llm_backend.training.split import make_split
from llm_backend.training.runs import MANAGER, teacher_scorer, train_and_evaluate_job, zero_shot_scorer
from ui import state
from ui.background import session_alive
from ui.charts import training_curves
from ui.errors import user_errors
from ui.fine_tune_view import record_finished, results, settings_form
from ui.language import dataset_language
from ui.models import get_model, registry
from ui.sidebar import render_sidebar
from ui.text import plain

OWNER = "ft_owner"  # a per-session id: the run manager allows one run per session
RUN = "ft_run"  # the TrainingRun in flight or last finished
HISTORY = "ft_history"  # list of dicts: earlier runs of this session (summary + result for saving)
SEEN = "ft_seen"  # run id -> the texts that run trained on (saved with the model as fingerprints)
CV = "ft_cv"  # the last cross-validation metrics
MAX_KEPT_MODELS = 3  # finished runs whose weights stay in memory for saving (a tuned MiniLM is about 90 MB)

st.set_page_config(page_title="Fine-tune runs · Zero-Shot Studio", page_icon="🎯", layout="wide")
render_sidebar()
st.title("🎯 Fine-tune runs")
st.caption("Train a small classifier on a few labelled rows, see how it compares with zero-shot on the same test "
           "rows, and save it as a model the other pages and the CLI can use.")
ds = state.require_dataset()
texts = ds.texts()
st.session_state.setdefault(OWNER, uuid.uuid4().hex)
st.session_state.setdefault(HISTORY, [])
st.session_state.setdefault(SEEN, {})

st.subheader("1 · Training rows")
candidates = [str(c) for c in ds.df.columns if str(c) != ds.text_column]
if not candidates:
    st.warning("This dataset has only a text column. Add a label column (gold labels, or labels given on the "
               "Embedding map page) to train a model.")
    st.stop()
default_col = "map_label" if "map_label" in candidates else (
    ds.gold_column if ds.gold_column in candidates else candidates[0])
c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
label_col = c1.selectbox("Label column to learn from", candidates, index=candidates.index(default_col),
                         key="ft_label_col", help="The gold column, or a column of labels given on the Embedding map "
                                                  "page. Empty cells are unlabelled rows.")
mode = c2.radio("Rows", ["k per class (seeded)", "every labelled row"], key="ft_mode", horizontal=True)
k = int(c3.number_input("k per class", 1, 1000, 8, key="ft_k", disabled=mode != "k per class (seeded)"))
seed = int(c4.number_input("Seed", 0, 10_000, 0, key="ft_seed"))
gold_col = ds.gold_column if ds.gold_column else label_col
t1, t2, t3 = st.columns([2, 2, 2])
split_kind = t1.radio("Test rows", ["rows not used for training", "a held-out split", "a separate evaluation file"],
                      key="ft_split_kind")
test_mask, eval_ds = None, None
if split_kind == "a held-out split":
    split_col = t2.selectbox("Split column", candidates, key="ft_split_col")
    split_val = t3.selectbox("Test value", sorted(map(str, ds.df[split_col].dropna().unique()))[:200],
                             key="ft_split_val")
    test_mask = (ds.df[split_col].astype(str).to_numpy() == str(split_val)).tolist()
elif split_kind == "a separate evaluation file":
    up = t2.file_uploader(f"File with columns {plain(ds.text_column)} and {plain(gold_col)}", key="ft_eval_file")
    test_mask = [False] * len(texts)
    if up is not None:
        with user_errors("Reading the evaluation file"):
            eval_ds = Dataset(read_table(up.getvalue(), up.name).df, up.name, ds.text_column, gold_col)
            eval_ds.texts(), eval_ds.gold()
max_test = int(st.number_input("Score at most this many test rows (seeded sample, keeps runs quick)", 50, 200_000,
                               2000, step=50, key="ft_max_test"))

st.subheader("2 · Method")
dev = pick_device()
m1, m2 = st.columns([2, 3])
method = m1.selectbox("Method", list(TRAINING_METHODS), format_func=lambda m: f"{m} — {TRAINING_METHODS[m]}", key="ft_method")
m2.caption(f"Runs on **{plain(dev.name)}** ({dev.kind}). Head on embeddings takes seconds; SetFit and fine-tunes "
           "take minutes on a CPU, seconds on a GPU.")
cfg = settings_form(method, seed)
teacher_choice, n_pool = None, 0
if method == "distill":
    d1, d2, d3 = st.columns(3)
    trained = [s.name for s in registry().by_role("classifier") if s.source == "trained"]
    teacher_choice = d1.selectbox("Teacher", ["zero-shot", *trained], key="ft_teacher",
                                  format_func=lambda t: "zero-shot (as on the label page, current label set)"
                                  if t == "zero-shot" else t)
    cfg.student = d2.radio("Student", ["small", "head"], key="ft_student", horizontal=True,
                           format_func=lambda s: "3-layer MiniLM" if s == "small" else "head on embeddings")
    n_pool = int(d3.number_input("Unlabelled rows for the teacher", 0, 50_000, 1000, step=100, key="ft_unl"))

with user_errors("Choosing training rows"):
    split = make_split(ds.df[label_col].tolist(), per_class=k if mode.startswith("k") else None, seed=seed,
                       gold_values=ds.df[gold_col].tolist(), test_mask=test_mask, max_test=max_test, n_pool=n_pool)
st.session_state["ft_split"] = split  # what the next run uses (tests compare it with `train`)
for note in split.notes:
    st.caption(plain(note, 1000))
if not split.train_idx:
    st.warning(f"Column {plain(label_col)} has no labels. Choose another column.")
    st.stop()
test_texts = eval_ds.texts() if eval_ds is not None else split.test_texts(texts)
test_gold = eval_ds.gold() if eval_ds is not None else split.test_gold()
st.write(f"**{len(split.train_idx):,}** training rows in **{len(split.classes)}** classes from {plain(label_col)} · "
         f"**{len(test_texts):,}** test rows with gold labels in {plain(gold_col)}"
         + (f" (from {plain(eval_ds.name)})" if eval_ds is not None else "") + ".")
coverage = split.coverage_warning() if eval_ds is None else None
if coverage:
    st.warning(coverage)
with st.expander("Training rows per class"):
    st.dataframe(pd.Series(split.train_labels()).value_counts().rename_axis("class").reset_index(name="rows"),
                 width="stretch", hide_index=True)


def _label_set() -> list[Label]:
    """The current label set (descriptions and phrasings help zero-shot), restricted to the trained classes."""
    current = {l.name: l for l in state.get(state.LABELS, []) or []}
    return make_labels([current.get(c, Label(c)) for c in split.classes])


def _start(cross_validate: bool = False):
    if len(split.classes) < 2:
        raise TrainingError("Training needs at least two classes in the chosen rows.")
    # Non-English data trains on the multilingual embedder (the English MiniLM is near chance on it), as `train` does.
    embedder = get_model(registry().get(recommended_embedder(dataset_language(ds.df, ds.text_column))))
    labs = _label_set()
    if cross_validate:
        labelled = [i for i, l in enumerate(split.labels) if l]
        job = cross_validate_job([texts[i] for i in labelled], [split.labels[i] for i in labelled], cfg, embedder,
                                 label_set=labs)
    else:
        teacher = teacher_scorer(teacher_choice, embedder, labs, get_model, registry()) if method == "distill" else None
        job = train_and_evaluate_job(
            split.train_texts(texts), split.train_labels(), cfg, embedder, test_texts=test_texts, test_gold=test_gold,
            teacher=teacher, unlabelled=split.pool_texts(texts), baseline=zero_shot_scorer(embedder, labs),
            baseline_labels=labs)
    run = MANAGER.start(st.session_state[OWNER], "cross-validation" if cross_validate else method, job,
                        alive=session_alive())
    run.settings = {"dataset": ds.name, "label column": label_col, "k": k if mode.startswith("k") else "all",
                    "seed": seed, "train rows": len(split.train_idx), "test rows": len(test_texts),
                    "classes": len(split.classes), "cost_key": cost_key}
    run.config = {**cfg.as_dict(), "base model": embedder.spec.name, "teacher": teacher_choice,
                  "unlabelled rows": len(split.pool_idx)}
    st.session_state[SEEN][run.run_id] = split.train_texts(texts) + split.pool_texts(texts)
    return run


run = st.session_state.get(RUN)
running = run is not None and run.running
cost_key = f"train|{method}|{cfg.student}|{cfg.num_pairs}"
guess = est.estimate(cost_key, len(split.train_idx) + len(split.pool_idx), cfg.epochs or 1)
st.caption(f"⏱ Estimated {est.describe_seconds(guess)} of training (measured on this server by an earlier run)."
           if guess is not None else "⏱ No run of this method measured on this server yet: the progress bar shows "
           "the time left once it starts, and Stop ends it.")
s1, s2, s3, _ = st.columns([1, 1, 2, 2])
if s1.button("▶ Start run", type="primary", disabled=running, key="ft_start"):
    with user_errors("Starting the run"):
        if not test_texts:
            st.warning("There are no test rows with a gold label: the run will train but cannot be scored.")
        st.session_state[RUN] = run = _start()
        running = True
if s2.button("■ Stop", disabled=not running, key="ft_stop"):
    run.stop()
    st.toast("Stopping after the current step…")
if s3.button("Cross-validate (5 folds)", disabled=running, key="ft_cv", help="Every labelled row is predicted once "
             "by a model that did not train on it: measures every class with at least 5 labelled rows."):
    with user_errors("Starting cross-validation"):
        st.session_state[RUN] = run = _start(cross_validate=True)
        running = True


@st.fragment(run_every=1.0 if running else None)
def progress_panel() -> None:
    run = st.session_state.get(RUN)
    if run is None:
        st.caption("No run yet. Choose the rows and a method, then start a run.")
        return
    snap = run.snapshot()
    eta = f" · about {snap.eta_s:.0f} s left" if snap.eta_s is not None else ""
    st.progress(snap.fraction, text=f"{snap.method}: {snap.status} ({snap.done}/{snap.total}) · "
                                    f"{snap.elapsed_s:.0f} s{eta} · {snap.state}")
    # A finished run's own history is complete (the head's loss is filled in after its single fitting step).
    history = getattr(run.result, "history", None) if not run.running and run.result is not None else None
    history = history or snap.history
    if history:
        st.plotly_chart(training_curves(history), width="stretch",
                        key=f"ft_curve_{snap.run_id}_{len(history)}_{run.running}")
    if snap.state == "failed":
        st.error(plain(snap.error, 1000))
    if not run.running and snap.state != "failed":
        if isinstance(run.result, dict):  # cross-validation metrics
            st.session_state[CV] = run.result
        else:
            record_finished(run, st.session_state[HISTORY], MAX_KEPT_MODELS)
            if run.result is not None and not run.result.stopped:
                est.record(run.settings.get("cost_key", ""), run.settings["train rows"] + run.config["unlabelled rows"],
                           run.result.config.epochs or 1, run.result.wall_s)
        if st.session_state.get("ft_drawn") != run.run_id:
            st.session_state["ft_drawn"] = run.run_id
            st.rerun()  # redraw the whole page once, so the results below appear


st.subheader("3 · Progress")
progress_panel()
if st.session_state.get(CV):
    cv = st.session_state[CV]
    st.info(f"Cross-validation ({cv['folds']} folds, {cv['n']:,} rows): accuracy {cv['accuracy']:.3f}, macro-F1 "
            f"{cv['macro_f1']:.3f}." + (f" {len(cv['skipped_classes'])} classes with fewer than {cv['folds']} rows "
                                        "were left out." if cv["skipped_classes"] else ""))

history = st.session_state[HISTORY]
if history:
    st.subheader("4 · Results")
    results(history[-1], ds.name, st.session_state[SEEN].get(history[-1]["run_id"], []))
    st.markdown("**Runs in this session**")
    st.dataframe(pd.DataFrame([{k: v for k, v in h.items() if k != "result"} for h in history]), width="stretch",
                 hide_index=True)
