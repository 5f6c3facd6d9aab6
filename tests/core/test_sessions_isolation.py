"""Many browser sessions on one server: each keeps its own data, labels and runs; models are shared, not copied.

AppTest sessions run in this one process, like sessions of one Streamlit server, so ``st.cache_resource`` and the
backend caches are shared between them exactly as in production.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from llm_backend.data.labels import Label
from llm_backend.store.database import get_store
from tests.conftest import APP_TIMEOUT
from ui import state

ROOT = Path(__file__).resolve().parents[2]
HOME = str(ROOT / "Home.py")
EXPERIMENTS = str(ROOT / "pages" / "5_Experiments.py")


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _visible_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "success", "info", "warning") for e in getattr(at, kind)]
    parts += [str(d.value.to_dict()) for d in at.dataframe]
    return "\n".join(str(p) for p in parts)


def test_home_sessions_keep_their_own_dataset_and_labels():
    a = _run(AppTest.from_file(HOME, default_timeout=APP_TIMEOUT))
    b = _run(AppTest.from_file(HOME, default_timeout=APP_TIMEOUT))
    a.selectbox(key="home_sample").set_value("Support tickets")
    b.selectbox(key="home_sample").set_value("Product reviews")
    _run(a)
    _run(b)
    a.number_input(key="home_n_rows").set_value(30)
    _run(a)
    ds_a, ds_b = a.session_state[state.DATASET], b.session_state[state.DATASET]
    assert (ds_a.name, len(ds_a.df)) == ("Support tickets", 30) and ds_b.name == "Product reviews"
    assert ds_a.fingerprint != ds_b.fingerprint
    a.session_state[state.LABELS] = [Label("billing_secret_a"), Label("shipping")]
    _run(a)
    _run(b)
    assert state.LABELS not in b.session_state
    assert b.session_state[state.DATASET].name == "Product reviews"  # A's rerun did not replace B's data
    text_b = _visible_text(b)
    assert "Support tickets" not in text_b and "billing_secret_a" not in text_b
    assert "Support tickets" in _visible_text(a)


def _model_script():
    import streamlit as st

    from llm_backend.models.embedding_cache import embed_texts
    from ui.models import get_model, registry

    loaded = get_model(registry().default("embedder"))
    st.session_state["model_id"] = id(loaded)
    st.session_state["weights_id"] = id(loaded.model)
    mine = st.session_state.setdefault("my_text", "private text of this session")
    st.session_state["vec"] = embed_texts(loaded, [mine])[0]


def test_sessions_share_one_loaded_model():
    a = AppTest.from_function(_model_script, default_timeout=APP_TIMEOUT)
    b = AppTest.from_function(_model_script, default_timeout=APP_TIMEOUT)
    a.session_state["my_text"] = "session A: refund for order 123"
    b.session_state["my_text"] = "session B: where is my parcel"
    _run(a)
    _run(b)
    assert a.session_state["model_id"] == b.session_state["model_id"]  # one st.cache_resource entry
    assert a.session_state["weights_id"] == b.session_state["weights_id"]
    assert not np.allclose(a.session_state["vec"], b.session_state["vec"])  # each got its own text's vector
    from ui.models import loaded_models, registry

    # one process-wide copy of the default embedder (other tests in this process may have loaded other models)
    assert [s.key for s in loaded_models()].count(registry().default("embedder").key) == 1


def test_runs_stay_in_each_sessions_project(monkeypatch):
    """In workshop mode every session saves into a private project; the Experiments page shows only its own."""
    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")

    def record():
        import streamlit as st

        from ui.persistence import record_run

        st.session_state["rid"] = record_run("zero-shot", st.session_state["method"], "m", {}, {"accuracy": 0.5})

    a = AppTest.from_function(record, default_timeout=APP_TIMEOUT)
    b = AppTest.from_function(record, default_timeout=APP_TIMEOUT)
    a.session_state["method"] = "method-of-session-a"
    b.session_state["method"] = "method-of-session-b"
    _run(a)
    _run(b)
    assert a.session_state["zss_project"] != b.session_state["zss_project"]
    store = get_store()
    assert store.get_run(a.session_state["rid"]).method == "method-of-session-a"
    page_b = AppTest.from_file(EXPERIMENTS, default_timeout=APP_TIMEOUT)
    page_b.session_state["zss_project"] = b.session_state["zss_project"]
    _run(page_b)
    text = _visible_text(page_b)
    assert "method-of-session-b" in text and "method-of-session-a" not in text


def test_concurrent_sessions_encode_through_one_queue(embedder, ag_news):
    """Threads standing in for sessions share one BatchingEncoder and each gets exactly its own vectors."""
    from llm_backend.models.batching import get_batching_encoder
    from llm_backend.models.embedding_cache import encode_uncached

    from dataclasses import replace

    # The torch path: int8 ONNX quantises activations per batch, so its rows move slightly with their batch-mates
    # and "exactly its own vectors" is only checkable on a batch-independent path.
    embedder = replace(embedder, extra={})
    texts = ag_news["text"].iloc[200:224].tolist()
    expected = encode_uncached(embedder, texts)
    enc = get_batching_encoder(embedder)
    out: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(6)

    def session(k: int) -> None:
        barrier.wait()
        out[k] = enc.encode(texts[k * 4 : (k + 1) * 4])

    threads = [threading.Thread(target=session, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(6):
        np.testing.assert_allclose(out[k], expected[k * 4 : (k + 1) * 4], atol=1e-5)


def test_fine_tuning_never_changes_the_shared_embedder(embedder, ag_news):
    trainer = pytest.importorskip("llm_backend.training.trainer")
    from llm_backend.models.embedding_cache import encode_uncached

    probe = ["Stocks rally as oil prices fall"]
    before_vec = encode_uncached(embedder, probe)
    before_weights = {n: p.detach().clone() for n, p in embedder.model.named_parameters()}
    rows = ag_news.groupby("label").head(2)
    cfg = trainer.TrainConfig(method="setfit", epochs=1, batch_size=8, num_pairs=8, max_length=32)
    result = trainer.train(rows["text"].tolist(), rows["label"].tolist(), cfg, embedder)
    assert result.model is not None
    for name, param in embedder.model.named_parameters():
        assert np.array_equal(param.detach().numpy(), before_weights[name].numpy()), name
    np.testing.assert_allclose(encode_uncached(embedder, probe), before_vec, atol=1e-6)


def test_workshop_user_shares_a_copy_that_others_can_open(monkeypatch):
    """Issue 18 item 6: a private workshop project can be shared; another participant opens the copy."""
    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")
    store = get_store()
    pid = store.ensure_project("session-aaaa1111")
    run_id = store.record_run(pid, "zero-shot", "method-shared-by-a", "m", {}, {"accuracy": 0.7})
    page_a = AppTest.from_file(EXPERIMENTS, default_timeout=APP_TIMEOUT)
    page_a.session_state["zss_project"] = "session-aaaa1111"
    _run(page_a)
    page_a.text_input(key="exp_share_label").set_value("team 3")
    _run(page_a)
    page_a.button(key="exp_share").click()
    _run(page_a)
    assert any("shared · team 3" in s.value for s in page_a.success)
    page_b = AppTest.from_file(EXPERIMENTS, default_timeout=APP_TIMEOUT)
    page_b.session_state["zss_project"] = "session-bbbb2222"
    _run(page_b)
    assert "method-shared-by-a" not in _visible_text(page_b)  # private until opened
    page_b.selectbox(key="exp_shared_open").set_value("shared · team 3")
    _run(page_b)
    page_b.button(key="exp_shared_go").click()
    _run(page_b)
    assert page_b.session_state["zss_project"] == "shared · team 3"
    assert "method-shared-by-a" in _visible_text(page_b)
    assert store.get_run(run_id).method == "method-shared-by-a"  # the original stays in A's project
