"""Showing strings the user (or another user, through the shared store) typed as plain text.

Streamlit renders markdown in ``st.caption``/``st.info``/``st.error``/widget labels and even in ``:red[...]`` colour
and ``:material/...:`` icon directives and ``$...$`` LaTeX. A dataset name like ``![x](http://host/pixel.png)``
would load an image from anywhere in every other workshop participant's Experiments page (issue 13), a column name
like ``**Done**`` would restyle the sidebar. Every user- or store-provided string goes through :func:`plain` before
it is placed into markdown; :func:`plain` backslash-escapes the characters that start markdown or Streamlit syntax
(CommonMark: a backslash before punctuation shows it literally), so the text reads exactly as typed.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

# Characters that start markdown/Streamlit syntax anywhere in a line: code, emphasis, links and images, HTML and
# autolinks, LaTeX, strikethrough, tables. Escaping only these keeps ordinary text (and its punctuation) verbatim.
_ALWAYS = re.compile(r"([\\`*\[\]<>$~|])")
_LOOSE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")  # intraword "a_b" never emphasises
_DIRECTIVE = re.compile(r":(?=[A-Za-z0-9_/-]+[\[:])")  # :red[…], :material/icon:, :emoji:
_LINE_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")  # headings, quotes, lists at the start of the text
_SPACE = re.compile(r"[\r\n\t\u2028\u2029]+")


def plain(value: Any, max_chars: int | None = 300) -> str:
    """``value`` as literal text inside markdown: syntax characters escaped, line breaks folded, long values cut.

    Cutting keeps a 10,000-character name from filling the page; the full value stays available in tables
    (``st.dataframe`` never renders markdown).
    """
    s = "" if value is None else str(value)
    s = _SPACE.sub(" ", s)
    if max_chars is not None and len(s) > max_chars:
        s = s[:max_chars] + "…"
    s = _ALWAYS.sub(r"\\\1", s)
    s = _LOOSE_UNDERSCORE.sub(r"\\_", s)
    s = _DIRECTIVE.sub(r"\\:", s)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)


def plain_list(values: Iterable[Any], limit: int = 20, sep: str = ", ") -> str:
    """Several user strings joined, each escaped, with "…" after ``limit`` of them."""
    vals = list(values)
    shown = sep.join(plain(v, 120) for v in vals[:limit])
    return shown + (" …" if len(vals) > limit else "")
