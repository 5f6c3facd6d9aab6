"""The "Export classifier" control: freeze what a page just ran into a classifier folder for ``batch`` scoring.

One call per page::

    export_classifier(res, texts, lambda: build_scorer(cfg)[0], key="zs_export")     # zero-shot page
    export_classifier(trained_model=name, key="ft_export")                            # fine-tune page (saved model)
    export_classifier(prompt_result=res, key="pt_export")                              # prompt page (run shown)

The classifier goes to ``<data dir>/classifiers/<name>`` and is listed in the experiment store with the session's
last run. Freezing checks that it reproduces the run shown; if the page's settings changed since, it says so.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import streamlit as st

from llm_backend.batch.frozen import (
    check_classifier_name,
    default_classifiers_dir,
    freeze_run,
    freeze_trained_folder,
    save_classifier,
)
from llm_backend.core.config import get_settings
from llm_backend.core.errors import UserError

from .errors import user_errors

log = logging.getLogger("zero_shot_studio")


def _record(name: str, path: str, clf: Any, run_id: int | None) -> None:
    try:
        from llm_backend.store.database import get_store

        from .persistence import current_project

        store = get_store()
        store.add_classifier(store.ensure_project(current_project()), name, path, run_id=run_id,
                             fingerprint=clf.fingerprint,
                             info={"method": clf.source.get("method"), "model": clf.source.get("model"),
                                   "labels": clf.label_names[:50], "n_labels": len(clf.labels)})
    except Exception as exc:  # noqa: BLE001 - the classifier is saved; the store entry is a convenience
        log.warning("Listing the classifier in the store failed", exc_info=exc)
        st.warning("The classifier was saved but could not be listed in Experiments.")


def export_classifier(result: Any = None, texts: Sequence[str] | None = None,
                      scorer: Any | Callable[[], Any] = None, *, trained_model: str | None = None,
                      unsupported: str | None = None, key: str = "export", default_name: str = "",
                      prompt_result: Any = None) -> None:
    """Render the export control (a name box and a button) and freeze on click.

    ``prompt_result``: a prompt-template run (:class:`~llm_backend.prompts.runner.PromptRunResult`); runs that
    cannot be frozen get a disabled button and the reason.
    """
    from .persistence import LAST_RUN_ID

    if prompt_result is not None and unsupported is None:
        from llm_backend.batch.freeze_prompt import export_problem

        unsupported = export_problem(prompt_result)

    with st.expander("Export classifier (for batch scoring)"):
        st.caption("Saves the label set with everything this run learnt from your data (refined label vectors, "
                   "calibration offsets, thresholds), so `python -m llm_backend batch` scores any number of rows "
                   "with exactly these predictions.")
        if unsupported:
            st.caption(unsupported)
            st.button("Export classifier", key=f"{key}_btn", disabled=True)
            return
        if trained_model is None and result is None and prompt_result is None:
            st.caption("Run first; the classifier is frozen from the run shown.")
            return
        name = st.text_input("Classifier name", default_name or (trained_model or "my-classifier"),
                             key=f"{key}_name", max_chars=80)
        if not st.button("Export classifier", key=f"{key}_btn"):
            return
        with user_errors("Exporting the classifier"):
            name = check_classifier_name(name)
            target = default_classifiers_dir() / name
            if target.exists():
                raise UserError(f"A classifier named '{name}' already exists. Choose another name.")
            run_id = st.session_state.get(LAST_RUN_ID)
            if prompt_result is not None:
                from llm_backend.batch.freeze_prompt import freeze_prompt_result

                from .models import get_model

                with st.spinner("Freezing (checking it reproduces the run)…"):
                    clf = freeze_prompt_result(prompt_result, get_model(prompt_result.model_spec), name=name,
                                               source={"page": key, "run_id": run_id})
            elif trained_model is not None:
                folder = get_settings().models_dir / check_classifier_name(trained_model)
                if not folder.is_dir():
                    raise UserError("Save the model first (Save model), then export it.")
                clf = freeze_trained_folder(folder, name=name)
            else:
                live = scorer() if callable(scorer) else scorer
                with st.spinner("Freezing (checking it reproduces the run)…"):
                    clf = freeze_run(live, list(texts or []), result.labels, result, name=name,
                                     source={"page": key, "run_id": run_id})
            clf.source["run_id"] = run_id
            path = save_classifier(clf, target)
            _record(name, str(path), clf, run_id)
            st.success(f"Saved classifier {name}. Score a file with:")
            st.code(f"python -m llm_backend batch --classifier {name} --input 'archive/*.parquet' "
                    "--text-column text --output predictions/", language="bash")
