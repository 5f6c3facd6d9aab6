"""Named entities: load token-tagged data, fine-tune a tagger with live progress, evaluate it by entity type, tag text.

Thin page: widgets → llm_backend.ner (reading, training, tagging, scoring) → drawings. Training runs in the background
through the same run manager as the fine-tune page (llm_backend.training.runs); a fragment polls it once a second.
Every token a user supplied is shown as escaped text (st.html of html.escape'd spans, or dataframes), never as
markdown.
"""
from __future__ import annotations

import html
import uuid
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from llm_backend.core.config import get_settings
from llm_backend.core.errors import DataError, TrainingError
from llm_backend.ner.conll import TaggedData, parse_conll, read_tagged_bytes, spans, tokenize_text
from llm_backend.ner.tagging import evaluate_model, tag_sentences
from llm_backend.ner.train import METHODS, NerTrainConfig, train_and_evaluate_job
from llm_backend.models.registry import resolve_location
from llm_backend.training.trained_models import save_model
from llm_backend.training.runs import MANAGER, TrainingRun
from ui.errors import user_errors
from ui.models import get_model, registry
from ui.persistence import record_run, record_trained_model
from ui.sidebar import render_sidebar

OWNER = "ner_owner"
DATA = "ner_data"  # TaggedData with gold tags
RUN = "ner_run"
LAST = "ner_last"  # {"run_id", "result", "store_run_id"}: the latest finished run (its weights, for saving/tagging)
EVAL = "ner_eval"  # metrics of the latest "evaluate a saved model"
MAX_PASTE_CHARS = 2_000_000
MAX_SHOWN_ERRORS = 30
COLOURS = ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad"]

st.set_page_config(page_title="Named entities · Zero-Shot Studio", page_icon="🔖", layout="wide")
render_sidebar()
st.title("🔖 Named entities")
st.caption("Fine-tune a token classifier on BIO-tagged sentences (CoNLL, or CSV/JSONL with tokens and tags), score it "
           "per entity type with exact spans, look at the sentences it gets wrong, and tag new text.")
if OWNER not in st.session_state:
    st.session_state[OWNER] = uuid.uuid4().hex


def _colour(kind: str, kinds: Sequence[str]) -> str:
    return COLOURS[sorted(kinds).index(kind) % len(COLOURS)] if kind in kinds else "#e0e0e0"


def highlighted(tokens: Sequence[str], tags: Sequence[str], kinds: Sequence[str],
                wrong: set[tuple[str, int, int]] | None = None) -> str:
    """HTML of one sentence with its entities marked; every token is escaped. ``wrong`` spans get a red border."""
    parts: list[str] = []
    starts = {s: (k, s, e) for k, s, e in spans(tags)}
    i = 0
    while i < len(tokens):
        if i in starts:
            kind, s, e = starts[i]
            border = "2px solid #d62828" if wrong and (kind, s, e) in wrong else "1px solid #999"
            text = html.escape(" ".join(tokens[s:e]))
            parts.append(f'<span style="background:{_colour(kind, kinds)};border:{border};border-radius:4px;'
                         f'padding:0 3px">{text} <b style="font-size:0.75em">{html.escape(kind)}</b></span>')
            i = e
        else:
            parts.append(html.escape(tokens[i]))
            i += 1
    return '<div style="line-height:1.9">' + " ".join(parts) + "</div>"


# ------------------------------------------------------------------------------------------------ 1 · data
st.subheader("1 · Tagged sentences")
source = st.radio("Source", ["Upload a file", "Paste CoNLL text"], horizontal=True, key="ner_source")
if source == "Upload a file":
    upload = st.file_uploader("CoNLL (token TAG per line, blank line between sentences), or CSV/JSONL with 'tokens' "
                              "and 'tags' columns", type=["conll", "txt", "iob", "bio", "tsv", "csv", "jsonl", "json"],
                              key="ner_upload")
    if upload is not None and st.button("Load file", key="ner_load_file"):
        with user_errors("Reading the file"):
            limit = get_settings().max_upload_mb
            if upload.size > limit * 1024 * 1024:
                raise DataError(f"The file is larger than the {limit} MB upload limit.")
            st.session_state[DATA] = read_tagged_bytes(upload.getvalue(), upload.name)
else:
    pasted = st.text_area("CoNLL text", height=180, key="ner_paste", max_chars=MAX_PASTE_CHARS,
                          placeholder="EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER")
    if st.button("Load text", key="ner_load_paste"):
        with user_errors("Reading the text"):
            st.session_state[DATA] = parse_conll(pasted, "the pasted text")

data: TaggedData | None = st.session_state.get(DATA)
if data is not None:
    for note in data.notes:
        st.info(note)
    n_tokens = sum(len(s) for s in data.sentences)
    counts = pd.Series([k for s in data.sentences for k, _, _ in spans(s.tags)]).value_counts()
    st.write(f"**{len(data.sentences):,}** sentences, **{n_tokens:,}** tokens, entity types: "
             + ", ".join(f"`{k}` ({v:,})" for k, v in counts.items()))  # types match [A-Za-z][A-Za-z0-9_.]*
    with st.expander("First sentences"):
        kinds = data.entity_types()
        st.html("".join(highlighted(s.tokens, s.tags, kinds) for s in data.sentences[:8]))

# ------------------------------------------------------------------------------------------------ 2 · train
st.subheader("2 · Fine-tune a tagger")
run: TrainingRun | None = st.session_state.get(RUN)
running = run is not None and run.running
if data is None:
    st.caption("Load tagged sentences above to train or evaluate a tagger.")
else:
    n = len(data.sentences)
    c1, c2, c3, c4 = st.columns(4)
    n_test = int(c2.number_input("Held-out test sentences", 0, max(0, n - 1), min(500, n // 5), key="ner_n_test",
                                 help="Taken from the end of a seeded shuffle; never trained on."))
    n_train = int(c1.number_input("Training sentences", 1, max(1, n - n_test), min(1000, max(1, n - n_test)),
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
            order = np.random.default_rng(seed).permutation(n)
            train_sents = [data.sentences[i] for i in sorted(order[:n_train])]
            test = TaggedData([data.sentences[i] for i in sorted(order[n - n_test:])] if n_test else [], [],
                              "held-out sentences")
            if not any(t != "O" for s in train_sents for t in s.tags):
                raise TrainingError("The chosen training sentences have no entities. Use more sentences.")
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
    test = res.evaluation.get("test") or {}
    metrics = {k: test[k] for k in ("micro_f1", "precision", "recall", "macro_f1", "n_sentences") if k in test}
    metrics.update({"per_type": test.get("per_type", {}), "seconds": round(res.wall_s, 2), "stopped": res.stopped})
    store_id = record_run("ner", run.method, run.config.get("base model", ""), {**run.settings, **run.config},
                          metrics, labels=res.extra.get("entity_types") or res.classes, labels_name="NER entity types")
    st.session_state[LAST] = {"run_id": run.run_id, "result": res, "store_run_id": store_id}


@st.fragment(run_every=1.0 if running else None)
def progress_panel() -> None:
    run: TrainingRun | None = st.session_state.get(RUN)
    if run is None:
        return
    snap = run.snapshot()
    eta = f" · about {snap.eta_s:.0f} s left" if snap.eta_s is not None else ""
    st.progress(snap.fraction, text=f"{snap.method}: {snap.status} ({snap.done}/{snap.total}) · "
                                    f"{snap.elapsed_s:.0f} s{eta} · {snap.state}")
    if snap.history:
        hist = pd.DataFrame(snap.history)
        fig = go.Figure(go.Scatter(x=hist["epoch"], y=hist["loss"], mode="lines+markers", name="training loss"))
        fig.update_layout(height=240, margin=dict(l=10, r=10, t=20, b=10), xaxis_title="epoch", yaxis_title="loss")
        st.plotly_chart(fig, width="stretch", key=f"ner_curve_{snap.run_id}_{len(snap.history)}")
    if snap.state == "failed":
        st.error(snap.error)
    if not run.running and snap.state != "failed":
        _finish(run)
        if st.session_state.get("ner_drawn") != run.run_id:
            st.session_state["ner_drawn"] = run.run_id
            st.rerun()


progress_panel()


# ------------------------------------------------------------------------------------------------ 3 · evaluation
def show_evaluation(metrics: dict[str, Any], key: str) -> None:
    for note in metrics.get("notes", []):
        st.info(note)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Entity micro-F1", f"{metrics['micro_f1']:.3f}")
    m2.metric("Precision", f"{metrics['precision']:.3f}")
    m3.metric("Recall", f"{metrics['recall']:.3f}")
    m4.metric("Sentences with an error", f"{metrics.get('n_error_sentences', 0):,} / {metrics['n_sentences']:,}")
    per = pd.DataFrame(metrics["per_type"]).T.rename_axis("type").reset_index()
    conf = metrics["confusion"]
    boundary = conf.get("boundary_errors", {})
    if len(per):
        per["boundary errors"] = per["type"].map(lambda t: boundary.get(t, 0))
    v1, v2 = st.columns([2, 3])
    v1.dataframe(per, width="stretch", hide_index=True)
    v1.caption("Exact span and type (seqeval strict IOB2). A boundary error is a right-type entity with the wrong "
               "span: it counts once as missed and once as spurious.")
    fig = px.imshow(np.array(conf["matrix"]), x=conf["labels"], y=conf["labels"], text_auto=True,
                    labels=dict(x="predicted type", y="gold type", color="entities"), color_continuous_scale="Blues")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10))
    v2.plotly_chart(fig, width="stretch", key=f"ner_conf_{key}")
    v2.caption("Gold entities matched to the predicted entity they overlap most; (none) = missed or spurious.")
    errors = metrics.get("errors") or []
    if errors:
        with st.expander(f"Sentences with errors (first {min(len(errors), MAX_SHOWN_ERRORS)})", expanded=False):
            kinds = sorted({k for e in errors for k, _, _ in spans(e["gold"]) + spans(e["pred"])})
            blocks = []
            for e in errors[:MAX_SHOWN_ERRORS]:
                blocks.append(f"<p><b>#{e['index'] + 1}</b> gold:</p>"
                              + highlighted(e["tokens"], e["gold"], kinds, set(map(tuple, e["missed"])))
                              + "<p>predicted:</p>"
                              + highlighted(e["tokens"], e["pred"], kinds, set(map(tuple, e["spurious"])))
                              + "<hr>")
            st.html("".join(blocks))
            st.caption("Red borders: gold entities the model missed (top) and predicted entities that are wrong "
                       "(bottom).")


last = st.session_state.get(LAST)
if last is not None:
    res = last["result"]
    st.subheader("3 · Results of the latest run")
    for note in res.notes:
        st.caption(note)
    st.caption(f"Trained on {res.n_train:,} sentences in {res.wall_s:.0f} s"
               + (" (stopped early)" if res.stopped else "") + ".")
    if res.evaluation.get("test"):
        show_evaluation(res.evaluation["test"], last["run_id"])
    n1, n2 = st.columns([3, 1])
    name = n1.text_input("Model name", f"ner-{res.method}-{last['run_id']}", key=f"ner_name_{last['run_id']}")
    if n2.button("💾 Save model", key=f"ner_save_{last['run_id']}"):
        with user_errors("Saving the model"):
            test = res.evaluation.get("test") or {}
            summary = {k: test[k] for k in ("micro_f1", "precision", "recall", "per_type") if k in test}
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
        show_evaluation(st.session_state[EVAL], "saved")

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
