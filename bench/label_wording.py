"""Issue 17, label wording help: does accepting the suggestions help? Plain baseline, label names, suggestions
accepted as before, LM sentences, and the wording help's proposal, on every kind of labelled data.

Data and slices as bench/zero_shot_options.py (AG News, Banking77, product reviews sample, THUCNews, ECDT; label
names only; seeded disjoint dev / held-out slices, the same seeds). Every option runs the default method the page
and ``score`` use (self-training on the embedder :func:`llm_backend.scorers.defaults.zero_shot_embedder` picks for
the slice); the wording help is :func:`llm_backend.scorers.wording_help.wording_help`, the function the zero-shot
page and ``suggest-labels`` call.

``--variants`` first prints the ways of using the suggestions that were compared on the dev slices (mixing weight,
a second prototype, per-label margin gates; numpy over the same vectors and the product's functions) and writes
them to label_wording_variants.json/.md. Run:

    nice -n 10 .venv/bin/python bench/label_wording.py --variants --slices dev
    nice -n 10 .venv/bin/python bench/label_wording.py              # the table, dev and held-out

Writes bench/results/label_wording.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd

from bench_env import OUT  # first: sys.path, model cache, offline

from bench_embeddings import prime  # noqa: E402
from shared_data import markdown_table  # noqa: E402
from zero_shot_options import KINDS, slices  # noqa: E402

from llm_backend.data.labels import Label, make_labels  # noqa: E402
from llm_backend.data.language import default_template, detect_language, template_language  # noqa: E402
from llm_backend.models.embedding_cache import embed_texts  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import ModelRegistry  # noqa: E402
from llm_backend.scorers.defaults import corpus_chars, zero_shot_embedder  # noqa: E402
from llm_backend.scorers.embedding import EmbeddingScorer, refine_label_vectors  # noqa: E402
from llm_backend.scorers.label_descriptions import lm_descriptions  # noqa: E402
from llm_backend.scorers.label_suggestions import apply_suggestions, suggest_label_wording  # noqa: E402
from llm_backend.scorers.self_training import SelfTrainingScorer, fit_self_training  # noqa: E402
from llm_backend.scorers.wording_help import gate, partition_signals, row_centroids, wording_help  # noqa: E402
from llm_backend.scorers.zero_shot import run_scorer  # noqa: E402



def setup(reg: ModelRegistry, df: pd.DataFrame):
    texts, gold = df["text"].astype(str).tolist(), df["label"].astype(str).tolist()
    labels = make_labels(sorted(set(gold)))
    report = detect_language(texts)
    templates = [default_template(template_language(report, [l.name for l in labels]))] \
        if report.needs_multilingual else None
    choice = zero_shot_embedder(corpus_chars(texts), report, reg, device_kind="cpu")
    loaded = get_model(reg.get(choice.name))
    prime(loaded, texts)  # vectors from the on-disk bench cache when this slice was encoded before
    return texts, gold, labels, templates, loaded


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def variants(reg: ModelRegistry, lm, which: list[str], data_sets: list[str]) -> list[dict]:
    """Ways of using the suggestions, on the same vectors: the label vector is unit(name + w x suggestion)."""
    from sklearn.metrics import f1_score

    rows: list[dict] = []
    for data in data_sets:
        for sl, df in slices()[data].items():
            if sl not in which:
                continue
            texts, gold, labels, templates, loaded = setup(reg, df)
            names = [l.name for l in labels]
            y = np.array([names.index(g) for g in gold])
            x = embed_texts(loaded, texts)
            sc = EmbeddingScorer(loaded, templates)
            n = sc.label_embeddings(labels)
            sug = suggest_label_wording(texts, x, labels, n)
            d = _unit(embed_texts(loaded, [f"{l.phrase}: {s.description}" if s.description else l.phrase
                                           for l, s in zip(labels, sug)]))
            desc = lm_descriptions(lm, labels)
            g = _unit(embed_texts(loaded, [f"{l.phrase}: {desc[l.name]}" if desc[l.name] else l.phrase
                                           for l in labels]))
            cents = row_centroids(x, n)
            opts = [("names", n, None)]
            for w in (0.25, 0.5, 1.0):
                opts += [(f"corpus words, w={w}", _unit(n + w * d), None), (f"LM sentence, w={w}", _unit(n + w * g), None)]
                for what, s in (("corpus words", d), ("LM sentence", g)):
                    ok = gate(n, s, cents, w)[0]
                    opts.append((f"{what}, w={w}, margin gate ({int(ok.sum())}/{len(labels)} pass)",
                                 np.where(ok[:, None], _unit(n + w * s), n), None))
            opts += [("corpus words, second prototype (max)", n, d), ("LM sentence, second prototype (max)", n, g)]
            for oname, lv, extra in opts:
                refined = refine_label_vectors(x, lv)
                s = x @ refined.T
                if extra is not None:
                    s = np.maximum(s, x @ extra.T)
                lp, _ = fit_self_training(x, s, lv)
                lp = lp - lp.mean(axis=0, keepdims=True)  # prior centering, as run_scorer applies by default
                rows.append({"data": data, "slice": sl, "n": len(y), "model": loaded.spec.name, "option": oname,
                             "macro_f1": round(float(f1_score(y, lp.argmax(1), average="macro")), 4)})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    base = {(r["data"], r["slice"]): r["macro_f1"] for r in rows if r["option"] == "names"}
    for r in rows:
        r["vs names (points)"] = round(100 * (r["macro_f1"] - base[(r["data"], r["slice"])]), 1)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "label_wording_variants.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    df = pd.DataFrame(rows)
    df["option"] = df["option"].str.replace(r" \(\d+/\d+ pass\)", "", regex=True)
    piv = df.pivot_table(index="option", columns="data", values="vs names (points)", sort=False).round(1)
    piv["mean"] = piv.mean(axis=1).round(2)
    md = ["# Ways of using the label wording suggestions (dev slices, self-training, macro-F1 points vs names)", "",
          f"Generated by `bench/label_wording.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d')}. Label "
          "vector = unit(name vector + w x suggestion vector); 'margin gate': a label takes the suggestion only when "
          "it raises the label's own-rows margin (llm_backend.scorers.wording_help.gate); 'second prototype': "
          "max of the two cosines. Then prototype refinement and self-training as the default method. Dev rows: "
          "AG News 400, Banking77 600, THUCNews 200, ECDT 300 (the product reviews sample has no dev slice).", "",
          markdown_table(piv.reset_index()), "", "## Every row", "", markdown_table(pd.DataFrame(rows)), ""]
    (OUT / "label_wording_variants.md").write_text("\n".join(md), encoding="utf-8")
    return rows


def table(reg: ModelRegistry, lm, which: list[str], data_sets: list[str]) -> list[dict]:
    rows: list[dict] = []
    for data in data_sets:
        for sl, df in slices()[data].items():
            if sl not in which:
                continue
            texts, gold, labels, templates, loaded = setup(reg, df)
            minilm = get_model(reg.default("embedder"))
            prime(minilm, texts)

            def record(option: str, f1: float, seconds: float, model: str, changed: int | None = None,
                       signals: str = "") -> None:
                rows.append({"data": data, "kind": KINDS[data], "slice": sl, "n": len(gold), "model": model,
                             "option": option, "macro_f1": round(f1, 4), "rows changed": changed,
                             "label-free check": signals, "seconds": round(seconds, 1)})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
                save(rows)

            res = run_scorer(EmbeddingScorer(minilm, refine=0), texts, labels, calibration="none")
            record("plain baseline", res.evaluate(gold)["macro_f1"], res.seconds, minilm.spec.name)
            scorer = SelfTrainingScorer(loaded, templates)
            names = run_scorer(scorer, texts, labels)
            record("label names (the defaults)", names.evaluate(gold)["macro_f1"], names.seconds, loaded.spec.name)
            t0 = time.perf_counter()
            x = embed_texts(loaded, texts)
            old = apply_suggestions(labels, suggest_label_wording(texts, x, labels, scorer.label_embeddings(labels)))
            sig_names = partition_signals(x, names.pred, names.probs)

            def check(res) -> str:  # the label-free signals of this run against the names' run
                (sb, cb), (sa, ca) = sig_names, partition_signals(x, res.pred, res.probs)
                return (f"silhouette {sb:.3f}->{sa:.3f}, top prob {cb:.3f}->{ca:.3f}: "
                        + ("both rise" if sa > sb and ca > cb else "not both rise"))

            res = run_scorer(scorer, texts, old)
            record("corpus words accepted, as before (every cryptic label)", res.evaluate(gold)["macro_f1"],
                   time.perf_counter() - t0, loaded.spec.name, int(np.sum(np.asarray(res.pred) != np.asarray(names.pred))),
                   check(res))
            t0 = time.perf_counter()
            desc = lm_descriptions(lm, labels)
            with_lm = [Label(l.name, f"{l.phrase}: {desc[l.name]}" if desc[l.name] else "", l.phrasings, l.display)
                       for l in labels]
            res = run_scorer(scorer, texts, with_lm)
            record("LM sentences accepted (every label, ungated)", res.evaluate(gold)["macro_f1"],
                   time.perf_counter() - t0, loaded.spec.name, int(np.sum(np.asarray(res.pred) != np.asarray(names.pred))),
                   check(res))
            for option, kwargs in (("wording help", {}), ("wording help + LM sentences", {"lm": lm, "accept_lm": True})):
                t0 = time.perf_counter()
                h = wording_help(scorer, texts, labels, gold=gold, **kwargs)
                seconds = time.perf_counter() - t0
                (sb, cb), (sa, ca) = h.signals_names, h.signals_candidate
                check = (f"silhouette {sb:.3f}->{sa:.3f}, top prob {cb:.3f}->{ca:.3f}: "
                         + ("propose" if h.recommended else "keep the names"))
                record(f"{option}: candidate accepted ({h.n_accepted}/{len(labels)} labels)", h.macro_f1_after,
                       seconds, loaded.spec.name, h.changed_rows, check)
                f1 = h.macro_f1_after if h.recommended else h.macro_f1_before
                record(f"NEW: {option}, what is proposed", f1, seconds, loaded.spec.name,
                       h.changed_rows if h.recommended else 0)
    return rows


def save(rows: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "label_wording.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    md = ["# Label wording help: plain baseline, label names, accepted suggestions, the new proposal", "",
          f"Generated by `bench/label_wording.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d')} "
          f"({os.cpu_count()} CPU cores shared with other jobs). Label names only; every option but the plain "
          "baseline runs the default method (self-training on the default embedder for the slice). Dev slices chose "
          "the proposal (label_wording_variants.md); read the held-out rows. `rows changed`: rows whose label differs "
          "from the label-names run (what the page shows before accepting). `seconds`: with the slice's embeddings "
          "cached, LM sentences from the cache. The product reviews sample has 180 rows and no dev slice (an "
          "indication only).", "", markdown_table(pd.DataFrame(rows)), ""]
    (OUT / "label_wording.md").write_text("\n".join(md), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", action="store_true", help="compare ways of using the suggestions (dev)")
    ap.add_argument("--slices", nargs="*", default=["dev", "held-out"])
    ap.add_argument("--data", nargs="*", default=list(KINDS))
    args = ap.parse_args()
    reg = ModelRegistry()
    lm = get_model(reg.default("causal_lm"))
    if args.variants:
        variants(reg, lm, args.slices, [d for d in args.data if d in KINDS])
        return
    table(reg, lm, args.slices, args.data)
    print(f"wrote {OUT / 'label_wording.md'}")


if __name__ == "__main__":
    main()
