"""Fine-tune runs: train a small classifier on a few labelled rows and compare it with zero-shot on the same split.

Widgets → llm_backend.training.split (rows, column defaults), training.runs (background job, baseline, teacher) →
drawings in ui/ (fine_tune_rows: the rows form; fine_tune_view: settings, results, saving; fine_tune_progress). Training runs in a background thread polled by a fragment, so the page stays usable and Stop
ends the run cleanly after the current step (and by itself when the browser session goes away).
"""
from __future__ import annotations

import uuid

import pandas as pd
import streamlit as st

from llm_backend.core.device import pick_device
from llm_backend.core.errors import TrainingError
from llm_backend.data.labels import labels_for_classes
from llm_backend.data.language import recommended_embedder
from llm_backend.scorers import estimate as est
from llm_backend.training.loop import TRAINING_METHODS
from llm_backend.training.cross_validation import cross_validate_job
from llm_backend.training.split import DEFAULT_POOL_ROWS, make_split
from llm_backend.training.runs import MANAGER, teacher_scorer, train_and_evaluate_job, zero_shot_scorer
from ui import state
from ui.background import session_alive
from ui.errors import user_errors
from ui.explain_panel import explain_trained_panel
from ui.fine_tune_progress import progress_panel
from ui.fine_tune_rows import training_rows_form
from ui.fine_tune_view import distill_form, results, settings_form
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
rows = training_rows_form(ds)
label_col, seed, gold_col, eval_ds = rows.label_col, rows.seed, rows.gold_col, rows.eval_ds

st.subheader("2 · Method")
dev = pick_device()
m1, m2 = st.columns([2, 3])
method = m1.selectbox("Method", list(TRAINING_METHODS), format_func=lambda m: f"{m} — {TRAINING_METHODS[m]}", key="ft_method")
m2.caption(f"Runs on **{plain(dev.name)}** ({dev.kind}). Head on embeddings takes seconds; SetFit and fine-tunes "
           "take minutes on a CPU, seconds on a GPU.")
cfg = settings_form(method, seed)
teacher_choice, n_pool = None, (DEFAULT_POOL_ROWS if cfg.pseudo_labels else 0)
if method == "distill":
    trained = [s.name for s in registry().by_role("classifier") if s.source == "trained"]
    teacher_choice, n_pool = distill_form(cfg, trained)

with user_errors("Choosing training rows"):
    split = make_split(ds.df[label_col].tolist(), per_class=rows.per_class, seed=seed,
                       gold_values=ds.df[gold_col].tolist(), test_mask=rows.test_mask, max_test=rows.max_test,
                       n_pool=n_pool)
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
    st.dataframe(pd.DataFrame(split.train_counts().items(), columns=["class", "rows"]), width="stretch",
                 hide_index=True)


def _start(cross_validate: bool = False):
    if len(split.classes) < 2:
        raise TrainingError("Training needs at least two classes in the chosen rows.")
    # Non-English data trains on the multilingual embedder (the English MiniLM is near chance on it), as `train` does.
    embedder = get_model(registry().get(recommended_embedder(dataset_language(ds.df, ds.text_column))))
    labs = labels_for_classes(state.get(state.LABELS), split.classes)
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
    run.settings = {"dataset": ds.name, "label column": label_col, "k": rows.per_class or "all",
                    "seed": seed, "train rows": len(split.train_idx), "test rows": len(test_texts),
                    "classes": len(split.classes), "cost_key": cost_key}
    run.config = {**cfg.as_dict(), "base model": embedder.spec.name, "teacher": teacher_choice,
                  "unlabelled rows": len(split.pool_idx)}
    st.session_state[SEEN][run.run_id] = split.train_texts(texts) + split.pool_texts(texts)
    return run


run = st.session_state.get(RUN)
running = run is not None and run.running
cost_key = est.training_cost_key(method, cfg.student, cfg.num_pairs)
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


st.subheader("3 · Progress")
progress_panel(RUN, CV, HISTORY, MAX_KEPT_MODELS)

history = st.session_state[HISTORY]
if history:
    st.subheader("4 · Results")
    results(history[-1], ds.name, st.session_state[SEEN].get(history[-1]["run_id"], []))
    if history[-1].get("result") is not None:
        explain_trained_panel(texts, history[-1]["result"], key=f"ft_xp_{history[-1]['run_id']}")
    st.markdown("**Runs in this session**")
    st.dataframe(pd.DataFrame([{k: v for k, v in h.items() if k != "result"} for h in history]), width="stretch",
                 hide_index=True)
