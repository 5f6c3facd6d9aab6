"""Workshop mode: one shared server, many participants, limits that keep it responsive for all of them.

With ``ZSS_WORKSHOP_MODE=1`` the operator runs the studio for a room of people. Every session then works within
the same small limits — rows per dataset, labels per set, seconds per run — and the bundled samples are read-only.
The checks raise :class:`UserError` subclasses with the limit and the reason in the message, so a participant who
hits one knows what to change, not just that something failed. Outside workshop mode every check passes.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

from llm_backend.core.config import get_settings
from llm_backend.core.errors import DataError, LabelError, UserError


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class WorkshopLimits:
    """The limits in force. ``enabled`` False means no limits (the single-analyst default)."""

    enabled: bool
    max_rows: int
    max_labels: int
    max_run_seconds: int
    samples_read_only: bool

    def describe(self) -> str:
        if not self.enabled:
            return "No workshop limits."
        return (f"Workshop mode: up to {self.max_rows:,} rows per dataset, {self.max_labels} labels per set and "
                f"{self.max_run_seconds} s per run; bundled samples are read-only.")


def limits() -> WorkshopLimits:
    """Limits from the environment, read on each call so tests and operators can change them without a restart."""
    enabled = get_settings().workshop_mode
    return WorkshopLimits(
        enabled=enabled,
        max_rows=_env_int("ZSS_WORKSHOP_MAX_ROWS", 2000),
        max_labels=_env_int("ZSS_WORKSHOP_MAX_LABELS", 50),
        max_run_seconds=_env_int("ZSS_WORKSHOP_MAX_RUN_SECONDS", 300),
        samples_read_only=enabled,
    )


class WorkshopLimitError(UserError):
    """A workshop limit was reached."""


def check_rows(n: int) -> None:
    lim = limits()
    if lim.enabled and n > lim.max_rows:
        raise DataError(
            f"This workshop allows at most {lim.max_rows:,} rows per dataset so everyone's runs stay fast; "
            f"the dataset has {n:,}. Use 'Rows to use' to sample it down."
        )


def check_labels(n: int) -> None:
    lim = limits()
    if lim.enabled and n > lim.max_labels:
        raise LabelError(
            f"This workshop allows at most {lim.max_labels} labels per set; this set has {n}. "
            "Merge or drop some labels."
        )


def row_cap(n: int) -> int:
    """The number of rows a page may offer: ``n`` outside workshop mode, else at most the workshop limit."""
    lim = limits()
    return min(n, lim.max_rows) if lim.enabled else n


class RunTimer:
    """A deadline for one run. Long loops call :meth:`check` between batches; outside workshop mode it never fires.

    Checking between batches (not killing a thread) means a stopped run leaves no half-written state behind.
    """

    def __init__(self, what: str = "This run") -> None:
        self.what = what
        self.limit = limits().max_run_seconds if limits().enabled else None
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expired(self) -> bool:
        return self.limit is not None and self.elapsed() > self.limit

    def message(self) -> str:
        return (f"{self.what} was stopped after {self.limit} s, the workshop's time limit per run. "
                "Use fewer rows or a faster method.")

    def check(self) -> None:
        if self.expired():
            raise WorkshopLimitError(self.message())

    def progress(self, progress: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
        """A progress callback that first enforces the deadline: backend loops report progress between batches,
        so every run that reports progress (embedding, scoring, prompting) stops there once time is up."""

        def report(done: int, total: int) -> None:
            self.check()
            if progress is not None:
                progress(done, total)

        return report

    def should_stop(self, should_stop: Callable[[], bool] | None) -> Callable[[], bool]:
        """A stop poll that also says "stop" once time is up: training ends gracefully and keeps its weights."""

        def poll() -> bool:
            return self.expired() or bool(should_stop and should_stop())

        return poll


def check_writable_sample(path: str | os.PathLike[str]) -> None:
    """Refuse writes into the bundled samples folder in workshop mode (they are shared by every participant)."""
    from pathlib import Path

    from llm_backend.data.files import SAMPLES_DIR

    if not limits().samples_read_only:
        return
    target = Path(path).resolve()
    if target == SAMPLES_DIR.resolve() or target.is_relative_to(SAMPLES_DIR.resolve()):
        raise WorkshopLimitError("The bundled samples are read-only in this workshop. Save a copy under another name.")
