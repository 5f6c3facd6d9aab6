"""Issue 17, label wording help where it is meant to matter: short, cryptic label names.

The slices of bench/label_wording.py all have readable names ("World", "card_arrival"); there the wording help had
nothing to add. Here the same kinds of data get their label names replaced by a fixed, mechanical abbreviation
rule decided before any result was looked at (:func:`abbreviate`, documented in docs/zero-shot.md, "Cryptic label
names"):

* every run of letters/digits in the name is cut to its first 3 characters, separators and case kept:
  "card_arrival" -> "car_arr", "Sci/Tech" -> "Sci/Tec", "Business" -> "Bus", "translation" -> "tra";
* names that collide are cut one character longer (4, 5, ...) until they are unique, only within the colliding
  group ("train" / "translation" -> "trai" / "tran");
* gold labels map to the cryptic names one to one, so macro-F1 is comparable with the readable names.

Data: AG News (topics), Banking77 (77 intents), ECDT (31 Chinese intents, English names). Skipped: THUCNews (its
names are two-character Chinese words, already the shortest a Chinese word gets; one character is not an
abbreviation a person would write and 时尚/时政 collide) and the product reviews sample (180 rows, all already used).

Slices are NEW rows: the same seed-7 shuffle as bench/zero_shot_options.py, taking only rows *after* the old dev
and held-out slices (never used by the wording work), split into a dev slice and a held-out slice.

Choices made on the dev slices (every figure in bench/results/label_wording_cryptic.md, dev rows):

* Added to the wording help for cryptic names: *spelling the name out* from the corpus
  (llm_backend.scorers.label_suggestions.expand_abbreviation; the spelled-out phrase replaces the cut-short one in
  the model's sentences, the name written to predictions stays). Tried and dropped on dev: redrawing the confident
  rows with the spelled-out names before taking the words (AG News 0.752 -> 0.479) and asking SmolLM2 to spell out
  what the corpus could not (ECDT: "cal" -> "calorimetry", "cha" -> "cha-cha-cha"; 0.163 -> 0.147).
* Selection rule, fixed (and committed) before the one held-out run: the product default is the option, among
  "as before", "spelled-out names only" and "spelled-out names + words", with the best mean proposed macro-F1 over
  the three cryptic dev slices; an option within 1 point of the best and simpler (in that order) wins; it must not
  lower the proposed macro-F1 of any readable-names dev slice by more than 1 point. Applied: "spelled-out names +
  words" (dev mean 0.463 vs 0.435 spelled-out only and 0.223 as before; readable names: proposal unchanged on all
  three). The LM checkbox adds LM sentences to that default; it is reported, not chosen.

Run (dev first; held-out once, after the selection rule is committed):

    nice -n 10 .venv/bin/python bench/label_wording_cryptic.py --slices dev
    nice -n 10 .venv/bin/python bench/label_wording_cryptic.py --slices held-out

Writes bench/results/label_wording_cryptic_<slice>.json and bench/results/label_wording_cryptic.md (both slices
when both json files exist).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

import numpy as np
import pandas as pd

from bench_env import OUT  # first: sys.path, model cache, offline

from bench_embeddings import prime  # noqa: E402
from shared_data import ag_news, banking77, ecdt, markdown_table  # noqa: E402

from llm_backend.data.labels import Label, make_labels  # noqa: E402
from llm_backend.models.embedding_cache import embed_texts  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import ModelRegistry  # noqa: E402
from llm_backend.scorers.embedding import EmbeddingScorer  # noqa: E402
from llm_backend.scorers.label_descriptions import lm_descriptions  # noqa: E402
from llm_backend.scorers.label_suggestions import apply_suggestions, suggest_label_wording  # noqa: E402
from llm_backend.scorers.self_training import SelfTrainingScorer  # noqa: E402
from llm_backend.scorers.wording_help import partition_signals, wording_help  # noqa: E402
from llm_backend.scorers.zero_shot import run_scorer  # noqa: E402

KINDS = {"AG News": "topic", "Banking77": "intent", "ECDT": "language (zh intent, English names)"}
#: (rows of the old dev + held-out slices in the seed-7 shuffle, new dev rows, new held-out rows)
SIZES = {"AG News": (1400, 400, 1000), "Banking77": (2100, 600, 1200), "ECDT": (900, 400, 799)}


def abbreviate(name: str, n: int = 3) -> str:
    """Every run of letters/digits cut to its first ``n`` characters; separators and case kept."""
    return re.sub(r"[^\W_]+", lambda m: m.group(0)[:n], name)


def cryptic_names(names: list[str]) -> dict[str, str]:
    """{readable name: cryptic name}, unique: colliding names are cut one character longer until they differ."""
    n = {name: 3 for name in names}
    while True:
        out = {name: abbreviate(name, n[name]) for name in names}
        seen: dict[str, list[str]] = {}
        for name, c in out.items():
            seen.setdefault(c, []).append(name)
        clashes = [group for group in seen.values() if len(group) > 1]
        if not clashes:
            return out
        for group in clashes:
            for name in group:
                n[name] += 1


def slices(data_sets: list[str]) -> dict[str, dict[str, pd.DataFrame]]:
    """New dev / held-out slices: rows after the old ones in the seed-7 shuffle of bench/zero_shot_options.py."""
    load = {"AG News": ag_news, "Banking77": banking77, "ECDT": ecdt}
    out = {}
    for data in data_sets:
        used, n_dev, n_test = SIZES[data]
        shuffled = load[data]().sample(frac=1.0, random_state=7).reset_index(drop=True)
        rest = shuffled.iloc[used:]
        assert len(rest) >= n_dev + n_test, (data, len(rest))
        mapping = cryptic_names(sorted(set(shuffled["label"].astype(str))))  # from the whole label set
        out[data] = {"dev": rest.iloc[:n_dev].reset_index(drop=True),
                     "held-out": rest.iloc[n_dev:n_dev + n_test].reset_index(drop=True)}
        for df in out[data].values():
            df.attrs["cryptic"] = mapping
    return out


def setup(reg: ModelRegistry, df: pd.DataFrame):
    """bench/label_wording.setup on the slice with its gold labels renamed to the cryptic names, plus the mapping."""
    from label_wording import setup as readable_setup

    mapping = {k: v for k, v in df.attrs["cryptic"].items() if k in set(df["label"].astype(str))}
    renamed = df.assign(label=[mapping[str(g)] for g in df["label"]])
    return (*readable_setup(reg, renamed), mapping)


#: Wording-help settings compared on the dev slices: (option name, keyword arguments of wording_help).
HELP_OPTIONS: list[tuple[str, dict]] = [
    ("wording help as before (words, no spelling out)", {"expand": False}),
    ("wording help as before + LM sentences", {"expand": False, "accept_lm": True}),
    ("NEW spelled-out names only", {"expand": True, "words": False}),
    ("NEW spelled-out names + words", {"expand": True}),  # the product default (chosen on dev, see the docstring)
    ("NEW spelled-out names + words + LM sentences", {"expand": True, "accept_lm": True}),  # the LM checkbox
]
#: Options also run with the readable names (does spelling out harm names that need none?).
READABLE_CHECK = ("NEW spelled-out names only", "NEW spelled-out names + words")


def table(reg: ModelRegistry, lm, which: str, data_sets: list[str], help_options: list[tuple[str, dict]]) -> list[dict]:
    rows: list[dict] = []
    for data in data_sets:
        df = slices([data])[data][which]
        texts, gold, labels, templates, loaded, mapping = setup(reg, df)
        minilm = get_model(reg.default("embedder"))
        prime(minilm, texts)

        def record(option: str, f1: float, model: str, changed: int | None = None, check: str = "",
                   n_accepted: str = "") -> None:
            rows.append({"data": data, "kind": KINDS[data], "slice": which, "n": len(gold), "model": model,
                         "option": option, "macro_f1": round(float(f1), 4), "labels changed": n_accepted,
                         "rows changed": changed, "label-free check": check})
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
            save(rows, which)

        readable = make_labels(sorted(mapping))
        inv = {v: k for k, v in mapping.items()}
        res = run_scorer(SelfTrainingScorer(loaded, templates), texts, readable)
        record("reference: readable names (the defaults)", res.evaluate([inv[g] for g in gold])["macro_f1"],
               loaded.spec.name)
        res = run_scorer(EmbeddingScorer(minilm, refine=0), texts, labels, calibration="none")
        record("plain baseline (cryptic names)", res.evaluate(gold)["macro_f1"], minilm.spec.name)
        scorer = SelfTrainingScorer(loaded, templates)
        names = run_scorer(scorer, texts, labels)
        record("defaults (cryptic names)", names.evaluate(gold)["macro_f1"], loaded.spec.name)
        x = embed_texts(loaded, texts)
        sig_names = partition_signals(x, names.pred, names.probs)

        def check(res) -> str:
            (sb, cb), (sa, ca) = sig_names, partition_signals(x, res.pred, res.probs)
            return (f"silhouette {sb:.3f}->{sa:.3f}, top prob {cb:.3f}->{ca:.3f}: "
                    + ("both rise" if sa > sb and ca > cb else "not both rise"))

        def changed(res) -> int:
            return int(np.sum(np.asarray(res.pred) != np.asarray(names.pred)))

        words = apply_suggestions(labels, suggest_label_wording(texts, x, labels, scorer.label_embeddings(labels)))
        res = run_scorer(scorer, texts, words)
        record("corpus words accepted (every cryptic label, ungated)", res.evaluate(gold)["macro_f1"],
               loaded.spec.name, changed(res), check(res))
        desc = lm_descriptions(lm, labels)
        with_lm = [Label(l.name, f"{l.phrase}: {desc[l.name]}" if desc[l.name] else "", l.phrasings, l.display)
                   for l in labels]
        res = run_scorer(scorer, texts, with_lm)
        record("LM sentences accepted (every label, ungated)", res.evaluate(gold)["macro_f1"], loaded.spec.name,
               changed(res), check(res))
        runs = [(o, kw, labels, gold, "") for o, kw in help_options]
        runs += [(o, kw, readable, [inv[g] for g in gold], "readable names: ") for o, kw in help_options
                 if o in READABLE_CHECK]
        for option, kwargs, labs, gold_here, prefix in runs:
            kw = dict(kwargs)
            if kw.get("accept_lm"):
                kw["lm"] = lm
            h = wording_help(scorer, texts, labs, gold=gold_here, **kw)
            (sb, cb), (sa, ca) = h.signals_names, h.signals_candidate
            verdict = (f"silhouette {sb:.3f}->{sa:.3f}, top prob {cb:.3f}->{ca:.3f}: "
                       + ("propose" if h.recommended else "keep the names"))
            spelled = [f"{c.name}->{c.expansion}" for c in h.checks if c.accept_expansion][:6]
            record(f"{prefix}{option}: candidate accepted", h.macro_f1_after, loaded.spec.name, h.changed_rows,
                   verdict + (f"; e.g. {', '.join(spelled)}" if spelled else ""), f"{h.n_accepted}/{len(labs)}")
            record(f"{prefix}{option}: what is proposed", h.macro_f1_after if h.recommended else h.macro_f1_before,
                   loaded.spec.name, h.changed_rows if h.recommended else 0)
    return rows


def summary(rows: list[dict]) -> str:
    """Option x (data, slice) macro-F1, with the mean over the slices of each kind of slice."""
    df = pd.DataFrame(rows)
    df["col"] = df["data"] + " " + df["slice"] + " (" + df["n"].astype(str) + ")"
    piv = df.pivot_table(index="option", columns="col", values="macro_f1", sort=False)
    first = ["reference: readable names (the defaults)", "plain baseline (cryptic names)", "defaults (cryptic names)"]
    piv = piv.loc[[o for o in first if o in piv.index] + [o for o in piv.index if o not in first]]
    for sl in ("dev", "held-out"):
        cols = [c for c in piv.columns if f" {sl} (" in c]
        if cols:
            piv[f"{sl} mean"] = piv[cols].mean(axis=1)
    return markdown_table(piv.round(3).reset_index())


def save(rows: list[dict], which: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"label_wording_cryptic_{which}.json"
    if not rows and path.is_file():  # --summary: only rewrite the tables from the saved rows
        rows = json.loads(path.read_text(encoding="utf-8"))
    new = {(r["data"], r["option"]) for r in rows}  # a run with --options replaces only its own rows
    kept = [r for r in json.loads(path.read_text(encoding="utf-8")) if (r["data"], r["option"]) not in new] \
        if path.is_file() and rows else []
    order = {d: i for i, d in enumerate(KINDS)}
    merged = sorted(kept + rows, key=lambda r: order.get(r["data"], 99))  # stable: options keep their order
    path.write_text(json.dumps(merged, indent=2, ensure_ascii=False), encoding="utf-8")
    both = []
    for sl in ("dev", "held-out"):
        p = OUT / f"label_wording_cryptic_{sl}.json"
        if p.is_file():
            both += json.loads(p.read_text(encoding="utf-8"))
    (OUT / "label_wording_cryptic.json").write_text(json.dumps(both, indent=2, ensure_ascii=False), encoding="utf-8")
    md = ["# Label wording help on cryptic label names (first 3 letters of each word)", "",
          f"Generated by `bench/label_wording_cryptic.py` (last run: `{' '.join(sys.argv[1:])}`, "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores shared with other jobs). Label names replaced by "
          "bench/label_wording_cryptic.abbreviate (\"card_arrival\" -> \"car_arr\", \"Sci/Tech\" -> \"Sci/Tec\"), "
          "unique by cutting colliding names longer. New rows (after the old wording slices in the seed-7 shuffle). "
          "Every option but the plain baseline runs the default method (self-training on the slice's default "
          "embedder). `labels changed`: labels the candidate adds words to; `rows changed`: rows whose label "
          "differs from the cryptic-names run. Dev slices chose every setting (the rule: this script's docstring); "
          "held-out was run once after the choice was committed: the product default is 'NEW spelled-out names + "
          "words'. 'readable names:' rows run the same option on the original names (does it harm names that need "
          "no help?). 'DROPPED' rows: variants tried on dev and removed from the product. Write-up: "
          "docs/zero-shot.md, 'Cryptic label names'.", "", "## Summary (macro-F1)", "", summary(both), "", "## Every row", "",
          markdown_table(pd.DataFrame(both)), ""]
    (OUT / "label_wording_cryptic.md").write_text("\n".join(md), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", choices=["dev", "held-out"], default="dev")
    ap.add_argument("--data", nargs="*", default=list(KINDS))
    ap.add_argument("--options", nargs="*", help="only these wording-help options (names as in HELP_OPTIONS)")
    ap.add_argument("--show-names", action="store_true", help="print the cryptic names and stop")
    ap.add_argument("--summary", action="store_true", help="only rewrite the .md from the saved rows")
    args = ap.parse_args()
    if args.show_names:
        for data in args.data:
            df = slices([data])[data]["dev"]
            print(data, len(df), df["label"].nunique(), json.dumps(df.attrs["cryptic"], ensure_ascii=False))
        return
    if args.summary:
        save([], args.slices)
        return
    reg = ModelRegistry()
    lm = get_model(reg.default("causal_lm"))
    table(reg, lm, args.slices, args.data,
          [o for o in HELP_OPTIONS if not args.options or o[0] in args.options])
    print(f"wrote {OUT / 'label_wording_cryptic.md'}")


if __name__ == "__main__":
    main()
