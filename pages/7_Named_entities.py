"""Named entities: load token-tagged data, fine-tune a tagger with live progress, evaluate it by entity type, tag text.

Thin page: widgets → llm_backend.ner (reading, the split, training, tagging, scoring, report) → drawings (ui.ner_data,
ui.ner_view). Training runs in the background
through the same run manager as the fine-tune page (llm_backend.training.runs); a fragment polls it once a second.
Every token a user supplied is shown as escaped text (st.html of html.escape'd spans, or dataframes), never as
markdown.
"""
from __future__ import annotations

import uuid

import streamlit as st

from llm_backend.ner.conll import tokenize_text
from llm_backend.ner.report import run_metrics, saved_metrics
from llm_backend.ner.split import default_test_size, default_train_size, split_sentences
from llm_backend.ner.tagging import evaluate_model, tag_sentences
from llm_backend.ner.train import METHODS, NerTrainConfig, train_and_evaluate_job
from llm_backend.models.registry import resolve_location
from llm_backend.training.trained_models import save_model
from llm_backend.training.runs import MANAGER, TrainingRun
from ui.errors import user_errors
from ui.models import get_model, registry
from ui.ner_data import tagged_data_loader
from ui.ner_view import evaluation_view, highlighted, training_progress
from ui.persistence import record_run, record_trained_model
from ui.sidebar import render_sidebar

OWNER = "ner_owner"
DATA = "ner_data"  # TaggedData with gold tags
RUN = "ner_run"
LAST = "ner_last"  # {"run_id", "result", "store_run_id"}: the latest finished run (its weights, for saving/tagging)
EVAL = "ner_eval"  # metrics of the latest "evaluate a saved model"

st.set_page_config(page_title="Named entities · Zero-Shot Studio", page_icon="🔖", layout="wide")
render_sidebar()
st.title("🔖 Named entities")
st.caption("Fine-tune a token classifier on BIO-tagged sentences (CoNLL, or CSV/JSONL with tokens and tags), score it "
           "per entity type with exact spans, look at the sentences it gets wrong, and tag new text.")
if OWNER not in st.session_state:
    st.session_state[OWNER] = uuid.uuid4().hex


# ------------------------------------------------------------------------------------------------ 1 · data
st.subheader("1 · Tagged sentences")
data = tagged_data_loader(DATA)

# ------------------------------------------------------------------------------------------------ 2 · train
st.subheader("2 · Fine-tune a tagger")
run: TrainingRun | None = st.session_state.get(RUN)
running = run is not None and run.running
if data is None:
    st.caption("Load tagged sentences above to train or evaluate a tagger.")
else:
    n = len(data.sentences)
    c1, c2, c3, c4 = st.columns(4)
    n_test = int(c2.number_input("Held-out test sentences", 0, max(0, n - 1), default_test_size(n), key="ner_n_test",
                                 help="Taken from the end of a seeded shuffle; never trained on."))
    n_train = int(c1.number_input("Training sentences", 1, max(1, n - n_test), default_train_size(n, n_test),
                                  key="ner_n_train"))
    method = c3.selectbox("Method", list(METHODS), format_func=lambda m: f"{m} — {METHODS[m]}", key="ner_method")
    seed = int(c4.number_input("Seed", 0, 10_000, 0, key="ner_seed"))
    with st.expander("Settings"):
        a1, a2, a3 = st.columns(3)
        epochs = int(a1.number_input("Epochs (0 = about 600 steps, 3 to 30 epochs)", 0, 100, 0, key="ner_epochs"))
        batch = int(a2.number_input("Batch size", 1, 128, 16, key="ner_batch"))
        use_case = a3.checkbox("Case-shape feature", True, key="ner_case",
                               help="The bundled encoders lowercase their input; this adds a learned embedding of "
                                    "each word's capitalisation (see docs/ner.md for what it is worth).")
    s1, s2, _ = st.columns([1, 1, 4])
    if s1.button("▶ Start run", type="primary", disabled=running, key="ner_start"):
        with user_errors("Starting the run"):
            train_sents, test = split_sentences(data.sentences, n_train, n_test, seed)
            spec = registry().default("embedder")
            cfg = NerTrainConfig(method=method, epochs=epochs or None, batch_size=batch, use_case=use_case, seed=seed)
            job = train_and_evaluate_job(train_sents, cfg, resolve_location(spec), base_model=spec.name, test=test)
            run = MANAGER.start(st.session_state[OWNER], f"ner-{method}", job)
            run.settings = {"train sentences": n_train, "test sentences": n_test, "seed": seed}
            run.config = {**cfg.as_dict(), "base model": spec.name, "train sentences": n_train,
                          "test sentences": n_test, "data": data.source}
            st.session_state[RUN] = run
            running = True
    if s2.button("■ Stop", disabled=not running, key="ner_stop"):
        run.stop()  # type: ignore[union-attr]
        st.toast("Stopping after the current step…")


def _finish(run: TrainingRun) -> None:
    """Keep a finished run's model for saving/tagging and record it in the experiment store (once)."""
    last = st.session_state.get(LAST)
    if run.result is None or (last and last["run_id"] == run.run_id):
        return
    res = run.result
    metrics = run_metrics(res.evaluation.get("test") or {}, res.wall_s, res.stopped)
    store_id = record_run("ner", run.method, run.config.get("base model", ""), {**run.settings, **run.config},
                          metrics, labels=res.extra.get("entity_types") or res.classes, labels_name="NER entity types")
    st.session_state[LAST] = {"run_id": run.run_id, "result": res, "store_run_id": store_id}


training_progress(RUN, _finish)

# ------------------------------------------------------------------------------------------------ 3 · evaluation
last = st.session_state.get(LAST)
if last is not None:
    res = last["result"]
    st.subheader("3 · Results of the latest run")
    for note in res.notes:
        st.caption(note)
    st.caption(f"Trained on {res.n_train:,} sentences in {res.wall_s:.0f} s"
               + (" (stopped early)" if res.stopped else "") + ".")
    if res.evaluation.get("test"):
        evaluation_view(res.evaluation["test"], last["run_id"])
    n1, n2 = st.columns([3, 1])
    name = n1.text_input("Model name", f"ner-{res.method}-{last['run_id']}", key=f"ner_name_{last['run_id']}")
    if n2.button("💾 Save model", key=f"ner_save_{last['run_id']}"):
        with user_errors("Saving the model"):
            test = res.evaluation.get("test") or {}
            summary = saved_metrics(test)
            folder = save_model(res.model, name, res.meta(description=f"NER {res.method} on {res.n_train} sentences",
                                                          metrics=summary))
            record_trained_model(folder.name, str(folder), base_model=res.base_model,
                                 info={"role": "ner", "method": res.method, "micro_f1": test.get("micro_f1")},
                                 run_id=last.get("store_run_id"))
            st.success(f"Saved as {folder.name}: it is listed as a named-entity tagger and usable with "
                       f"`python -m llm_backend ner-tag --model {folder.name}`.")

saved = [s for s in registry().by_role("ner")]
if data is not None and saved:
    st.subheader("Evaluate a saved tagger on the loaded sentences")
    e1, e2 = st.columns([3, 1])
    chosen = e1.selectbox("Saved tagger", [s.name for s in saved], key="ner_eval_model")
    if e2.button("Evaluate", key="ner_eval_btn"):
        with user_errors("Evaluating"):
            model = get_model(next(s for s in saved if s.name == chosen)).model
            st.session_state[EVAL] = evaluate_model(model, data)
    if st.session_state.get(EVAL):
        evaluation_view(st.session_state[EVAL], "saved")

# ------------------------------------------------------------------------------------------------ 4 · tag text
st.subheader("4 · Tag text")
choices = (["latest run (not saved)"] if last is not None else []) + [s.name for s in saved]
if not choices:
    st.caption("Train a tagger above (or save one) to tag text.")
else:
    t1, t2 = st.columns([1, 3])
    which = t1.selectbox("Tagger", choices, key="ner_tag_model")
    text = t2.text_area("Text (one sentence per line)", height=120, key="ner_tag_text", max_chars=200_000)
    if st.button("Tag", key="ner_tag_btn"):
        with user_errors("Tagging"):
            model = (last["result"].model if which.startswith("latest run")
                     else get_model(next(s for s in saved if s.name == which)).model)
            result = tag_sentences(model, tokenize_text(text))
            for note in result.notes:
                st.info(note)
            kinds = model.entity_types()
            st.html("".join(highlighted(t, g, kinds) for t, g in zip(result.tokens, result.tags)))
            st.dataframe(result.entities(), width="stretch", hide_index=True)
            st.download_button("Download CoNLL", result.to_conll(), "tagged.conll", key="ner_dl")
