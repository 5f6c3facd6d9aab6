"""How throughput and latency change when 1, 5 and 20 sessions score text at the same time, with and without the
batching queue (``llm_backend.models.batching.BatchingEncoder``).

Each simulated session is a thread, like a browser session on the Streamlit server. It scores its own 200 AG News
texts (distinct per session; both modes see the same texts and bypass the embedding cache, so no cache hides the
work) in requests of
``--request-size`` texts — an analyst clicking through examples, or a page scoring in small chunks — and each
request is embedded and compared with four label embeddings. Without batching, every request runs its own
``encode`` under the model's lock (what ``embed_texts`` does today); with batching, requests from all sessions go
through one shared queue.

Reported: total throughput (texts/s) and p95 latency per request, each as a ratio to the single-session case of the
same mode, and batched/unbatched ratios at each load. All timings come from one run, side by side.

    .venv/bin/python bench/concurrency.py                  # ~2-4 minutes on a laptop CPU
    .venv/bin/python bench/concurrency.py --sessions 1,5 --texts-per-session 50   # a quick look
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared_data import ag_news  # noqa: E402

from llm_backend.core.device import pick_device  # noqa: E402
from llm_backend.models.batching import BatchingEncoder  # noqa: E402
from llm_backend.models.embedding_cache import encode_uncached  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import ModelRegistry  # noqa: E402

LABELS = ["world politics", "sports", "business", "science and technology"]


def load_texts() -> list[str]:
    return ag_news()["text"].tolist()


def run_load(encode, label_vecs: np.ndarray, pool: list[str], n_sessions: int, per_session: int,
             request_size: int) -> dict[str, float]:
    """Start ``n_sessions`` threads together; each scores its slice of ``pool`` request by request."""
    latencies: list[float] = []
    lat_lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_sessions + 1)

    def session(k: int) -> None:
        mine = pool[k * per_session : (k + 1) * per_session]
        local = []
        barrier.wait()
        try:
            for i in range(0, len(mine), request_size):
                t0 = time.perf_counter()
                vecs = encode(mine[i : i + request_size])
                _ = (vecs @ label_vecs.T).argmax(axis=1)  # the scoring step of the similarity method
                local.append(time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        with lat_lock:
            latencies.extend(local)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(n_sessions)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    total = n_sessions * per_session
    return {"sessions": n_sessions, "texts": total, "wall_s": wall, "throughput": total / wall,
            "p50_ms": float(np.percentile(latencies, 50) * 1000), "p95_ms": float(np.percentile(latencies, 95) * 1000),
            "requests": len(latencies)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", default="1,5,20")
    ap.add_argument("--texts-per-session", type=int, default=200)
    ap.add_argument("--request-size", type=int, default=10)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--max-wait-ms", type=float, default=4.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "concurrency.md"))
    args = ap.parse_args()
    loads = [int(s) for s in args.sessions.split(",")]

    model = get_model(ModelRegistry().default("embedder"))
    all_texts = load_texts()
    per = args.texts_per_session
    need = sum(loads) * per + 64
    if need > len(all_texts):
        sys.exit(f"Need {need} distinct texts, AG News has {len(all_texts)}: lower --texts-per-session")
    label_vecs = encode_uncached(model, LABELS)
    encode_uncached(model, all_texts[-64:])  # warm-up: first calls allocate
    batcher = BatchingEncoder(model, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    batcher.encode(all_texts[-32:])

    results: list[dict[str, float | str]] = []
    offset = 0
    for n in loads:  # both modes at each load back to back on the same texts, so noise hits them alike
        pool = all_texts[offset : offset + n * per]  # distinct per session; the embedding cache is not used at all
        offset += n * per
        for mode, encode in (("direct", lambda t: encode_uncached(model, t)), ("batched", batcher.encode)):
            before = (batcher.stats.requests, batcher.stats.batches)
            row = run_load(encode, label_vecs, pool, n, per, args.request_size)
            row["mode"] = mode
            if mode == "batched":
                reqs, batches = batcher.stats.requests - before[0], batcher.stats.batches - before[1]
                row["requests_per_batch"] = reqs / max(batches, 1)
            results.append(row)
            print(f"{mode:8s} sessions={n:3d} throughput={row['throughput']:7.1f} texts/s "
                  f"p95={row['p95_ms']:8.1f} ms", file=sys.stderr)
    batcher.close()

    base = {m: next(r for r in results if r["mode"] == m and r["sessions"] == loads[0]) for m in ("direct", "batched")}
    lines = [
        "# Concurrency: sessions scoring at once, with and without the batching queue",
        "",
        f"Device: {pick_device().name}. Model: {model.spec.name}. Each session scores {per} distinct AG News texts in "
        f"requests of {args.request_size}; batching queue max_batch={args.max_batch}, "
        f"max_wait={args.max_wait_ms} ms (adaptive). Ratios are to the {loads[0]}-session case of the same mode; "
        "`batched/direct` compares the two modes at the same load. All numbers from one run "
        f"(`.venv/bin/python bench/concurrency.py --sessions {args.sessions} --texts-per-session {per} "
        f"--request-size {args.request_size}`).",
        "",
        "| sessions | mode | throughput × 1-session | p95 latency × 1-session | batched/direct throughput | "
        "batched/direct p95 | requests per batch |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        other = next(x for x in results if x["sessions"] == r["sessions"] and x["mode"] == "direct")
        rel_t = r["throughput"] / base[r["mode"]]["throughput"]
        rel_p = r["p95_ms"] / base[r["mode"]]["p95_ms"]
        vs_t = f"{r['throughput'] / other['throughput']:.2f}" if r["mode"] == "batched" else "—"
        vs_p = f"{r['p95_ms'] / other['p95_ms']:.2f}" if r["mode"] == "batched" else "—"
        rpb = f"{r.get('requests_per_batch', 1.0):.1f}" if r["mode"] == "batched" else "1.0"
        lines.append(f"| {r['sessions']} | {r['mode']} | {rel_t:.2f} | {rel_p:.2f} | {vs_t} | {vs_p} | {rpb} |")
    lines += ["", "Raw numbers (machine-specific; compare only within this table):", "", "```json",
              json.dumps(results, indent=1), "```", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines[:8 + len(results)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
