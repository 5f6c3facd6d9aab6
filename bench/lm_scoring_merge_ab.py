"""Merged vs concatenated prefix attention on the few-shot scoring call itself, alternated many times (A/B).

``bench/lm_scoring_speed.py --compare-concat`` times whole runs in rounds of 20 rows; on a shared 2-core machine
whose load comes in bursts (other jobs) one round of one setting can take 10x another's for the same work, so its
ratios swing by tens of percent between runs. Here each setting's scoring call (the same ``n`` rows, the shared
prefix already in the run's ``PrefixStore``, so only the per-row work is timed — the prefix pass is the same for
both paths) runs ``--repeats`` times, alternating merged / concatenated / merged ..., and the median and the
minimum over the repeats are reported per text (the minimum is the least disturbed run of the same work).
Settings as in lm_scoring_speed.py: k=0, k=4 pool demonstrations, k=4 labelled rows may be demonstrations.

Usage: ``flock /tmp/zss-speed.lock .venv/bin/python bench/lm_scoring_merge_ab.py [--n 20] [--repeats 4]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from bench_env import ROOT  # first: sys.path, model cache, offline

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args()
    import pandas as pd
    import torch
    from lm_scoring_speed import _lm
    from shared_data import ag_news

    from llm_backend.prompts import lm_scoring, runner
    from llm_backend.prompts.runner import RunConfig, TemplateRun
    from llm_backend.prompts.templates import load_template_file

    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lm = _lm(None)
    tpl = load_template_file(ROOT / "templates" / "topic.yaml")
    data = ag_news()
    n = args.n
    ev = data.sample(n, random_state=1)
    pool = pd.concat([g.sample(10, random_state=1) for _, g in data.drop(ev.index).groupby("label")])
    df = pd.concat([ev, pool]).reset_index(drop=True)
    unlabelled = df.copy()
    unlabelled.loc[: n - 1, "label"] = ""
    settings = {"k=0": (0, unlabelled), "k=4 pool demonstrations": (4, unlabelled),
                "k=4 labelled rows may be demonstrations": (4, df)}
    calls, tokens = {}, {}
    real = runner.continuation_logprobs
    for name, (k, frame) in settings.items():
        run = TemplateRun(tpl, frame, "text", "label", RunConfig(few_shot=k, seed=0), lm=lm, rows=list(range(n)))
        seen = {}

        def capture(*a, _seen=seen, **kw):
            if "a" not in _seen:  # the rows' scoring call (later ones: calibration prompts)
                _seen["a"], _seen["kw"] = a, {key: v for key, v in kw.items() if key != "progress"}
            return real(*a, **kw)

        runner.continuation_logprobs = capture
        run.run_all(chunk=n)  # computes the shared prefix into run.prefix_store, and captures the scoring call
        runner.continuation_logprobs = real
        calls[name] = seen
        tokens[name] = float(np.mean([run.count_tokens(p) for p in run.prompts]))
    times = {(name, merge): [] for name in settings for merge in (True, False)}
    outs = {}
    for rep in range(args.repeats):
        for name, seen in calls.items():
            for merge in ((True, False) if rep % 2 == 0 else (False, True)):
                lm_scoring.MERGE_PREFIX = merge
                t0, c0 = time.perf_counter(), time.process_time()
                outs[(name, merge)] = real(*seen["a"], **seen["kw"])
                times[(name, merge)].append((time.perf_counter() - t0, time.process_time() - c0))
        print(rep, {f"{k[0]} {'merged' if k[1] else 'concat'}": round(v[-1][0], 1) for k, v in times.items()},
              flush=True)
    lm_scoring.MERGE_PREFIX = True
    rows = [("model", "default causal LM (SmolLM2-135M-Instruct)"), ("torch threads", str(torch.get_num_threads())),
            ("load average at start", load_start),
            ("rows per call; repeats per setting and path", f"{n}; {args.repeats} (alternating merged/concat)")]

    def per_text(name, merge, which, agg):
        return agg([t[which] for t in times[(name, merge)]]) / n

    for agg_name, agg in (("median", statistics.median), ("min", min)):
        for name in settings:
            m_w, c_w = per_text(name, True, 0, agg), per_text(name, False, 0, agg)
            m_c, c_c = per_text(name, True, 1, agg), per_text(name, False, 1, agg)
            k0 = {merge: (per_text("k=0", merge, 0, agg), per_text("k=0", merge, 1, agg)) for merge in (True, False)}
            label = f"{name} ({tokens[name]:.0f} prompt tokens), {agg_name} s per text: merged / concatenated"
            value = (f"wall {m_w:.3f} / {c_w:.3f} (**{c_w / m_w:.2f}x** faster); CPU {m_c:.3f} / {c_c:.3f} "
                     f"({c_c / m_c:.2f}x); vs own k=0: merged **{m_w / k0[True][0]:.2f}x** wall "
                     f"({m_c / k0[True][1]:.2f}x CPU), concatenated {c_w / k0[False][0]:.2f}x wall "
                     f"({c_c / k0[False][1]:.2f}x CPU)")
            rows.append((label, value))
    diff = max(float(np.abs(outs[(name, True)] - outs[(name, False)]).max()) for name in settings)
    same = min(float((outs[(name, True)].argmax(1) == outs[(name, False)].argmax(1)).mean()) for name in settings)
    rows.append(("max abs difference merged vs concatenated; same argmax", f"{diff:.1e}; {same:.0%}"))
    rows.append(("load average at end", " ".join(f"{x:.1f}" for x in os.getloadavg())))
    md = ("# Few-shot scoring: merged vs concatenated prefix attention (A/B)\n\n"
          f"`flock /tmp/zss-speed.lock .venv/bin/python bench/lm_scoring_merge_ab.py --n {n} --repeats "
          f"{args.repeats}`: the scoring call only (shared prefix already computed), AG News rows, shipped topic "
          "template; shared 2-core CPU with other jobs running (compare ratios).\n\n| measure | value |\n|---|---|\n"
          + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n")
    print(md)
    (ROOT / "bench" / "results" / "lm_scoring_merge_ab.md").write_text(md)


if __name__ == "__main__":
    main()
