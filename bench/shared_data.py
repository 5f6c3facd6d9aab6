"""What every bench script reads and writes the same way: the shared labelled data and markdown tables.

The data lives in ``../shared/data`` (or ``ZSS_SHARED_DATA``). AG News is a header-less CSV of (class id, title,
description) whose descriptions carry stray backslashes; loading it in one place keeps every bench measuring on the
same texts, so their numbers can be compared.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ZSS_SHARED_DATA", ROOT.parent / "shared" / "data"))
AG_NEWS_CSV = SHARED / "ag_news_test.csv"
AG_NEWS_NAMES = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tech"}


def _require(path: Path) -> Path:
    if not path.is_file():
        sys.exit(f"{path.name} not found at {path}; set ZSS_SHARED_DATA to the folder that holds it")
    return path


def ag_news() -> pd.DataFrame:
    """AG News test split (7,600 rows) as ``text`` ("title. description") and ``label`` (the class name)."""
    df = pd.read_csv(_require(AG_NEWS_CSV), header=None, names=["label_id", "title", "description"])
    return pd.DataFrame({"text": df["title"] + ". " + df["description"].str.replace("\\", " ", regex=False),
                         "label": df["label_id"].map(AG_NEWS_NAMES)})


def banking77() -> pd.DataFrame:
    """Banking77 train split as ``text`` and ``label`` (the intent name, e.g. ``card_arrival``)."""
    return pd.read_csv(_require(SHARED / "banking77_train.csv")).rename(columns={"category": "label"})


def markdown_table(df: pd.DataFrame) -> str:
    """A pipe table without pandas' optional ``tabulate`` dependency; missing values are left blank."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join("" if (isinstance(v, float) and v != v) else str(v) for v in row) + " |")
    return "\n".join(lines)


def thucnews() -> pd.DataFrame:
    """THUCNews sample (1,000 Chinese news articles, 14 topics with Chinese names) as ``text`` and ``label``."""
    return pd.read_csv(_require(SHARED / "thucnews_dev.csv"))[["text", "label"]]


def ecdt() -> pd.DataFrame:
    """ECDT (2,099 short Chinese assistant requests, 31 intents with English names) as ``text`` and ``label``."""
    return pd.read_csv(_require(SHARED / "ecdt_train.csv"))[["text", "label"]]


def few_shot_split(labels: list[str], k: int, seed: int, n_test: int):
    """The few-shot protocol of bench/fine_tune.py, bench/gpu_fine_tune.py and bench/setfit_seeds_cpu.py, in one
    place so their figures stay comparable: k training rows per class (the app's own sampler), ``n_test`` seeded
    held-out rows from the rest, and the remaining rows as the unlabelled pool. Returns (train_idx, test_idx, pool,
    rng); the benches draw their unlabelled rows from ``rng.permutation(pool)`` next, so the generator is returned
    in the state those draws have always started from."""
    from llm_backend.data.sampler import select_per_class

    train_idx, _ = select_per_class(labels, k, seed)
    rest = np.setdiff1d(np.arange(len(labels)), train_idx)
    rng = np.random.default_rng(seed)
    test_idx = np.sort(rng.choice(rest, min(n_test, len(rest)), replace=False))
    return train_idx, test_idx, np.setdiff1d(rest, test_idx), rng
