"""Causal-LM prompt scoring speed, measured side by side in one run (compare ratios, not seconds: shared CPU).

Part 1, one-pass verbalizer scoring vs one forward per (text, label), on two label sets (both are printed; the
ratio grows with the number of labels, so neither alone tells the story):

- ``agnews``: AG News test texts, the LM verbalizer's chat prompt, 5 label phrases (the 4 AG News topics and
  "Health and medicine"; after the chat header every one is several tokens);
- ``banking10``: Banking77 texts of its 10 most frequent intents (ties by name), the 10 intent names as phrases.

Each path runs in its own child process: the naive path on the first half of the texts, then the one pass on all of
them, then the naive path on the second half (a change of load mid-run biases neither side); wall time and process
CPU time are both reported. Memory: the peak resident set size (``VmHWM``, model included) during the
scoring call only (the high-water mark is reset after loading the model and a warm-up call, via
``/proc/self/clear_refs``), plus the peak above the resident size before the call. The script checks both paths
give the same argmax.

Part 2, few-shot cost: the shipped topic template on AG News rows, k=0 vs k=4 examples per label (16 shared
demonstrations, seeded random), with the shared-prefix KV cache (the demonstrations run once per run): with
demonstrations from a labelled pool, and with gold on the rows being labelled so that rows may themselves be
demonstrations (each such row reads the shared prefix up to its own slot and recomputes the rest).
``--compare-concat`` adds the same three settings through the old path (``lm_scoring.MERGE_PREFIX = False``: the
prefix keys concatenated to every row's instead of read once and merged, see ``llm_backend/prompts/
prefix_attention.py``), in the same turns; each path's k=4 is compared with its own k=0. The settings
advance in turns of ``--chunk`` rows so all see the same load; k=4 without the cache on ``--n-plain`` rows is
optional. Time per text is what a user waits for.

Usage: ``flock /tmp/zss-speed.lock nice .venv/bin/python bench/lm_scoring_speed.py [--n 24] [--label-sets
agnews,banking10] [--n-fewshot 100] [--chunk 20] [--n-plain 0] [--skip-onepass] [--compare-concat]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench_env import ROOT  # first: sys.path, model cache, offline

import numpy as np

LABELS = ["World", "Sports", "Business", "Sci/Tech", "Health and medicine"]


def _label_set(name: str, n: int) -> tuple[list[str], list[str]]:
    """(texts, label names) of one label set (seeded samples of real rows)."""
    if name == "agnews":
        from shared_data import ag_news

        return ag_news()["text"].sample(n, random_state=0).tolist(), LABELS
    from shared_data import banking77

    df = banking77()
    counts = df["label"].value_counts()
    top = sorted(counts.index, key=lambda lab: (-counts[lab], lab))[:10]
    return df[df["label"].isin(top)]["text"].sample(n, random_state=0).tolist(), top


def _lm(name: str | None):
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry

    reg = ModelRegistry()
    return get_model(reg.get(name) if name else reg.default("causal_lm"))


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Reset the process's resident high-water mark (Linux: writing 5 to clear_refs); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(path: str, n: int, out: str, model: str | None, label_set: str, part: str = "all") -> None:
    """One scoring path in a fresh process: prints seconds and peak RSS as JSON, saves the scores."""
    from llm_backend.data.labels import make_labels
    from llm_backend.prompts.lm_scoring import (
        continuation_logprobs,
        continuation_logprobs_naive,
    )
    from llm_backend.scorers.lm import LMVerbalizerScorer

    loaded = _lm(model)
    texts, names = _label_set(label_set, n)
    if part != "all":  # one half of the texts (the naive path runs before and after the one pass)
        texts = texts[: n // 2] if part == "0" else texts[n // 2:]
    labels = make_labels(names)
    prompts = LMVerbalizerScorer(loaded).prompts(texts, labels)
    cands = [lab.phrase for lab in labels]
    fn = continuation_logprobs if path == "fast" else continuation_logprobs_naive
    fn(loaded, prompts[:1], cands)  # warm-up
    import gc

    gc.collect()
    reset = _reset_peak()
    base_rss = _status_mb("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    scores = fn(loaded, prompts, cands)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    np.save(out, scores)
    peak = _status_mb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens = [len(loaded.tokenizer(p)["input_ids"]) for p in prompts]
    answer_tokens = [len(loaded.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in cands]
    print(json.dumps({"seconds": secs, "cpu_seconds": cpu, "peak_rss_mb": peak, "rss_before_mb": base_rss, "peak_reset": reset,
                      "mean_prompt_tokens": float(np.mean(tokens)), "answer_tokens": answer_tokens,
                      "labels": len(cands)}))


def _run_child(path: str, n: int, tmp: Path, model: str | None, label_set: str, part: str = "all") -> dict:
    out = tmp / f"{path}-{label_set}-{part}.npy"
    cmd = [sys.executable, __file__, "--child", path, "--n", str(n), "--out", str(out), "--label-sets", label_set,
           "--part", part]
    if model:
        cmd += ["--model", model]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    print(label_set, path, part, info, flush=True)  # partial results survive a cut-short run
    info["scores"] = np.load(out)
    return info


def onepass(label_set: str, n: int, model: str | None) -> list[tuple[str, str]]:
    import tempfile

    # naive on the first half of the texts, one pass on all, naive on the second half: a change of load mid-run
    # biases neither side, and the naive path (the slow one) still runs once per text.
    with tempfile.TemporaryDirectory() as tmp:
        naive1 = _run_child("naive", n, Path(tmp), model, label_set, part="0")
        fast = _run_child("fast", n, Path(tmp), model, label_set)
        naive2 = _run_child("naive", n, Path(tmp), model, label_set, part="1")
    naive = dict(naive1)
    for key in ("seconds", "cpu_seconds"):
        naive[key] = naive1[key] + naive2[key]
    naive["peak_rss_mb"] = max(naive1["peak_rss_mb"], naive2["peak_rss_mb"])
    naive["rss_before_mb"] = min(naive1["rss_before_mb"], naive2["rss_before_mb"])
    naive["scores"] = np.concatenate([naive1["scores"], naive2["scores"]])
    diff = float(np.abs(fast["scores"] - naive["scores"]).max())
    agree = float((fast["scores"].argmax(1) == naive["scores"].argmax(1)).mean())
    def extra(d: dict) -> float:
        return d["peak_rss_mb"] - d["rss_before_mb"]

    tag = f"[{label_set}]"
    return [
        (f"{tag} texts x label phrases", (f"{n} x {fast['labels']} (prompt {fast['mean_prompt_tokens']:.0f} "
                                          f"tokens; answer tokens {fast['answer_tokens']})")),
        (f"{tag} naive: one forward per (text, label)",
         (f"{naive['seconds']:.1f} s, peak RSS {naive['peak_rss_mb']:.0f} MB (+{extra(naive):.0f} MB over the "
          "loaded model)")),
        (f"{tag} one pass: shared prefix + answer tree in the row's pass + kept logits only",
         (f"{fast['seconds']:.1f} s, peak RSS {fast['peak_rss_mb']:.0f} MB (+{extra(fast):.0f} MB over the "
          "loaded model)")),
        (f"{tag} speed-up (naive / one pass), wall time",
         (f"**{naive['seconds'] / fast['seconds']:.1f}x** (naive halves before/after: {naive1['seconds']:.0f} s + "
          f"{naive2['seconds']:.0f} s)")),
        (f"{tag} speed-up (naive / one pass), process CPU time",
         f"{naive['cpu_seconds'] / fast['cpu_seconds']:.1f}x (less sensitive to other jobs' load)"),
        (f"{tag} peak RSS one pass / naive", (f"{fast['peak_rss_mb'] / naive['peak_rss_mb']:.2f}x "
                                              f"(above the model: {extra(fast):.0f} vs {extra(naive):.0f} MB)")),
        (f"{tag} max abs difference of label log-likelihoods", f"{diff:.1e}"),
        (f"{tag} same argmax", f"{agree:.0%}"),
    ]


CONCAT = "prefix concatenated per row, old path"


def fewshot(n: int, n_plain: int, model: str | None, chunk: int = 20, save=None,
            concat: bool = False) -> list[tuple[str, str]]:
    """k=0 vs k=4 (pool demonstrations; labelled rows that may be demonstrations) on the same ``n`` AG News rows.

    The three runs advance in turns, ``chunk`` rows each (one chunk of k=0, one of k=4 pool, one of k=4 rows-may-
    be-demos, then the next round), so a change of load on the shared machine hits all three alike; each run's
    shared prefix is computed inside its own first chunk (part of its time, as a user waits for it). Wall and
    process CPU time are both summed per run; ``save`` is called with the rows after every round."""
    import pandas as pd
    from shared_data import ag_news

    from llm_backend.prompts import lm_scoring
    from llm_backend.prompts.runner import RunConfig, TemplateRun
    from llm_backend.prompts.templates import load_template_file

    lm = _lm(model)
    tpl = load_template_file(ROOT / "templates" / "topic.yaml")
    data = ag_news()
    ev = data.sample(n, random_state=1)
    pool = pd.concat([g.sample(10, random_state=1) for _, g in data.drop(ev.index).groupby("label")])
    df = pd.concat([ev, pool]).reset_index(drop=True)
    # "pool": the rows being labelled carry no gold, so every demonstration comes from the labelled pool and is the
    # same for every row. "rows may be demos": gold on the labelled rows too (the prompt page's case: the
    # demonstrations are drawn from the labelled data being scored); a row drawn as a demonstration gets the next
    # example of its label in the same slot and reads the shared prefix up to there.
    unlabelled = df.copy()
    unlabelled.loc[: n - 1, "label"] = ""
    rows = list(range(n))
    settings = [("k=0", 0, True, rows, unlabelled),
                ("k=4 pool demonstrations", 4, True, rows, unlabelled),
                ("k=4 labelled rows may be demonstrations", 4, True, rows, df)]
    if concat:  # the same two k=4 settings through the old path: the prefix copied to every row (no merge)
        settings += [(f"{name} [{CONCAT}]", k, share, r, frame) for name, k, share, r, frame in settings]
    runs = {}
    for name, k, share, rows_used, frame in settings:
        run = TemplateRun(tpl, frame, "text", "label", RunConfig(few_shot=k, seed=0, share_prefix=share), lm=lm,
                          rows=rows_used)
        for p in range(len(rows_used)):  # prompts are built outside the timing (same work for every setting)
            run.prompt_for(p)
        runs[name] = run
    exs = [tuple(e) for e in runs["k=4 labelled rows may be demonstrations"].examples]
    shared = max(set(exs), key=exs.count)
    demo_rows = sum(1 for r in rows if r in shared)
    wall = {name: 0.0 for name in runs}
    cpu = {name: 0.0 for name in runs}

    def table(done: int) -> list[tuple[str, str]]:
        out = [("few-shot rows (AG News, shipped topic template, SmolLM2 chat prompt)",
                f"{done} of {n} rows done in every setting, in rounds of {chunk}; {demo_rows} of the rows are "
                "themselves among the demonstrations in the rows-may-be-demos setting")]
        for name, run in runs.items():
            base = f"k=0 [{CONCAT}]" if CONCAT in name else "k=0"  # each path against its own k=0
            k0w, k0c = wall[base] / done, cpu[base] / done
            tokens = np.mean([run.count_tokens(p) for p in run.prompts[:done]])
            w, c = wall[name] / done, cpu[name] / done
            out.append((f"{name}: s per text ({tokens:.0f} prompt tokens)",
                        f"{w:.3f} s wall = **{w / k0w:.2f}x** {base}; {c:.3f} s CPU = {c / k0c:.2f}x {base}"))
        out.append((f"prefix passes run ({' / '.join(runs)})",
                    " / ".join(str(r.prefix_store.computed) for r in runs.values())))
        return out

    done = 0
    while done < n:
        for name, run in runs.items():
            lm_scoring.MERGE_PREFIX = CONCAT not in name
            t0, c0 = time.perf_counter(), time.process_time()
            run.run_chunk(chunk)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
        lm_scoring.MERGE_PREFIX = True
        done = min(n, done + chunk)
        print(done, {k: round(v, 1) for k, v in wall.items()}, flush=True)
        if save is not None:
            save(table(done))
    out = table(n)
    if n_plain:
        run = TemplateRun(tpl, unlabelled, "text", "label", RunConfig(few_shot=4, seed=0, share_prefix=False), lm=lm,
                          rows=rows[:n_plain])
        for p in range(n_plain):
            run.prompt_for(p)
        t0 = time.perf_counter()
        run.run_all()
        per = (time.perf_counter() - t0) / n_plain
        out.append((f"k=4 no prefix cache: s per text ({n_plain} texts, after the rounds)",
                    f"{per:.3f} s = {per / (wall['k=0'] / n):.1f}x k=0"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--label-sets", default="agnews,banking10")
    ap.add_argument("--n-fewshot", type=int, default=100)
    ap.add_argument("--n-plain", type=int, default=0, help="k=4 rows without the prefix cache (slow; 0 = skip)")
    ap.add_argument("--chunk", type=int, default=20, help="few-shot rows per turn of each setting")
    ap.add_argument("--model", default=None, help="registered causal LM name (default: the registry's default)")
    ap.add_argument("--child", choices=("fast", "naive"), default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--part", default="all", choices=("all", "0", "1"))
    ap.add_argument("--n-many", type=int, default=None, help="texts for label sets of 10+ labels (default: --n)")
    ap.add_argument("--skip-onepass", action="store_true")
    ap.add_argument("--skip-fewshot", action="store_true")
    ap.add_argument("--compare-concat", action="store_true",
                    help="also run the k=4 settings through the old path (prefix keys concatenated to every row)")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n, args.out, args.model, args.label_sets, args.part)
        return
    import torch

    rows: list[tuple[str, str]] = [("model", args.model or "default causal LM"),
                                   ("torch threads", str(torch.get_num_threads())),
                                   ("load average at start", " ".join(f"{x:.1f}" for x in os.getloadavg()))]
    if not args.skip_onepass:
        for label_set in args.label_sets.split(","):
            n = args.n if label_set == "agnews" or args.n_many is None else args.n_many
            rows += onepass(label_set, n, args.model)
            print(rows, flush=True)
            _save(rows, args)  # after every label set, so a cut-short run still leaves its numbers
    if not args.skip_fewshot:
        head = list(rows)
        rows += fewshot(args.n_fewshot, args.n_plain, args.model, chunk=args.chunk, concat=args.compare_concat,
                        save=lambda part: _save(head + part + [("load average now", " ".join(
                            f"{x:.1f}" for x in os.getloadavg()))], args))
    rows.append(("load average at end", " ".join(f"{x:.1f}" for x in os.getloadavg())))
    _save(rows, args)


def _save(rows: list[tuple[str, str]], args: argparse.Namespace) -> None:
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    md = ("# Causal-LM prompt scoring speed\n\n"
          f"`flock /tmp/zss-speed.lock .venv/bin/python bench/lm_scoring_speed.py --n {args.n} --n-many {args.n_many} "
          f"--label-sets {args.label_sets} --n-fewshot {args.n_fewshot} --n-plain {args.n_plain} --chunk {args.chunk}"
          f"{' --skip-onepass' if args.skip_onepass else ''}{' --skip-fewshot' if args.skip_fewshot else ''}"
          f"{' --compare-concat' if args.compare_concat else ''}`; all "
          "settings measured in this one run on a shared 2-core CPU with other jobs running (compare the ratios, not the seconds).\n\n"
          "| measure | value |\n|---|---|\n" + table + "\n")
    print(md)
    name = "lm_scoring_speed.md" if not (args.skip_onepass or args.skip_fewshot) else (
        "lm_scoring_speed_onepass.md" if args.skip_fewshot else "lm_scoring_speed_fewshot.md")
    out = ROOT / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)


if __name__ == "__main__":
    main()
