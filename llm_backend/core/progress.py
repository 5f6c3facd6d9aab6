"""The one progress-callback shape used across the backend.

``progress(done, total)`` lets long loops report without knowing whether a Streamlit progress bar, a CLI line on
stderr or nothing at all is listening.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional

Progress = Optional[Callable[[int, int], None]]


def report(progress: Progress, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def stderr_progress(label: str) -> Callable[[int, int], None]:
    """A progress callback for the CLI: one rewritten line on stderr, so stdout stays clean for results."""

    def _cb(done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        end = "\n" if done >= total else ""
        print(f"\r{label}: {done}/{total} ({pct:.0f}%)", end=end, file=sys.stderr, flush=True)

    return _cb
