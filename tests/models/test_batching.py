"""The batching queue returns exactly what a direct encode returns, merges concurrent requests, and fails cleanly."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from llm_backend.models.batching import (
    BatchingEncoder,
    encode_batched,
    get_batching_encoder,
)
from llm_backend.models.embedding_cache import encode_uncached


@pytest.fixture(scope="module")
def embedder(embedder):
    """The shared embedder on its torch path: exact comparisons need a path whose rows do not depend on the batch
    (int8 ONNX quantises activations per batch, so its rows move by ~1e-3 with their batch-mates)."""
    from dataclasses import replace

    return replace(embedder, extra={})


@pytest.fixture(scope="module")
def texts(ag_news) -> list[str]:
    return ag_news["text"].iloc[:48].tolist()


@pytest.fixture(scope="module")
def direct(embedder, texts) -> np.ndarray:
    return encode_uncached(embedder, texts)


def test_same_vectors_as_direct_encode(embedder, texts, direct):
    seen: list[tuple[int, int]] = []
    with BatchingEncoder(embedder, max_batch=16) as enc:
        out = enc.encode(texts, progress=lambda d, t: seen.append((d, t)))
        assert enc.encode([]).shape == (0, direct.shape[1])
    assert out.shape == direct.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, direct, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert seen == [(16, 48), (32, 48), (48, 48)]  # one report per chunk, so a progress bar moves


def test_concurrent_callers_get_their_own_rows_in_fewer_batches(embedder, texts, direct):
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(12)
    with BatchingEncoder(embedder, max_batch=64, max_wait_ms=20) as enc:
        def caller(k: int) -> None:
            start.wait()
            results[k] = enc.encode(texts[k * 4 : (k + 1) * 4])

        threads = [threading.Thread(target=caller, args=(k,)) for k in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = enc.stats
    for k in range(12):
        np.testing.assert_allclose(results[k], direct[k * 4 : (k + 1) * 4], atol=1e-5)
    assert stats.requests == 12 and stats.texts == 48
    assert stats.batches < 12 and stats.requests_per_batch > 1  # requests were merged
    assert stats.max_batch_seen <= 64 + 4


def test_duplicates_are_encoded_once(embedder):
    with BatchingEncoder(embedder) as enc:
        out = enc.encode(["same text", "other", "same text"])
        assert enc.stats.encoded == 2
    np.testing.assert_allclose(out[0], out[2])


def test_errors_reach_the_caller_and_the_worker_survives(embedder):
    class Boom:
        def __init__(self, real):
            self.real, self.fail = real, True

        def get_embedding_dimension(self):
            return self.real.get_embedding_dimension()

        def encode(self, *a, **k):
            if self.fail:
                self.fail = False
                raise RuntimeError("CUDA out of memory")
            return self.real.encode(*a, **k)

    from dataclasses import replace

    broken = replace(embedder, model=Boom(embedder.model))
    with BatchingEncoder(broken) as enc:
        with pytest.raises(RuntimeError, match="out of memory"):
            enc.encode(["a", "b"])
        assert enc.encode(["a", "b"]).shape == (2, 384)  # the next request is served
    with pytest.raises(RuntimeError, match="closed"):
        enc.submit(["x"])


def test_shared_encoder_per_model_and_drop_in_function(embedder, texts, direct):
    assert get_batching_encoder(embedder) is get_batching_encoder(embedder)
    np.testing.assert_allclose(encode_batched(embedder, texts[:10]), direct[:10], atol=1e-5)
