"""Text embeddings computed once per (model, text).

Analysts change labels, templates and thresholds far more often than their data; every page and the CLI go through
:func:`embed_texts` so a rerun only encodes what is new. Vectors are L2-normalised, so a dot product is a cosine.
The cache is bounded by an entry count (384 floats ≈ 1.5 KB each, so the default is about 300 MB).
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np

from llm_backend.core.progress import Progress, report
from llm_backend.models.loaded import LoadedModel, inference_encoder


class EmbeddingCache:
    """A thread-safe LRU of normalised vectors keyed by (model key, sha1 of text)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._store: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(model_key: str, text: str) -> tuple[str, bytes]:
        return model_key, hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()

    def lookup(self, model_key: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        with self._lock:
            out: list[np.ndarray | None] = []
            for text in texts:
                key = self._key(model_key, text)
                vec = self._store.get(key)
                if vec is not None:
                    self._store.move_to_end(key)
                    self.hits += 1
                else:
                    self.misses += 1
                out.append(vec)
            return out

    def store(self, model_key: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        with self._lock:
            for text, vec in zip(texts, vectors):
                self._store[self._key(model_key, text)] = vec
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        with self._lock:
            self._store.clear()
            self.hits = self.misses = 0


CACHE = EmbeddingCache()


def use_batching(model: LoadedModel) -> bool:
    """Merge concurrent sessions' encode calls into shared batches: on by default on CUDA, where one large batch is
    much cheaper than many small ones; opt-in (ZSS_BATCHING=1) on CPU, where bench/concurrency.py measured no gain."""
    flag = os.environ.get("ZSS_BATCHING")
    if flag is not None:
        return flag == "1"
    return model.device is not None and model.device.kind == "cuda"


def encode_uncached(model: LoadedModel, texts: Sequence[str], batch_size: int = 64, progress: Progress = None) -> np.ndarray:
    """Encode texts in one length-sorted pass, reporting progress between chunks.

    sentence-transformers sorts texts by length only *within* one ``encode`` call; cutting unsorted input into
    chunks lost that (1.6x more padding on Banking77, 0.6-0.9x the speed of one plain call). Sorting once here and
    chunking the sorted order makes every batch the one a single call would have made, so progress costs nothing.
    """
    if use_batching(model):
        from llm_backend.models.batching import get_batching_encoder

        return get_batching_encoder(model).encode(list(texts), progress=progress)
    texts = list(texts)
    total = len(texts)
    dim = model.model.get_embedding_dimension()
    if total == 0:
        return np.zeros((0, dim), dtype=np.float32)
    encoder = inference_encoder(model)
    out = np.zeros((total, dim), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    step = max(batch_size * 4, 1)  # report every few batches: finer reporting slows small runs
    for start in range(0, total, step):
        idx = order[start : start + step]
        with model.lock:
            vecs = encoder.encode([texts[i] for i in idx], batch_size=batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
        out[idx] = np.asarray(vecs, dtype=np.float32)
        report(progress, min(start + step, total), total)
    return out


def embed_texts(
    model: LoadedModel,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    progress: Progress = None,
    cache: EmbeddingCache | None = None,
) -> np.ndarray:
    """(n, dim) float32 normalised embeddings; only texts not seen before with this model are encoded."""
    cache = CACHE if cache is None else cache
    texts = [t if isinstance(t, str) else str(t) for t in texts]
    found = cache.lookup(model.spec.key, texts)
    missing_idx = [i for i, v in enumerate(found) if v is None]
    if missing_idx:
        # Deduplicate before encoding: real data repeats texts (templates, retweets, "N/A").
        unique = list(dict.fromkeys(texts[i] for i in missing_idx))
        vecs = encode_uncached(model, unique, batch_size=batch_size, progress=progress)
        cache.store(model.spec.key, unique, vecs)
        by_text = dict(zip(unique, vecs))
        for i in missing_idx:
            found[i] = by_text[texts[i]]
    else:
        report(progress, len(texts), len(texts))
    if not texts:
        return encode_uncached(model, [])
    return np.vstack(found).astype(np.float32, copy=False)
