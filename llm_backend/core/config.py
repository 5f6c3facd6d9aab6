"""Settings read from the environment, in one place.

Everything the operator may want to change without editing code lives here, so the pages, the CLI and the tests
agree on limits and folders. Importing this module also sets ``HF_HUB_OFFLINE=1`` unless the user chose otherwise:
without it a missing model makes huggingface_hub retry for about a minute before failing, which looks like a hang.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Fail fast instead of retrying an unreachable hub. Users with network can export HF_HUB_OFFLINE=0.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
# tokenizers' thread pool fights with Streamlit's threads and prints a warning after fork.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Operator settings. Built from the environment by :func:`get_settings`."""

    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("ZSS_DATA_DIR", PROJECT_ROOT / "zss_data")))
    max_upload_mb: int = field(default_factory=lambda: _env_int("ZSS_MAX_UPLOAD_MB", 200))
    max_rows: int = field(default_factory=lambda: _env_int("ZSS_MAX_ROWS", 200_000))
    force_cpu: bool = field(default_factory=lambda: _env_bool("ZSS_FORCE_CPU"))
    max_text_chars: int = field(default_factory=lambda: _env_int("ZSS_MAX_TEXT_CHARS", 4000))
    workshop_mode: bool = field(default_factory=lambda: _env_bool("ZSS_WORKSHOP_MODE"))
    #: The causal LM prompt runs use by default (a registered name); empty: the measured default
    #: (``llm_backend.prompts.runner.DEFAULT_PROMPT_LM``). The test suite sets SmolLM2, which loads in seconds.
    prompt_lm: str = field(default_factory=lambda: os.environ.get("ZSS_PROMPT_LM", "").strip())

    @property
    def cache_dir(self) -> Path:
        """Dequantised LMs and other derived artefacts; safe to delete."""
        return Path(os.environ.get("ZSS_CACHE_DIR", self.data_dir / "cache"))

    @property
    def models_dir(self) -> Path:
        """Trained models saved by the fine-tune page; they show up in the registry."""
        return Path(os.environ.get("ZSS_MODELS_DIR", self.data_dir / "models"))

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


def get_settings() -> Settings:
    """Fresh settings each call, so tests can change the environment with monkeypatch."""
    return Settings()
