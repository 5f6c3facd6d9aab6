"""Saving runs from any page in one call, without ever breaking the page.

Pages call :func:`record_run` after they compute metrics (or wrap the work in :func:`tracked_run`, which also saves
failures and survives crashes as "interrupted"). The helpers find the store, the session's project, the active
dataset's fingerprint and the current label set themselves, so a page passes only what it knows: its name, the
method, the model, its settings and the metrics. Saving is a side effect the analyst did not ask for, so a store
failure (disk full, damaged file) becomes a ``st.warning`` and the page's results still show.

Typical use in a page::

    from ui.persistence import record_run
    metrics = evaluate(gold, pred, label_names)
    record_run("zero-shot", method="similarity", model=spec.name,
               settings={"threshold": t, "multi_label": multi}, metrics=metrics)

Each browser session has its own current project (``st.session_state["zss_project"]``, default ``"default"``; in
workshop mode a private per-session project, so participants do not see each other's runs).
"""
from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import streamlit as st

from llm_backend.core.config import get_settings
from llm_backend.core.paths import redact
from llm_backend.store.database import Store, Versioned, get_store

from . import state
from .text import plain

log = logging.getLogger("zero_shot_studio")

PROJECT = "zss_project"  # str: the session's current project name
TEMPLATE_TO_LOAD = "zss_template_to_load"  # dict: a saved template the prompt page may pick up
LAST_RUN_ID = "zss_last_run_id"  # int: the id of the last run this session saved
DEFAULT_PROJECT = "default"


def _warn(action: str, exc: BaseException) -> None:
    log.warning("Experiments store: %s failed", action, exc_info=exc)
    st.warning(f"{action} was not saved to Experiments: {plain(redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__), 300)}")


def store_or_none() -> Store | None:
    """The process-wide store, or None (with a warning on the page) when the database cannot be opened."""
    try:
        return get_store()
    except Exception as exc:  # noqa: BLE001 - any failure here must not break the page
        _warn("The experiments database", exc)
        return None


def current_project() -> str:
    """The session's project name; created lazily in the store on first save."""
    name = st.session_state.get(PROJECT)
    if not name:
        name = f"session-{uuid.uuid4().hex[:8]}" if get_settings().workshop_mode else DEFAULT_PROJECT
        st.session_state[PROJECT] = name
    return str(name)


def set_project(name: str) -> None:
    st.session_state[PROJECT] = name.strip()


def _dataset_id(store: Store, project_id: int) -> int | None:
    ds = state.get_dataset()
    if ds is None:
        return None
    source = ds.name if not ds.source_rows or ds.source_rows == len(ds.df) else (
        f"{ds.name} ({len(ds.df):,} of {ds.source_rows:,} rows)")
    return store.ensure_dataset(project_id, ds.name, ds.fingerprint, source=source, n_rows=len(ds.df),
                                text_column=ds.text_column, gold_column=ds.gold_column)


def _label_set_id(store: Store, project_id: int, labels: Sequence[Any] | None, name: str | None) -> int | None:
    labels = labels if labels is not None else state.get(state.LABELS)
    if not labels:
        return None
    if not name:  # named after the data it was used on, not "working set vN" (issue 18)
        ds = state.get_dataset()
        name = f"{ds.name} labels" if ds is not None else "working set"
    return store.save_label_set(project_id, name, list(labels)).id


def _template_id(store: Store, project_id: int, template: Mapping[str, Any] | None, name: str) -> int | None:
    if not template:
        return None
    return store.save_template(project_id, name, template).id


def record_run(
    page: str,
    method: str,
    model: str,
    settings: Mapping[str, Any] | None,
    metrics: Mapping[str, Any] | None,
    *,
    status: str = "done",
    error: str = "",
    labels: Sequence[Any] | None = None,
    labels_name: str | None = None,
    template: Mapping[str, Any] | None = None,
    template_name: str = "working template",
    note: str = "",
) -> int | None:
    """Save one finished run and return its id, or None after showing a warning. Never raises.

    ``page`` is the run's kind (``"zero-shot"``, ``"prompt"``, ``"embedding-map"``, ``"fine-tune"``...). ``labels``
    defaults to the session's current label set; pass ``template`` (a dict) from the prompt page. Metrics are
    stored as given: pass :func:`llm_backend.evaluation.metrics.evaluate`'s dict so accuracy and macro-F1 show in the list.
    """
    try:
        store = get_store()
        pid = store.ensure_project(current_project())
        run_id = store.start_run(
            pid, page, method, model, settings or {},
            dataset_id=_dataset_id(store, pid),
            label_set_id=_label_set_id(store, pid, labels, labels_name),
            template_id=_template_id(store, pid, template, template_name),
            note=note,
        )
        store.finish_run(run_id, metrics or {}, status=status, error=redact(error))
        st.session_state[LAST_RUN_ID] = run_id
        return run_id
    except Exception as exc:  # noqa: BLE001 - saving must never break the page that computed the results
        _warn("This run", exc)
        return None


@dataclass
class RunHandle:
    """What :func:`tracked_run` yields: set ``metrics`` (and optionally ``settings``) before the block ends."""

    run_id: int | None
    metrics: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@contextmanager
def tracked_run(
    page: str,
    method: str,
    model: str,
    settings: Mapping[str, Any] | None = None,
    *,
    labels: Sequence[Any] | None = None,
    labels_name: str | None = None,
    template: Mapping[str, Any] | None = None,
    template_name: str = "working template",
) -> Iterator[RunHandle]:
    """Save a run as *running* before long work, then *done* with ``handle.metrics`` or *failed* with the error.

    If the server dies inside the block the row stays *running* and the Experiments page shows it as interrupted.
    Exceptions from the block are re-raised unchanged (so ``user_errors`` still shows them); store failures are
    only warnings.
    """
    handle = RunHandle(None, settings=dict(settings or {}))
    store: Store | None = None
    try:
        store = get_store()
        pid = store.ensure_project(current_project())
        handle.run_id = store.start_run(
            pid, page, method, model, handle.settings,
            dataset_id=_dataset_id(store, pid),
            label_set_id=_label_set_id(store, pid, labels, labels_name),
            template_id=_template_id(store, pid, template, template_name),
        )
    except Exception as exc:  # noqa: BLE001
        _warn("This run", exc)
    try:
        yield handle
    except BaseException as exc:
        if store is not None and handle.run_id is not None and isinstance(exc, Exception):
            try:
                store.fail_run(handle.run_id, redact(f"{type(exc).__name__}: {exc}"))
            except Exception as store_exc:  # noqa: BLE001
                log.warning("Could not mark run %s failed: %s", handle.run_id, store_exc)
        raise
    if store is not None and handle.run_id is not None:
        try:
            if handle.settings != dict(settings or {}):
                store.update_settings(handle.run_id, handle.settings)
            store.finish_run(handle.run_id, handle.metrics)
            st.session_state[LAST_RUN_ID] = handle.run_id
        except Exception as exc:  # noqa: BLE001
            _warn("This run", exc)


def save_label_set(labels: Sequence[Any], name: str) -> Versioned | None:
    """Save a named label set (a new version when it changed). Returns the version, or None after a warning."""
    try:
        store = get_store()
        return store.save_label_set(store.ensure_project(current_project()), name, list(labels))
    except Exception as exc:  # noqa: BLE001
        _warn("The label set", exc)
        return None


def save_template(template: Mapping[str, Any], name: str) -> Versioned | None:
    """Save a named prompt template dict (a new version when it changed). Returns it, or None after a warning."""
    try:
        store = get_store()
        return store.save_template(store.ensure_project(current_project()), name, template)
    except Exception as exc:  # noqa: BLE001
        _warn("The template", exc)
        return None


def record_trained_model(name: str, path: str, *, base_model: str = "", info: Mapping[str, Any] | None = None,
                         run_id: int | None = None) -> int | None:
    """Link a model the fine-tune page saved to the session's project (and to its run, if given)."""
    try:
        store = get_store()
        return store.add_trained_model(store.ensure_project(current_project()), name, path,
                                       run_id=run_id if run_id is not None else st.session_state.get(LAST_RUN_ID),
                                       base_model=base_model, info=info)
    except Exception as exc:  # noqa: BLE001
        _warn("The trained model", exc)
        return None
