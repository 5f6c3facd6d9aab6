"""Language-aware defaults on the pages: a few calls into :mod:`llm_backend.data.language`, drawn with Streamlit."""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from llm_backend.data.language import (
    LanguageReport,
    default_template,
    detect_language,
    label_language_warning,
    language_notice,
    recommended_embedder,
    template_language,
)
from llm_backend.scorers.embedding import DEFAULT_TEMPLATE


def dataset_language(df, text_column: str) -> LanguageReport:
    """The detected language of a dataset's text column, computed once per (data, column) in this session."""
    key = ("zss_language", id(df), text_column, len(df))
    cached = st.session_state.get("zss_language")
    if cached is None or cached[0] != key:
        cached = (key, detect_language(df[text_column].tolist()))
        st.session_state["zss_language"] = cached
    return cached[1]


def show_language_notice(df, text_column: str) -> LanguageReport:
    """On load: which language was detected, and which embedder/template that selects (nothing for English)."""
    report = dataset_language(df, text_column)
    message = language_notice(report)
    if message:
        st.info(message, icon="🌐")
    return report


def embedder_index(names: Sequence[str], report: LanguageReport) -> int:
    """Index of the language's recommended embedder among the selectbox options (0 when it is not offered)."""
    wanted = recommended_embedder(report)
    return list(names).index(wanted) if wanted in names else 0


def template_default(report: LanguageReport, label_names: Sequence[str] = ()) -> str:
    """The hypothesis template to prefill: in the labels' (else the texts') language for non-English data."""
    if not report.needs_multilingual:
        return DEFAULT_TEMPLATE
    return default_template(template_language(report, label_names))


def warn_label_language(label_names: Sequence[str], report: LanguageReport, embedder_name: str | None) -> None:
    message = label_language_warning(label_names, report, embedder_name)
    if message:
        st.warning(message)
