"""Fine-tune runs: train a small classifier on a few labelled rows and compare it with zero-shot on the same split.

Thin page: widgets → llm_backend.data.sampler / trainer / training_runs → drawings. Training runs in a background thread
(llm_backend.training.runs); a fragment polls it once a second while it runs, so the rest of the page stays usable
and the Stop button ends the run cleanly after the current step.
"""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from llm_backend.core.device import pick_device
from llm_backend.core.errors import TrainingError
from llm_backend.data.labels import Label, make_labels
from llm_backend.data.sampler import normalise_labels, select_per_class
from llm_backend.training.loop import TRAINING_METHODS, TrainConfig
from llm_backend.training.runs import MANAGER, TrainingRun, train_and_evaluate_job
from llm_backend.training.trained_models import TrainedScorer, save_model
from ui import state
from ui.errors import user_errors
from ui.models import get_model, registry
from ui.persistence import record_run, record_trained_model
from ui.sidebar import render_sidebar

OWNER = "ft_owner"  # a per-session id: the run manager allows one run per session
RUN = "ft_run"  # the TrainingRun in flight or last finished
HISTORY = "ft_history"  # list of dicts: earlier runs of this session (summary + result for saving)
MAX_KEPT_MODELS = 3  # finished runs whose weights stay in memory for saving (a tuned MiniLM is about 90 MB)

st.set_page_config(page_title="Fine-tune runs · Zero-Shot Studio", page_icon="🎯", layout="wide")
render_sidebar()
st.title("🎯 Fine-tune runs")
st.caption("Train a small classifier on a few labelled rows, see how it compares with zero-shot on the same test "
           "rows, and save it as a model the other pages and the CLI can use.")
ds = state.require_dataset()
texts = ds.texts()
if OWNER not in st.session_state:
    st.session_state[OWNER] = uuid.uuid4().hex
st.session_state.setdefault(HISTORY, [])

# ------------------------------------------------------------------------------------------------ training rows
st.subheader("1 · Training rows")
candidates = [str(c) for c in ds.df.columns if str(c) != ds.text_column]
if not candidates:
    st.warning("This dataset has only a text column. Add a label column (gold labels, or labels given on the "
               "Embedding map page) to train a model.")
    st.stop()
default_col = "map_label" if "map_label" in candidates else (ds.gold_column if ds.gold_column in candidates else candidates[0])
c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
label_col = c1.selectbox("Label column to learn from", candidates, index=candidates.index(default_col), key="ft_label_col",
                         help="The gold column, or a column of labels given on the Embedding map page. Empty cells "
                              "are unlabelled rows.")
mode = c2.radio("Rows", ["k per class (seeded)", "every labelled row"], key="ft_mode", horizontal=True)
k = int(c3.number_input("k per class", 1, 1000, 8, key="ft_k", disabled=mode != "k per class (seeded)"))
seed = int(c4.number_input("Seed", 0, 10_000, 0, key="ft_seed"))

labels_all, label_notes = normalise_labels(ds.df[label_col].tolist())
for note in label_notes:
    st.info(note)
if not any(labels_all):
    st.warning(f"Column `{label_col}` has no labels. Choose another column.")
    st.stop()
if mode == "k per class (seeded)":
    with user_errors("Choosing training rows"):
        train_idx, sel_notes = select_per_class(labels_all, k, seed)
        for note in sel_notes:
            st.caption(note)
else:
    train_idx = [i for i, l in enumerate(labels_all) if l]
chosen = set(train_idx)

# Test split: the rows not used for training (by default), or a held-out split named by a column value.
gold_col = ds.gold_column if ds.gold_column else label_col
t1, t2, t3 = st.columns([2, 2, 2])
split_kind = t1.radio("Test rows", ["rows not used for training", "a held-out split"], key="ft_split_kind")
split_col = split_val = None
if split_kind == "a held-out split":
    split_col = t2.selectbox("Split column", [c for c in ds.df.columns if str(c) != ds.text_column], key="ft_split_col")
    values = sorted(map(str, ds.df[split_col].dropna().unique()))[:200]
    split_val = t3.selectbox("Test value", values, key="ft_split_val")
gold_all, _ = normalise_labels(ds.df[gold_col].tolist())
if split_col is not None:
    in_split = ds.df[split_col].astype(str).to_numpy() == str(split_val)
    test_idx = [i for i in range(len(texts)) if in_split[i] and gold_all[i] and i not in chosen]
else:
    test_idx = [i for i in range(len(texts)) if gold_all[i] and i not in chosen]
max_test = int(st.number_input("Score at most this many test rows (seeded sample, keeps runs quick)", 50, 200_000,
                               min(2000, max(50, len(test_idx))), step=50, key="ft_max_test"))
if len(test_idx) > max_test:
    test_idx = sorted(np.random.default_rng(seed).choice(test_idx, max_test, replace=False).tolist())
classes = sorted({labels_all[i] for i in train_idx})
st.write(f"**{len(train_idx):,}** training rows in **{len(classes)}** classes from `{label_col}` · "
         f"**{len(test_idx):,}** test rows with gold labels in `{gold_col}`.")
with st.expander("Training rows per class"):
    counts = pd.Series([labels_all[i] for i in train_idx]).value_counts().rename_axis("class").reset_index(name="rows")
    st.dataframe(counts, width="stretch", hide_index=True)

# ------------------------------------------------------------------------------------------------ method
st.subheader("2 · Method")
dev = pick_device()
m1, m2 = st.columns([2, 3])
method = m1.selectbox("Method", list(TRAINING_METHODS), format_func=lambda m: f"{m} — {TRAINING_METHODS[m]}", key="ft_method")
m2.caption(f"Runs on **{dev.name}** ({dev.kind}). Head on embeddings takes seconds; SetFit and fine-tunes take "
           "minutes on a CPU, seconds on a GPU.")
fine_tune = method in ("finetune", "finetune-head", "lora", "distill")
defaults = TrainConfig(method=method).resolved()
with st.expander("Settings", expanded=False):
    a1, a2, a3, a4 = st.columns(4)
    epochs = int(a1.number_input("Epochs", 1, 200, defaults.epochs, key=f"ft_epochs_{method}"))
    batch = int(a2.number_input("Batch size", 1, 256, 16, key="ft_batch"))
    lr = float(a3.number_input("Learning rate", 1e-6, 1.0, defaults.learning_rate, format="%.6f", key=f"ft_lr_{method}"))
    wd = float(a4.number_input("Weight decay", 0.0, 1.0, 0.01, key="ft_wd"))
    b1, b2, b3, b4 = st.columns(4)
    val_fraction = float(b1.slider("Validation share (early stopping)", 0.0, 0.5, 0.2 if fine_tune else 0.0, 0.05,
                                   key=f"ft_val_{method}"))
    patience = int(b2.number_input("Patience (epochs)", 1, 50, 3, key="ft_patience"))
    num_pairs = int(b3.number_input("SetFit pairs per epoch (0 = 40 per row, max 2000)", 0, 100_000, 0, key="ft_pairs"))
    lora_r = int(b4.number_input("LoRA rank", 1, 64, 8, key="ft_lora_r"))
    anchor_w = float(st.number_input(
        "Label anchor weight (head and SetFit; 0 = off)", 0.0, 50.0, defaults.label_anchor_weight, 0.5,
        key="ft_anchor_w", disabled=method not in ("head", "setfit"),
        help="Each class's label sentence (with the description from the label set) joins the training rows with "
             "this weight: the label's meaning is extra evidence when there are only a few examples per class."))
teacher_choice = None
if method == "distill":
    d1, d2, d3 = st.columns(3)
    trained_specs = [s for s in registry().by_role("classifier") if s.source == "trained"]
    teacher_choice = d1.selectbox("Teacher", ["zero-shot (embedding scorer, current label set)"]
                                  + [s.name for s in trained_specs], key="ft_teacher")
    student = d2.radio("Student", ["small", "head"], key="ft_student", horizontal=True,
                       format_func=lambda s: "3-layer MiniLM" if s == "small" else "head on embeddings")
    n_unlabelled = int(d3.number_input("Unlabelled rows for the teacher", 0, 50_000, 1000, step=100, key="ft_unl"))
else:
    student, n_unlabelled = "small", 0


def _label_set() -> list[Label]:
    """The current label set (descriptions and phrasings help zero-shot), restricted to the trained classes."""
    current = {l.name: l for l in state.get(state.LABELS, []) or []}
    return make_labels([current.get(c, Label(c)) for c in classes])


def _start() -> TrainingRun:
    embedder = get_model(registry().default("embedder"))
    from llm_backend.scorers.embedding import EmbeddingScorer

    baseline = EmbeddingScorer(embedder)
    teacher = None
    unlabelled: list[str] = []
    if method == "distill":
        if teacher_choice and not teacher_choice.startswith("zero-shot"):
            teacher = TrainedScorer(get_model(registry().get(teacher_choice)))
        else:
            teacher = _ZeroShotTeacher(baseline, _label_set())
        held = chosen | set(test_idx)
        pool = [i for i in range(len(texts)) if i not in held]
        rng = np.random.default_rng(seed)
        unlabelled = [texts[i] for i in rng.permutation(pool)[:n_unlabelled]]
    cfg = TrainConfig(method=method, epochs=epochs, batch_size=batch, learning_rate=lr, weight_decay=wd,
                      val_fraction=val_fraction, patience=patience, seed=seed, num_pairs=num_pairs or None,
                      lora_r=lora_r, lora_alpha=2 * lora_r, student=student, label_anchor_weight=anchor_w)
    job = train_and_evaluate_job(
        [texts[i] for i in train_idx], [labels_all[i] for i in train_idx], cfg, embedder,
        test_texts=[texts[i] for i in test_idx], test_gold=[gold_all[i] for i in test_idx], teacher=teacher,
        unlabelled=unlabelled, baseline=baseline, baseline_labels=_label_set())
    run = MANAGER.start(st.session_state[OWNER], method, job)
    run.settings = {"label column": label_col, "k": k if mode.startswith("k") else "all", "seed": seed,
                    "train rows": len(train_idx), "test rows": len(test_idx), "classes": len(classes)}
    run.config = {**cfg.as_dict(), "base model": embedder.spec.name,
                  "teacher": teacher_choice if method == "distill" else None, "unlabelled rows": len(unlabelled)}
    return run


class _ZeroShotTeacher:
    """The embedding scorer with the user's label descriptions, keyed by class name (distillation teacher)."""

    kind = "similarity"
    name = "zero-shot embedding"

    def __init__(self, scorer: Any, labels: list[Label]) -> None:
        self.scorer, self.by_name = scorer, {l.name: l for l in labels}

    def score(self, texts: Any, labels: Any, progress: Any = None) -> np.ndarray:
        return self.scorer.score(texts, [self.by_name.get(l.name, l) for l in labels], progress)


run: TrainingRun | None = st.session_state.get(RUN)
running = run is not None and run.running
s1, s2, _ = st.columns([1, 1, 4])
if s1.button("▶ Start run", type="primary", disabled=running, key="ft_start"):
    with user_errors("Starting the run"):
        if len(test_idx) == 0:
            st.warning("There are no test rows with a gold label: the run will train but cannot be scored.")
        if len(classes) < 2:
            raise TrainingError("Training needs at least two classes in the chosen rows.")
        st.session_state[RUN] = run = _start()
        running = True
if s2.button("■ Stop", disabled=not running, key="ft_stop"):
    run.stop()  # type: ignore[union-attr]
    st.toast("Stopping after the current step…")


# ------------------------------------------------------------------------------------------------ progress
def _curves(history: list[dict[str, Any]]) -> go.Figure:
    hist = pd.DataFrame(history)
    fig = go.Figure()
    if "loss" in hist and hist["loss"].notna().any():
        fig.add_trace(go.Scatter(x=hist["epoch"], y=hist["loss"], name="training loss", mode="lines+markers"))
    if "val_macro_f1" in hist:
        fig.add_trace(go.Scatter(x=hist["epoch"], y=hist["val_macro_f1"], name="validation macro-F1",
                                 mode="lines+markers", yaxis="y2"))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="epoch",
                      yaxis=dict(title="loss"), yaxis2=dict(title="macro-F1", overlaying="y", side="right", range=[0, 1]),
                      legend=dict(orientation="h"))
    return fig


def _record(run: TrainingRun) -> None:
    """Add a finished run to this session's history once (and drop the weights of old runs to bound memory)."""
    history = st.session_state[HISTORY]
    if any(h["run_id"] == run.run_id for h in history) or run.result is None:
        return
    res = run.result
    ev = res.evaluation
    entry = {"run_id": run.run_id, "method": run.method, **run.settings,
             "accuracy": (ev.get("test") or {}).get("accuracy"), "macro_f1": (ev.get("test") or {}).get("macro_f1"),
             "zero-shot macro_f1": (ev.get("baseline") or {}).get("macro_f1"), "train s": round(res.wall_s, 1),
             "stopped": res.stopped, "result": res}
    # The experiment store keeps the run for later sessions (test metrics beside the zero-shot baseline's).
    config = run.config
    metrics = {**(ev.get("test") or {}), "seconds": round(res.wall_s, 2), "stopped": res.stopped}
    if ev.get("baseline"):
        metrics["zero_shot_macro_f1"] = ev["baseline"].get("macro_f1")
    if ev.get("teacher"):
        metrics["teacher_macro_f1"] = ev["teacher"].get("macro_f1")
    entry["store_run_id"] = record_run("fine-tune", run.method, config.get("base model", ""),
                                       {**run.settings, **config}, metrics,
                                       labels=sorted(set(ev.get("test", {}).get("labels", []))) or None)
    history.append(entry)
    for old in history[:-MAX_KEPT_MODELS]:
        old["result"] = None


@st.fragment(run_every=1.0 if running else None)
def progress_panel() -> None:
    run: TrainingRun | None = st.session_state.get(RUN)
    if run is None:
        st.caption("No run yet. Choose the rows and a method, then start a run.")
        return
    snap = run.snapshot()
    eta = f" · about {snap.eta_s:.0f} s left" if snap.eta_s is not None else ""
    st.progress(snap.fraction, text=f"{snap.method}: {snap.status} ({snap.done}/{snap.total}) · "
                                    f"{snap.elapsed_s:.0f} s{eta} · {snap.state}")
    if snap.history:
        st.plotly_chart(_curves(snap.history), width="stretch", key=f"ft_curve_{snap.run_id}_{len(snap.history)}")
    if snap.state == "failed":
        st.error(snap.error)
    if not run.running and snap.state != "failed":
        _record(run)
        if st.session_state.get("ft_drawn") != run.run_id:
            st.session_state["ft_drawn"] = run.run_id
            st.rerun()  # redraw the whole page once, so the results below appear


st.subheader("3 · Progress")
progress_panel()

# ------------------------------------------------------------------------------------------------ results
history = st.session_state[HISTORY]
if history:
    st.subheader("4 · Results")
    latest = history[-1]
    res = latest.get("result")
    if res is not None:
        ev = res.evaluation
        for note in res.notes:
            st.caption(note)
        if "test" in ev:
            test = ev["test"]
            base = ev.get("baseline") or {}
            r1, r2, r3, r4 = st.columns(4)
            r1.metric("Accuracy", f"{test['accuracy']:.3f}",
                      f"{test['accuracy'] - base['accuracy']:+.3f} vs zero-shot" if base else None)
            r2.metric("Macro-F1", f"{test['macro_f1']:.3f}",
                      f"{test['macro_f1'] - base['macro_f1']:+.3f} vs zero-shot" if base else None)
            r3.metric("Zero-shot macro-F1 (same rows)", f"{base['macro_f1']:.3f}" if base else "—")
            r4.metric("Training time", f"{res.wall_s:.1f} s")
            if "teacher" in ev:
                sp = ev.get("speed", {})
                st.info(f"Teacher macro-F1 {ev['teacher']['macro_f1']:.3f} → student {test['macro_f1']:.3f}; "
                        f"student is {sp.get('speedup', float('nan')):.1f}× the teacher's speed "
                        f"({sp.get('student_texts_per_s', 0):.0f} vs {sp.get('teacher_texts_per_s', 0):.0f} texts/s).")
            per = pd.DataFrame(test["per_class"]).T.rename_axis("class").reset_index()
            v1, v2 = st.columns([2, 3])
            v1.dataframe(per, width="stretch", hide_index=True)
            fig = px.imshow(np.array(test["confusion"]), x=test["labels"], y=test["labels"], text_auto=True,
                            labels=dict(x="predicted", y="gold", color="rows"), color_continuous_scale="Blues")
            fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10))
            v2.plotly_chart(fig, width="stretch", key=f"ft_cm_{latest['run_id']}")

        st.markdown("**Save this model**")
        n1, n2 = st.columns([3, 1])
        default_name = f"{ds.name.split('.')[0]}-{latest['method']}-{latest['run_id']}".replace(" ", "_")
        name = n1.text_input("Model name", default_name, key=f"ft_name_{latest['run_id']}")
        if n2.button("💾 Save model", key=f"ft_save_{latest['run_id']}"):
            with user_errors("Saving the model"):
                folder = save_model(res.model, name, res.meta(metrics=ev.get("test", {})))
                record_trained_model(folder.name, str(folder), base_model=res.base_model,
                                     info={"method": latest["method"], "macro_f1": latest.get("macro_f1")},
                                     run_id=latest.get("store_run_id"))
                st.success(f"Saved as **{folder.name}**. It is now listed as a trained classifier and can be chosen as "
                           "a scorer on the label-testing page and with the CLI (`--model " + folder.name + "`).")
    st.markdown("**Runs in this session**")
    table = pd.DataFrame([{k: v for k, v in h.items() if k != "result"} for h in history])
    st.dataframe(table, width="stretch", hide_index=True)
