"""Chinese zero-shot and few-shot quality: English default vs plain multilingual baseline vs the language-aware defaults.

Data (``../shared/data``, never copied): THUCNews (1,000 long news articles, 14 topics, Chinese label names) and
ECDT (2,099 short assistant requests, 31 intents, English label names). Seeded, disjoint *dev* slices chose the
defaults (template, truncation); the *held-out* slices are reported. Settings compared, label names only:

* ``English default`` — what a user got before: MiniLM, "This text is about {label}.", refinement, centering;
* ``plain multilingual`` — multilingual-e5-small, cosine to the bare label names, prior centering;
* ``language-aware default`` — what the page now picks from the detected language: e5, the language's template,
  one refinement pass, centering.

Then 8 labelled rows per intent on ECDT: logistic head on e5 embeddings (and ``--setfit``: SetFit on e5).

    nice .venv/bin/python bench/multilingual_quality.py [--setfit]

Writes bench/results/multilingual_quality.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import f1_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("ZSS_FORCE_CPU", "1")

from llm_backend.data.language import default_template, detect_language, recommended_embedder, template_language  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import MULTILINGUAL_EMBEDDER, ModelRegistry  # noqa: E402
from llm_backend.scorers.embedding import DEFAULT_TEMPLATE, EmbeddingScorer  # noqa: E402
from llm_backend.scorers.zero_shot import run_scorer  # noqa: E402
from shared_data import SHARED, markdown_table  # noqa: E402

OUT = ROOT / "bench" / "results"


def split(df: pd.DataFrame, n_dev: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return shuffled.iloc[:n_dev], shuffled.iloc[n_dev:]


def macro_f1(gold, pred) -> float:
    return round(float(f1_score(list(gold), list(pred), average="macro")), 4)


def zero_shot(reg: ModelRegistry, sets: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> list[dict]:
    mini = get_model(reg.default("embedder"))
    e5 = get_model(reg.get(MULTILINGUAL_EMBEDDER))
    rows = []
    for name, (dev, test) in sets.items():
        report = detect_language(test["text"])
        lang_emb = get_model(reg.get(recommended_embedder(report)))
        template = default_template(template_language(report, sorted(test["label"].unique())))
        settings = {
            "English default (MiniLM, English template)": (mini, [DEFAULT_TEMPLATE], 1),
            "plain multilingual (e5, bare label names)": (e5, ["{label}"], 0),
            f"language-aware default ({lang_emb.spec.name}, “{template}”)": (lang_emb, [template], 1),
        }
        for setting, (model, templates, refine) in settings.items():
            row = {"data": name, "setting": setting}
            for part, df in (("dev", dev), ("held-out", test)):
                labels = sorted(df["label"].unique())
                res = run_scorer(EmbeddingScorer(model, templates, refine=refine), df["text"].tolist(), labels)
                row[f"{part} macro-F1 ({len(df)})"] = macro_f1(df["label"], res.pred)
            rows.append(row)
            print(row, flush=True)
    return rows


def few_shot(reg: ModelRegistry, df: pd.DataFrame, setfit: bool, k: int = 8, seed: int = 0) -> list[dict]:
    from llm_backend.training.trained_models import predict
    from llm_backend.training.trainer import TrainConfig, train

    e5 = get_model(reg.get(MULTILINGUAL_EMBEDDER))
    train_df = df.groupby("label", group_keys=False).sample(n=k, random_state=seed)
    test_df = df.drop(train_df.index)
    rows = []
    for method in ["head"] + (["setfit"] if setfit else []):
        start = time.perf_counter()
        cfg = TrainConfig(method=method, seed=seed, num_pairs=20 * len(train_df) if method == "setfit" else None)
        result = train(train_df["text"].tolist(), train_df["label"].tolist(), cfg, e5)
        pred, _ = predict(result.model, test_df["text"].tolist())
        rows.append({"data": f"ECDT intents, {k} per class ({len(train_df)} train, {len(test_df)} test)",
                     "method": f"{method} on {MULTILINGUAL_EMBEDDER}", "macro-F1": macro_f1(test_df["label"], pred),
                     "train s": round(time.perf_counter() - start, 1)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--setfit", action="store_true")
    ap.add_argument("--news-dev", type=int, default=200, help="THUCNews dev rows (the rest up to --news-test is held out)")
    ap.add_argument("--news-test", type=int, default=300)
    ap.add_argument("--intents-dev", type=int, default=300)
    ap.add_argument("--intents-test", type=int, default=600)
    args = ap.parse_args()
    reg = ModelRegistry()
    news = pd.read_csv(SHARED / "thucnews_dev.csv")
    ecdt = pd.read_csv(SHARED / "ecdt_train.csv")
    news_dev, news_test = split(news, args.news_dev)
    ecdt_dev, ecdt_test = split(ecdt, args.intents_dev)
    sets = {"THUCNews topics (14)": (news_dev, news_test.iloc[: args.news_test]),
            "ECDT intents (31)": (ecdt_dev, ecdt_test.iloc[: args.intents_test])}
    result = {"zero_shot": zero_shot(reg, sets), "few_shot": few_shot(reg, ecdt_test, args.setfit)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "multilingual_quality.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    md = ["# Chinese quality (label names only)", "",
          f"Generated by `bench/multilingual_quality.py{' --setfit' if args.setfit else ''}` on "
          f"{time.strftime('%Y-%m-%d')}. Dev slices chose the defaults; read the held-out columns. Chance macro-F1: "
          "about 1/14 (news) and 1/31 (intents).", "", markdown_table(pd.DataFrame(result["zero_shot"])), "",
          "## Few-shot on the intents (held-out rows minus the training rows)", "",
          markdown_table(pd.DataFrame(result["few_shot"]))]
    (OUT / "multilingual_quality.md").write_text("\n".join(md) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
