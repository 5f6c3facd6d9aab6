"""Model registry and loading: defaults load offline, wrong folders fail with a message, caching shares objects."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from llm_backend.core.device import pick_device
from llm_backend.core.errors import ModelError
from llm_backend.models.embedding_cache import EmbeddingCache, embed_texts
from llm_backend.models.loaded import inference_encoder
from llm_backend.models.loaded import ModelCache
from llm_backend.models.loading import get_model, load_model
from llm_backend.models.registry import (
    DEFAULT_MODELS,
    ModelRegistry,
    is_available_offline,
    resolve_location,
    spec_from_folder,
    spec_from_hub,
)


def test_defaults_are_available_offline(registry):
    assert {s.role for s in DEFAULT_MODELS} >= {"embedder", "causal_lm", "masked_lm"}
    for spec in DEFAULT_MODELS:
        assert is_available_offline(spec), spec.name


def test_force_cpu(monkeypatch):
    monkeypatch.setenv("ZSS_FORCE_CPU", "1")
    dev = pick_device()
    assert dev.kind == "cpu" and str(dev.dtype) == "torch.float32"


def test_embedder_gives_normalised_semantic_vectors(embedder):
    v = embed_texts(embedder, ["My card has not arrived yet", "Where is my new card?", "The stock market fell today"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_embedding_cache_never_reencodes(embedder, monkeypatch):
    cache = EmbeddingCache()
    calls: list[int] = []
    encoder = inference_encoder(embedder)  # the ONNX copy on CPU, else the torch model
    original = encoder.encode

    def counting_encode(texts, **kw):
        calls.append(len(texts))
        return original(texts, **kw)

    monkeypatch.setattr(encoder, "encode", counting_encode)
    a = embed_texts(embedder, ["alpha", "beta", "alpha"], cache=cache)
    assert calls == [2]  # duplicates encoded once
    b = embed_texts(embedder, ["beta", "gamma", "alpha"], cache=cache)
    assert calls == [2, 1]  # only the new text
    assert np.allclose(a[1], b[0]) and np.allclose(a[0], a[2])
    assert cache.hits >= 2


def test_model_cache_loads_once_under_concurrency(registry):
    cache = ModelCache(load_model)
    spec = registry.default("embedder")
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(spec))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in results}) == 1 and len(cache.loaded()) == 1


def test_concurrent_embedding_calls_are_safe(embedder):
    texts = [[f"request {i} text {j}" for j in range(20)] for i in range(4)]
    out: dict[int, np.ndarray] = {}

    def work(i):
        out[i] = embed_texts(embedder, texts[i], cache=EmbeddingCache())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    solo = embed_texts(embedder, texts[2], cache=EmbeddingCache())
    assert np.allclose(out[2], solo, atol=1e-5)


def test_causal_lm_loads_from_dequantised_cache(causal_lm):
    assert type(causal_lm.model).__name__.endswith("ForCausalLM")
    assert causal_lm.tokenizer.chat_template
    assert causal_lm.tokenizer.pad_token is not None


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="not a model folder"):
        spec_from_folder(tmp_path)
    with pytest.raises(ModelError, match="No such folder"):
        spec_from_folder(tmp_path / "missing")
    with pytest.raises(ModelError, match="is a file"):
        spec_from_folder(tmp_path / "notes.txt")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ModelError, match="cannot be read"):
        spec_from_folder(tmp_path)


def test_folder_with_config_but_no_weights_fails_on_load(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"], "model_type": "bert"}))
    spec = spec_from_folder(tmp_path)
    assert spec.role == "masked_lm"
    with pytest.raises(ModelError, match="Could not load"):
        load_model(spec)


def test_local_folder_roles_are_inferred(registry):
    st_folder = resolve_location(registry.default("embedder"))
    assert spec_from_folder(st_folder).role == "embedder"
    mlm = resolve_location(registry.default("masked_lm"))
    assert spec_from_folder(mlm).role == "masked_lm"


def test_hub_id_refused_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="runs offline"):
        spec_from_hub("someone/definitely-not-cached-model", "nli")
    with pytest.raises(ModelError, match="not a hub id"):
        spec_from_hub("a/b/c", "nli")


def test_registry_resolve_and_unknown(registry):
    assert registry.resolve(None, "embedder").name == "all-MiniLM-L6-v2"
    assert registry.resolve("SmolLM2-135M-Instruct", "causal_lm").role == "causal_lm"
    with pytest.raises(ModelError, match="Unknown model"):
        ModelRegistry().get("nope")
    with pytest.raises(ModelError):
        ModelRegistry().resolve("no-such-org/no-such-model", "embedder")


def test_trained_models_folder_is_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSS_MODELS_DIR", str(tmp_path))
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "zss_model.json").write_text(json.dumps({"role": "classifier", "description": "test"}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "zss_model.json").write_text("{")
    names = [s.name for s in ModelRegistry().by_role("classifier")]
    assert names == ["my-model"]


def test_shared_cache_returns_same_object(registry):
    spec = registry.default("embedder")
    assert get_model(spec) is get_model(spec)
