"""Fine-tune page drawings: the settings form, a finished run's results beside zero-shot, saving the model.

Display and widgets only; training, splitting and evaluation live in llm_backend (training/split.py,
training_runs.py).
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from llm_backend.data.dataset import text_fingerprints
from llm_backend.training.trained_models import save_model
from llm_backend.training.loop import TrainConfig
from llm_backend.training.split import DEFAULT_POOL_ROWS

from .charts import confusion_view
from .errors import user_errors
from .export_classifier import export_classifier
from .persistence import record_run, record_trained_model
from .text import plain

FINE_TUNES = ("finetune", "finetune-head", "lora", "distill")


def settings_form(method: str, seed: int) -> TrainConfig:
    """The 'Settings' expander → a TrainConfig (student is filled in by the caller for distillation)."""
    fine_tune = method in FINE_TUNES
    defaults = TrainConfig(method=method).resolved()
    with st.expander("Settings", expanded=False):
        a1, a2, a3, a4 = st.columns(4)
        epochs = int(a1.number_input("Epochs", 1, 200, defaults.epochs, key=f"ft_epochs_{method}"))
        batch = int(a2.number_input("Batch size", 1, 256, 16, key="ft_batch"))
        lr = float(a3.number_input("Learning rate", 1e-6, 1.0, defaults.learning_rate, format="%.6f",
                                   key=f"ft_lr_{method}"))
        wd = float(a4.number_input("Weight decay", 0.0, 1.0, 0.01, key="ft_wd"))
        b1, b2, b3, b4 = st.columns(4)
        val_fraction = float(b1.slider("Validation share (early stopping)", 0.0, 0.5, 0.2 if fine_tune else 0.0,
                                       0.05, key=f"ft_val_{method}"))
        patience = int(b2.number_input("Patience (epochs)", 1, 50, 3, key="ft_patience"))
        num_pairs = int(b3.number_input("SetFit pairs per epoch (0 = 40 per row, max 2000)", 0, 100_000, 0,
                                        key="ft_pairs"))
        lora_r = int(b4.number_input("LoRA rank", 1, 64, 8, key="ft_lora_r"))
        anchor_w = float(st.number_input(
            "Label anchor weight (head and SetFit; 0 = off)", 0.0, 50.0, defaults.label_anchor_weight, 0.5,
            key="ft_anchor_w", disabled=method not in ("head", "setfit"),
            help="Each class's label sentence (with the description from the label set) joins the training rows "
                 "with this weight: the label's meaning is extra evidence when there are only a few examples."))
        c1, c2 = st.columns(2)
        pseudo = c1.checkbox(
            "Pseudo-label the rows that are neither training nor test rows (head and SetFit)", False,
            key="ft_pseudo", disabled=method not in ("head", "setfit"),
            help=f"The few-shot model labels up to {DEFAULT_POOL_ROWS:,} other rows of the file (their gold labels "
                 "are never read) and is refitted on the gold rows plus its confident answers. It helped on news topics and was "
                 "mixed on intents (docs/fine-tune.md), so it is off unless you turn it on.")
        base_view = c2.checkbox(
            "SetFit: the head also reads the untouched embedder", defaults.base_view, key="ft_base_view",
            disabled=method != "setfit",
            help="The tuned embedder forgets some of what the general one knew; a head on both views side by side "
                 "beat the tuned view alone on the dev slices (docs/fine-tune.md). Costs a second encoding per text.")
    return TrainConfig(method=method, epochs=epochs, batch_size=batch, learning_rate=lr, weight_decay=wd,
                       val_fraction=val_fraction, patience=patience, seed=seed, num_pairs=num_pairs or None,
                       lora_r=lora_r, lora_alpha=2 * lora_r, label_anchor_weight=anchor_w,
                       pseudo_labels=pseudo and method in ("head", "setfit"), base_view=base_view)


def distill_form(cfg: TrainConfig, trained: list[str]) -> tuple[str, int]:
    """Distillation's teacher, student and pool size (sets ``cfg.student``); returns (teacher, pool rows)."""
    d1, d2, d3 = st.columns(3)
    teacher = d1.selectbox("Teacher", ["zero-shot", *trained], key="ft_teacher",
                           format_func=lambda t: "zero-shot (as on the label page, current label set)"
                           if t == "zero-shot" else t)
    cfg.student = d2.radio("Student", ["small", "head"], key="ft_student", horizontal=True,
                           format_func=lambda s: "3-layer MiniLM" if s == "small" else "head on embeddings")
    n_pool = int(d3.number_input("Unlabelled rows for the teacher", 0, 50_000, DEFAULT_POOL_ROWS, step=100,
                                 key="ft_unl"))
    return teacher, n_pool


def record_finished(run: Any, history: list[dict[str, Any]], keep_models: int) -> None:
    """Add a finished run to this session's history once and save it to Experiments."""
    if any(h["run_id"] == run.run_id for h in history) or run.result is None:
        return
    res = run.result
    ev = res.evaluation
    entry = {"run_id": run.run_id, "method": run.method, **run.settings,
             "accuracy": (ev.get("test") or {}).get("accuracy"), "macro_f1": (ev.get("test") or {}).get("macro_f1"),
             "zero-shot macro_f1": (ev.get("baseline") or {}).get("macro_f1"), "train s": round(res.wall_s, 1),
             "stopped": res.stopped, "result": res}
    metrics = {**(ev.get("test") or {}), "seconds": round(res.wall_s, 2), "stopped": res.stopped}
    if ev.get("baseline"):
        metrics["zero_shot_macro_f1"] = ev["baseline"].get("macro_f1")
    if ev.get("teacher"):
        metrics["teacher_macro_f1"] = ev["teacher"].get("macro_f1")
    entry["store_run_id"] = record_run("fine-tune", run.method, run.config.get("base model", ""),
                                       {**run.settings, **run.config}, metrics,
                                       labels=sorted(set(ev.get("test", {}).get("labels", []))) or None,
                                       labels_name=f"{run.settings.get('dataset', 'data')} classes")
    history.append(entry)
    for old in history[:-keep_models]:
        old["result"] = None


def results(latest: dict[str, Any], dataset_name: str, seen_texts: list[str]) -> None:
    res = latest.get("result")
    if res is None:
        return
    ev = res.evaluation
    for note in res.notes:
        st.caption(plain(note, 1000))
    if "test" in ev:
        test, base = ev["test"], ev.get("baseline") or {}
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
        st.dataframe(per, width="stretch", hide_index=True, height=240)
        confusion_view(test, f"ft_cm_{latest['run_id']}")
    st.markdown("**Save this model**")
    n1, n2 = st.columns([3, 1])
    default_name = f"{dataset_name.split('.')[0]}-{latest['method']}-{latest['run_id']}".replace(" ", "_")
    name = n1.text_input("Model name", default_name, key=f"ft_name_{latest['run_id']}")
    if n2.button("💾 Save model", key=f"ft_save_{latest['run_id']}"):
        with user_errors("Saving the model"):
            meta = res.meta(metrics=ev.get("test", {}))
            # Remember what the model saw, so scoring this data later leaves those rows out of its metrics.
            meta["train_fingerprints"] = text_fingerprints(seen_texts)
            folder = save_model(res.model, name, meta)
            record_trained_model(folder.name, str(folder), base_model=res.base_model,
                                 info={"method": latest["method"], "macro_f1": latest.get("macro_f1")},
                                 run_id=latest.get("store_run_id"))
            st.success(f"Saved as **{plain(folder.name)}**. It is now listed as a trained classifier and can be "
                       f"chosen as a scorer on the label-testing page and with the CLI (--model {plain(folder.name)}).")
    export_classifier(trained_model=name, key=f"ft_export_{latest['run_id']}")
