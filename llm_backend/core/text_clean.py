"""Characters nobody can see: zero-width spaces, joiners, bidi controls, soft hyphens, byte-order marks.

They arrive with copy-paste from web pages and chat tools. In a label name they make ``billing`` and ``billing\u200b``
two distinct labels that look identical on screen (the issue-13 case); in a name shown to other users a bidi
override can make text read backwards. Labels and stored names are cleaned with :func:`strip_invisible`, and
duplicates are compared with :func:`label_key` (NFKC + casefold + collapsed spaces), so full-width ``ｂｉｌｌｉｎｇ``
and ``Billing`` count as one label too.
"""
from __future__ import annotations

import re
import unicodedata

# Cf (format) characters that render as nothing, plus the soft hyphen and the invisible math operators.
INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]")


def strip_invisible(text: str) -> str:
    """``text`` without invisible characters (see :data:`INVISIBLE`)."""
    return INVISIBLE.sub("", str(text))


def count_invisible(text: str) -> int:
    return len(INVISIBLE.findall(str(text)))


def label_key(name: str) -> str:
    """How two label names are compared for duplicates: visible characters only, NFKC, casefolded, one space."""
    s = unicodedata.normalize("NFKC", strip_invisible(name))
    return re.sub(r"\s+", " ", s).strip().casefold()
