"""Turn exceptions into messages: a UserError is shown as written, anything else as a short apology.

The traceback of an unexpected error goes to the server log, never to the page: analysts cannot act on it and it
may reveal paths.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from llm_backend.core.errors import UserError
from llm_backend.core.paths import redact

from .text import plain

log = logging.getLogger("zero_shot_studio")


@contextmanager
def user_errors(action: str = "That") -> Iterator[None]:
    try:
        yield
    except UserError as exc:
        st.error(plain(redact(str(exc)), 2000))
    except Exception as exc:  # Streamlit's stop/rerun signals derive from BaseException and pass through
        log.exception("Unexpected error during %s", action)
        st.error(f"{action} failed unexpectedly ({type(exc).__name__}: {plain(redact(str(exc)), 200)}). "
                 "Details are in the server log.")
