"""Issue 17 table: plain baseline, old defaults, each option and the new defaults, on every kind of labelled data.

Data (``../shared/data`` and the bundled sample, label names only, no descriptions): AG News (topics), Banking77
(77 intents), the product reviews sample (sentiment, 180 rows: below the 200-row bar, an indication only), THUCNews
(14 Chinese news topics, Chinese label names) and ECDT (31 Chinese intents, English label names). Seeded disjoint
*dev* slices chose every setting; the *held-out* slices are reported.

Embeddings are computed once per (model, slice) and kept on disk (bench/bench_embeddings.py), so options are
compared on the same vectors and the encoding time is reported apart (``encode_s``: measured when the slice was
first encoded). Run:

    nice -n 10 .venv/bin/python bench/zero_shot_options.py --models MiniLM mpnet --no-mpnet "AG News:held-out"
    flock /tmp/zss-speed.lock .venv/bin/python bench/zero_shot_options.py --speed    # MiniLM vs mpnet encoding
    nice -n 10 .venv/bin/python bench/zero_shot_options.py --prime --models mpnet    # only encode and store

Writes bench/results/zero_shot_options.md and .json (``--speed``: zero_shot_embedder_speed.md).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import pandas as pd

from bench_env import OUT  # first: sys.path, model cache, offline

from bench_embeddings import prime  # noqa: E402
from shared_data import ag_news, banking77, ecdt, markdown_table, thucnews  # noqa: E402

from llm_backend.data.files import load_sample  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import MULTILINGUAL_EMBEDDER, ModelRegistry  # noqa: E402

KINDS = {"AG News": "topic", "Banking77": "intent", "Product reviews (sample)": "sentiment",
         "THUCNews": "language (zh topic)", "ECDT": "language (zh intent)"}


def split(df: pd.DataFrame, n_dev: int, n_test: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Disjoint seeded dev and held-out slices (the same seeds as bench/zero_shot_quality.py and
    bench/multilingual_quality.py, so the figures line up)."""
    shuffled = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return shuffled.iloc[:n_dev], shuffled.iloc[n_dev:n_dev + n_test]


def slices() -> dict[str, dict[str, pd.DataFrame]]:
    pr = load_sample("Product reviews").df.rename(columns={"sentiment": "label"})[["text", "label"]]
    out = {"AG News": split(ag_news(), 400, 1000), "Banking77": split(banking77(), 600, 1500),
           "Product reviews (sample)": (None, pr), "THUCNews": split(thucnews(), 200, 300),
           "ECDT": split(ecdt(), 300, 600)}
    return {d: {s: df.reset_index(drop=True) for s, df in zip(("dev", "held-out"), pair) if df is not None}
            for d, pair in out.items()}


def options_table(reg: ModelRegistry, names: dict[str, str], data_sets: list[str], mpnet: bool,
                  no_mpnet: list[str]) -> list[dict]:
    """Every option on every slice, on the same cached vectors; rows as they are written to the table."""
    from llm_backend.data.labels import make_labels
    from llm_backend.data.language import default_template, detect_language, template_language
    from llm_backend.scorers.defaults import LARGE_EMBEDDER, corpus_chars, zero_shot_embedder
    from llm_backend.scorers.embedding import DEFAULT_TEMPLATE, EmbeddingScorer
    from llm_backend.scorers.label_suggestions import apply_suggestions, suggest_label_wording
    from llm_backend.scorers.self_training import SelfTrainingScorer, SelfTrainingSettings
    from llm_backend.scorers.zero_shot import run_scorer

    old_st = SelfTrainingSettings(top_fraction=0.5, balanced=False, rounds=1)
    rows: list[dict] = []
    for data in data_sets:
        for sl, df in slices()[data].items():
            texts, gold = df["text"].astype(str).tolist(), df["label"].astype(str).tolist()
            labels = make_labels(sorted(set(gold)))
            report = detect_language(texts)
            lang_t = default_template(template_language(report, [l.name for l in labels]))
            english = not report.needs_multilingual
            with_mpnet = english and mpnet and f"{data}:{sl}" not in no_mpnet
            new_choice = zero_shot_embedder(corpus_chars(texts), report, reg, device_kind="cpu")
            mname = {v: k for k, v in names.items()}[new_choice.name]
            lang_model = "MiniLM" if english else "e5"
            models_here = ["MiniLM"] + (["e5"] if not english else []) + (["mpnet"] if with_mpnet else [])
            enc = {}
            for m in dict.fromkeys(models_here + [mname]):
                _, enc[m] = prime(get_model(reg.get(names[m])), texts)

            def emb(m: str):
                return get_model(reg.get(names[m]))

            opts = [("plain baseline", "MiniLM", EmbeddingScorer(emb("MiniLM"), refine=0), labels, "none")]
            if not english:
                opts.append(("plain multilingual baseline (bare label names)", "e5",
                             EmbeddingScorer(emb("e5"), ["{label}"], refine=0), labels, "none"))
            t_lang = None if english else [lang_t]
            opts += [("old defaults (refine + centering)", lang_model, EmbeddingScorer(emb(lang_model), t_lang),
                      labels, "centering"),
                     ("self-training, old settings (top half per class, 1 round)", lang_model,
                      SelfTrainingScorer(emb(lang_model), t_lang, settings=old_st), labels, "centering"),
                     ("self-training (balanced, 2 rounds)", lang_model, SelfTrainingScorer(emb(lang_model), t_lang),
                      labels, "centering")]
            if with_mpnet:
                opts += [("mpnet defaults (refine + centering)", "mpnet", EmbeddingScorer(emb("mpnet")), labels,
                          "centering"),
                         ("mpnet self-training (balanced, 2 rounds)", "mpnet", SelfTrainingScorer(emb("mpnet")),
                          labels, "centering")]
            base = EmbeddingScorer(emb(lang_model), t_lang)
            t0 = time.perf_counter()
            vecs, _ = prime(emb(lang_model), texts)
            worded = apply_suggestions(labels, suggest_label_wording(texts, vecs, labels, base.label_embeddings(labels)))
            sugg_s = time.perf_counter() - t0
            opts.append(("old defaults + accepted wording suggestions", lang_model,
                         EmbeddingScorer(emb(lang_model), t_lang), worded, "centering"))
            opts.append((f"NEW DEFAULTS (self-training, {new_choice.name})", mname,
                         SelfTrainingScorer(emb(mname), t_lang), labels, "centering"))
            gpu_choice = zero_shot_embedder(corpus_chars(texts), report, reg, device_kind="cuda")
            if gpu_choice.name != new_choice.name and (with_mpnet or gpu_choice.name != LARGE_EMBEDDER):
                gname = {v: k for k, v in names.items()}[gpu_choice.name]
                opts.append((f"NEW DEFAULTS on a GPU (self-training, {gpu_choice.name})", gname,
                             SelfTrainingScorer(emb(gname), t_lang), labels, "centering"))
            for oname, m, scorer, labs, cal in opts:
                res = run_scorer(scorer, texts, labs, calibration=cal)
                met = res.evaluate(gold)
                extra = sugg_s if "wording" in oname else 0.0
                rows.append({"data": data, "kind": KINDS[data], "slice": sl, "n": met["n"], "model": m,
                             "option": oname, "macro_f1": round(met["macro_f1"], 4),
                             "accuracy": round(met["accuracy"], 4), "seconds": round(res.seconds + extra, 1),
                             "encode_s": round(enc[m], 1)})
                print(json.dumps(rows[-1]), flush=True)
                save(rows)
    return rows


def save(rows: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "zero_shot_options.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    md = ["# Zero-shot options (label names only): plain baseline, old defaults, each option, new defaults", "",
          f"Generated by `bench/zero_shot_options.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d')} "
          f"({os.cpu_count()} CPU cores shared with other jobs). Dev slices chose every setting; read the held-out "
          "rows. `seconds`: the option with the slice's embeddings cached; `encode_s`: embedding the slice once "
          "with that model (measured when it was first encoded, under varying load). The product reviews sample "
          "has 180 rows and no dev slice (an indication only). THUCNews held-out is 300 rows, ECDT 600.", "",
          markdown_table(pd.DataFrame(rows))]
    (OUT / "zero_shot_options.md").write_text("\n".join(md) + "\n", encoding="utf-8")


def speed(reg: ModelRegistry, names: dict[str, str], rounds: int = 2) -> list[dict]:
    """MiniLM vs mpnet encoding throughput on the same texts, interleaved (run under flock /tmp/zss-speed.lock).

    The size rule of :func:`llm_backend.scorers.defaults.zero_shot_embedder` is in characters, so this reports
    characters per second as well as texts per second.
    """
    from llm_backend.models.embedding_cache import encode_uncached

    data = slices()
    sets = {"Product reviews (180)": data["Product reviews (sample)"]["held-out"]["text"].tolist(),
            "Banking77 (300)": data["Banking77"]["dev"]["text"].tolist()[:300],
            "AG News (100)": data["AG News"]["dev"]["text"].tolist()[:100]}
    models = {m: get_model(reg.get(names[m])) for m in ("MiniLM", "mpnet")}
    for loaded in models.values():
        encode_uncached(loaded, ["warm up"] * 8)
    rows = []
    for name, texts in sets.items():
        best: dict[str, float] = {}
        for _ in range(rounds):
            for m, loaded in models.items():
                t0 = time.perf_counter()
                encode_uncached(loaded, texts)
                best[m] = min(best.get(m, float("inf")), time.perf_counter() - t0)
        chars = sum(len(t) for t in texts)
        for m in models:
            rows.append({"texts": name, "chars": chars, "model": m, "seconds": round(best[m], 2),
                         "chars/s": round(chars / best[m]), "x MiniLM time": round(best[m] / best["MiniLM"], 1)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prime", action="store_true", help="only encode (and store) every slice, then stop")
    ap.add_argument("--models", nargs="*", default=["MiniLM"], help="MiniLM, mpnet, e5")
    ap.add_argument("--data", nargs="*", default=list(KINDS))
    ap.add_argument("--no-mpnet", nargs="*", default=[], metavar="DATA:SLICE",
                    help="slices not run with mpnet (encoding them is too slow on a shared CPU)")
    ap.add_argument("--speed", action="store_true", help="only the MiniLM vs mpnet encoding speed (under flock)")
    args = ap.parse_args()
    reg = ModelRegistry()
    names = {"MiniLM": reg.default("embedder").name, "mpnet": "all-mpnet-base-v2", "e5": MULTILINGUAL_EMBEDDER}
    if args.speed:
        rows = speed(reg, names)
        OUT.mkdir(parents=True, exist_ok=True)
        md = ["# Encoding speed: MiniLM vs all-mpnet-base-v2 (the size rule of the zero-shot defaults)", "",
              f"Generated by `flock /tmp/zss-speed.lock bench/zero_shot_options.py --speed` on "
              f"{time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} CPU cores, shared; best of 2 interleaved rounds;"
              " the ratio is what carries over to other machines).", "", markdown_table(pd.DataFrame(rows))]
        (OUT / "zero_shot_embedder_speed.md").write_text("\n".join(md) + "\n", encoding="utf-8")
        return
    if not args.prime:
        options_table(reg, names, args.data, "mpnet" in args.models, args.no_mpnet)
        print(f"wrote {OUT / 'zero_shot_options.md'}")
        return
    for data in args.data:
        for sl, df in slices()[data].items():
            for m in args.models:
                loaded = get_model(reg.get(names[m]))
                vecs, s = prime(loaded, df["text"].astype(str).tolist())
                print(json.dumps({"data": data, "slice": sl, "model": m, "n": len(df), "encode_s": round(s, 1)}),
                      flush=True)


if __name__ == "__main__":
    main()
