"""One queue in front of a shared embedder, so many sessions at once make bigger batches instead of a lock convoy.

Every browser session of one server shares the loaded model, and each model call holds the model's lock. Without a
queue, twenty sessions that each encode a few texts take turns one small batch at a time: the model runs at its
least efficient batch size exactly when the load is highest. :class:`BatchingEncoder` puts a worker thread between
callers and the model. Callers submit text lists and wait on futures; the worker takes everything queued (up to
``max_batch`` texts), runs one ``encode``, and hands each caller its rows.

The wait before a batch is *adaptive*: a lone caller is encoded at once (no added latency), and only when the last
batch served several callers does the worker wait up to ``max_wait_ms`` for more. Long requests are split into
``max_batch`` chunks, so a 5,000-row job interleaves with other sessions' small requests instead of blocking them.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from llm_backend.core.progress import Progress, report
from llm_backend.models.loaded import LoadedModel, inference_encoder

log = logging.getLogger(__name__)


@dataclass
class _Request:
    texts: list[str]
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters for tests, the benchmark and the sidebar: how much merging actually happened."""

    requests: int = 0
    texts: int = 0
    batches: int = 0
    encoded: int = 0  # texts actually sent to the model after deduplication
    max_batch_seen: int = 0

    @property
    def requests_per_batch(self) -> float:
        return self.requests / self.batches if self.batches else 0.0


_STOP = object()


class BatchingEncoder:
    """A sentence-transformer behind a batching queue. ``encode(texts)`` has the same contract as
    :func:`llm_backend.models.embedding_cache.encode_uncached`: (n, dim) float32, L2-normalised rows in input order.
    """

    def __init__(self, loaded: LoadedModel, *, max_batch: int = 64, max_wait_ms: float = 4.0,
                 inner_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.loaded = loaded
        self.max_batch = int(max_batch)
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        # sentence-transformers sorts a call's texts by length and pads per inner batch: a merged batch is padded
        # less than the callers' separate batches would be, but one huge forward pass wastes padding on CPU.
        self.inner_batch = max(1, int(inner_batch))
        self.stats = BatchStats()
        self._queue: queue.Queue[object] = queue.Queue()
        self._stats_lock = threading.Lock()
        self._closed = False
        self._concurrent = False  # did the last batch serve more than one request?
        self._worker = threading.Thread(target=self._run, name=f"batching-{loaded.spec.name}", daemon=True)
        self._worker.start()

    @property
    def dim(self) -> int:
        return int(self.loaded.model.get_embedding_dimension())

    # ---- callers
    def submit(self, texts: Sequence[str]) -> Future:
        """Queue one request of at most ``max_batch`` texts; the future resolves to its (n, dim) array."""
        if self._closed:
            raise RuntimeError("This BatchingEncoder is closed.")
        req = _Request([t if isinstance(t, str) else str(t) for t in texts])
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.texts += len(req.texts)
        self._queue.put(req)
        return req.future

    def encode(self, texts: Sequence[str], progress: Progress = None, timeout: float | None = None) -> np.ndarray:
        """Encode texts through the queue, blocking until every chunk is back; errors re-raise here."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        total = len(texts)
        if total == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Chunk in length order: each chunk then pads like one plain sorted encode (unsorted chunks padded every
        # short text to its chunk's longest and ran at 0.3-0.7x of plain sentence-transformers).
        order = np.argsort([-len(t) for t in texts], kind="stable")
        chunks = [order[i : i + self.max_batch] for i in range(0, total, self.max_batch)]
        futures = [self.submit([texts[j] for j in idx]) for idx in chunks]
        out = np.zeros((total, self.dim), dtype=np.float32)
        done = 0
        for idx, fut in zip(chunks, futures):
            out[idx] = fut.result(timeout=timeout)
            done += len(idx)
            report(progress, done, total)
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the queued requests are served."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._worker.join(timeout)

    def __enter__(self) -> "BatchingEncoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- worker
    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        batch, size, stop = [first], len(first.texts), False
        deadline = time.perf_counter() + (self.max_wait if self._concurrent else 0.0)
        while size < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            assert isinstance(item, _Request)
            batch.append(item)
            size += len(item.texts)
        return batch, stop

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, _Request)
            batch, stop = self._gather(item)
            self._concurrent = len(batch) > 1
            self._serve(batch)
            if stop:
                return

    def _serve(self, batch: list[_Request]) -> None:
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        if not live:
            return
        all_texts = [t for r in live for t in r.texts]
        unique = list(dict.fromkeys(all_texts))  # sessions often send the same text (labels, templates)
        try:
            with self.loaded.lock:
                vecs = inference_encoder(self.loaded).encode(
                    unique, batch_size=self.inner_batch, normalize_embeddings=True, convert_to_numpy=True,
                    show_progress_bar=False,
                )
            vecs = np.asarray(vecs, dtype=np.float32)
        except BaseException as exc:  # hand the error to every waiting caller; the worker keeps serving
            log.warning("Batched encode of %d texts failed: %s", len(unique), exc)
            for r in live:
                r.future.set_exception(exc)
            return
        row = {t: i for i, t in enumerate(unique)}
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.encoded += len(unique)
            self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(all_texts))
        for r in live:
            r.future.set_result(vecs[[row[t] for t in r.texts]] if r.texts else np.zeros((0, vecs.shape[1]), np.float32))


_ENCODERS: dict[str, BatchingEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def get_batching_encoder(loaded: LoadedModel, **kwargs: float) -> BatchingEncoder:
    """The process-wide queue for one loaded embedder: every session must share it for batches to merge."""
    key = loaded.spec.key
    with _ENCODERS_LOCK:
        enc = _ENCODERS.get(key)
        if enc is None or enc.loaded is not loaded or enc._closed:
            enc = BatchingEncoder(loaded, **kwargs)  # type: ignore[arg-type]
            _ENCODERS[key] = enc
        return enc


def encode_batched(model: LoadedModel, texts: Sequence[str], batch_size: int = 64, progress: Progress = None) -> np.ndarray:
    """Drop-in for :func:`llm_backend.models.embedding_cache.encode_uncached` that goes through the shared queue.

    ``batch_size`` is accepted for signature compatibility; the queue's ``max_batch`` decides the real batch.
    """
    return get_batching_encoder(model).encode(texts, progress=progress)
