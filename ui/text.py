"""Showing strings the user (or another user, through the shared store) typed as plain text.

Streamlit renders markdown in ``st.caption``/``st.info``/``st.error``/widget labels and even in ``:red[...]`` colour
and ``:material/...:`` icon directives and ``$...$`` LaTeX. A dataset name like ``![x](http://host/pixel.png)``
would load an image from anywhere in every other workshop participant's Experiments page (issue 13), a column name
like ``**Done**`` would restyle the sidebar. Every user- or store-provided string goes through :func:`plain` before
it is placed into markdown; :func:`plain` escapes every ASCII punctuation character with a backslash, which
CommonMark defines as "show this character literally", so the text reads exactly as typed.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

_PUNCT = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
_SPACE = re.compile(r"[\r\n\t\u2028\u2029]+")


def plain(value: Any, max_chars: int | None = 300) -> str:
    """``value`` as literal text inside markdown: punctuation escaped, line breaks folded, long values cut.

    Cutting keeps a 10,000-character name from filling the page; the full value stays available in tables
    (``st.dataframe`` never renders markdown).
    """
    s = "" if value is None else str(value)
    s = _SPACE.sub(" ", s)
    if max_chars is not None and len(s) > max_chars:
        s = s[:max_chars] + "…"
    return _PUNCT.sub(r"\\\1", s)


def plain_list(values: Iterable[Any], limit: int = 20, sep: str = ", ") -> str:
    """Several user strings joined, each escaped, with "…" after ``limit`` of them."""
    vals = list(values)
    shown = sep.join(plain(v, 120) for v in vals[:limit])
    return shown + (" …" if len(vals) > limit else "")
