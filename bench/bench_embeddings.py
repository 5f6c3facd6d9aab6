"""Text embeddings for benches, kept on disk between runs (quality benches compare many options on one slice).

Encoding the slices is by far the slowest part of a zero-shot quality bench on a shared CPU (minutes per slice),
while every option after it costs a second. :func:`prime` loads a slice's vectors from
``$ZSS_CACHE_DIR/bench_embeddings`` when this model has encoded these exact texts before, encodes them otherwise,
and puts them into the process-wide :data:`~llm_backend.models.embedding_cache.CACHE`, so the real scorers
(``run_scorer`` and friends) find them there and the bench measures exactly the product's code path.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from llm_backend.models.embedding_cache import CACHE, encode_uncached
from llm_backend.models.loaded import LoadedModel


def _folder() -> Path:
    return Path(os.environ.get("ZSS_CACHE_DIR", ".cache")) / "bench_embeddings"


def _key(loaded: LoadedModel, texts: Sequence[str]) -> str:
    h = hashlib.sha1(loaded.spec.key.encode())
    for t in texts:
        h.update(b"\x00" + t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:20]


def prime(loaded: LoadedModel, texts: Sequence[str]) -> tuple[np.ndarray, float]:
    """(vectors, seconds the encoding took when it was done) for ``texts``; the vectors also go into the cache."""
    texts = [str(t) for t in texts]
    unique = list(dict.fromkeys(texts))
    path = _folder() / f"{_key(loaded, unique)}.npy"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        vecs = np.load(path)
        seconds = float(json.loads(meta.read_text())["encode_s"])
    else:
        t0 = time.perf_counter()
        vecs = encode_uncached(loaded, unique)
        seconds = time.perf_counter() - t0
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vecs)
        tmp.replace(path)
        meta.write_text(json.dumps({"model": loaded.spec.name, "n": len(unique), "encode_s": seconds}))
    CACHE.store(loaded.spec.key, unique, vecs)
    by_text = dict(zip(unique, vecs))
    return np.vstack([by_text[t] for t in texts]), seconds
