"""Which language a text column is in, and what that changes: the embedder, the hypothesis template, warnings.

The default English MiniLM is at chance on Chinese text (macro-F1 ≈ 0.08 on 14 news topics) and nothing used to say
why. Detection here is deliberately cheap and dependency-free: the Unicode script of the letters decides most cases
(Han → Chinese, kana → Japanese, Hangul → Korean, Cyrillic, Arabic, …), and for Latin script a count of very
common function words tells English from French, German, Spanish, Portuguese, Italian and Dutch. It runs on a
sample of rows (500 by default), per row, so a mixed column is reported as mixed with each language's share.

What this module decides (pages and the CLI only display it):
* :func:`recommended_embedder` — the multilingual embedder when the texts are not (mostly) English;
* :func:`template_language` / :func:`default_template` — a hypothesis template in the labels' language (the texts'
  when the labels are in the same one or have no letters), editable on the page;
* :func:`label_language_warning` — labels written in another language than the texts.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

#: (code, human name) per script block; first match wins per character.
_SCRIPT_RANGES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("kana", ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))),
    ("hangul", ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))),
    ("han", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0xF900, 0xFAFF))),
    ("cyrillic", ((0x0400, 0x04FF),)),
    ("arabic", ((0x0600, 0x06FF), (0x0750, 0x077F))),
    ("devanagari", ((0x0900, 0x097F),)),
    ("thai", ((0x0E00, 0x0E7F),)),
    ("greek", ((0x0370, 0x03FF),)),
    ("hebrew", ((0x0590, 0x05FF),)),
)

LANGUAGE_NAMES = {
    "en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian (Cyrillic script)",
    "ar": "Arabic", "hi": "Hindi (Devanagari)", "th": "Thai", "el": "Greek", "he": "Hebrew", "fr": "French",
    "de": "German", "es": "Spanish", "pt": "Portuguese", "it": "Italian", "nl": "Dutch", "unknown": "no letters",
}
_SCRIPT_LANGUAGE = {"han": "zh", "kana": "ja", "hangul": "ko", "cyrillic": "ru", "arabic": "ar",
                    "devanagari": "hi", "thai": "th", "greek": "el", "hebrew": "he"}

# Very frequent function words that are not English words (nor common English loans).
_FUNCTION_WORDS = {
    "en": {"the", "and", "is", "of", "to", "in", "it", "that", "for", "you", "with", "this", "was", "are", "my",
           "have", "be", "not", "on", "what", "how", "can", "i", "me", "do", "does", "why", "where", "when", "from",
           "your", "an", "a", "at", "by", "or", "has", "will", "would", "should", "there", "they", "we", "about"},
    "fr": {"le", "la", "les", "des", "est", "et", "une", "dans", "pour", "que", "qui", "pas", "sur", "avec", "je",
           "vous", "nous", "du", "au", "ce", "cette", "mais", "ou", "sont", "mon", "ma", "mes"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "mit", "ich", "sie", "zu", "den", "von",
           "auf", "für", "es", "dem", "wie", "auch", "mein", "meine", "wir", "ihr", "sind", "bitte"},
    "es": {"el", "los", "las", "es", "y", "una", "por", "que", "con", "para", "del", "mi", "se", "su", "pero",
           "como", "está", "yo", "muy", "son", "qué", "cómo", "dónde"},
    "pt": {"o", "os", "as", "é", "e", "um", "uma", "não", "com", "para", "do", "da", "dos", "das", "meu", "minha",
           "que", "em", "por", "você", "mas", "como", "está", "são"},
    "it": {"il", "lo", "gli", "è", "e", "di", "che", "non", "per", "con", "una", "del", "della", "sono", "mio",
           "mia", "come", "questo", "questa", "ma", "anche"},
    "nl": {"de", "het", "een", "en", "is", "niet", "van", "ik", "je", "met", "op", "dat", "voor", "zijn", "mijn",
           "wat", "hoe", "ook", "maar", "er"},
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

#: Default hypothesis template per language (the label may be in any language; the frame matches the texts).
DEFAULT_TEMPLATES = {
    "en": "This text is about {label}.",
    "zh": "这段文字是关于{label}的。",
    "ja": "この文章は{label}についてです。",
    "ko": "이 글은 {label}에 관한 것입니다.",
    "fr": "Ce texte parle de {label}.",
    "de": "In diesem Text geht es um {label}.",
    "es": "Este texto trata sobre {label}.",
    "pt": "Este texto é sobre {label}.",
    "it": "Questo testo parla di {label}.",
    "nl": "Deze tekst gaat over {label}.",
    "ru": "Этот текст о {label}.",
}
#: Share of rows in another language than English above which the multilingual embedder becomes the default.
MULTILINGUAL_ABOVE = 0.2
#: A second language is worth mentioning from this share of rows.
MIXED_FROM = 0.1


def _script_of(ch: str) -> str | None:
    cp = ord(ch)
    if cp < 0x80:
        return "latin" if ch.isalpha() else None
    for name, ranges in _SCRIPT_RANGES:
        for lo, hi in ranges:
            if lo <= cp <= hi:
                return name
    return "latin" if ch.isalpha() and cp < 0x250 else None


def _latin_language(text: str) -> str:
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return "en"
    hits = {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}
    best = max(hits, key=lambda k: (hits[k], k == "en"))
    # English unless another language's function words clearly win (short English requests have few of them).
    return best if hits[best] > hits["en"] else "en"


def detect_text_language(text: str) -> str:
    """Language code of one text: by script, then by function words for Latin script; 'unknown' without letters."""
    counts: Counter[str] = Counter()
    for ch in str(text)[:2000]:
        script = _script_of(ch)
        if script:
            counts[script] += 1
    if not counts:
        return "unknown"
    if counts["kana"] and counts["kana"] >= 0.1 * (counts["kana"] + counts["han"]):
        return "ja"
    cjk = counts["han"] + counts["kana"] + counts["hangul"]
    # CJK characters carry a word each, so a few outweigh many Latin letters (brand names, English terms).
    weighted = {k: v * (3 if k in ("han", "kana", "hangul") else 1) for k, v in counts.items()}
    script = max(weighted, key=weighted.get)  # type: ignore[arg-type]
    if script == "latin" or (cjk == 0 and script not in _SCRIPT_LANGUAGE):
        return _latin_language(text)
    return _SCRIPT_LANGUAGE.get(script, "unknown")


@dataclass
class LanguageReport:
    """What a text column is written in: the dominant language, its share of rows, and any others."""

    language: str
    share: float
    rows: int
    others: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return LANGUAGE_NAMES.get(self.language, self.language)

    @property
    def is_mixed(self) -> bool:
        return any(v >= MIXED_FROM for v in self.others.values())

    @property
    def non_english_share(self) -> float:
        english = self.share if self.language == "en" else self.others.get("en", 0.0)
        unknown = self.share if self.language == "unknown" else self.others.get("unknown", 0.0)
        return max(0.0, 1.0 - english - unknown)

    @property
    def needs_multilingual(self) -> bool:
        return self.non_english_share >= MULTILINGUAL_ABOVE

    def summary(self) -> str:
        """One line for the page and the CLI, e.g. 'Chinese (98% of 500 rows checked); also English (2%)'."""
        text = f"{self.name} ({self.share:.0%} of {self.rows:,} rows checked)"
        also = [f"{LANGUAGE_NAMES.get(k, k)} ({v:.0%})" for k, v in self.others.items() if v >= 0.01]
        return text + ("; also " + ", ".join(also) if also else "")


def detect_language(texts: Iterable[object], sample: int = 500, seed: int = 0) -> LanguageReport:
    """Per-row detection on a seeded sample of non-empty rows; the most common language wins."""
    rows = [str(t) for t in texts if t is not None and str(t).strip() and str(t) != "nan"]
    if len(rows) > sample:
        rows = random.Random(seed).sample(rows, sample)
    if not rows:
        return LanguageReport("unknown", 1.0, 0)
    counts = Counter(detect_text_language(t) for t in rows)
    (top, n_top), *rest = counts.most_common()
    return LanguageReport(top, n_top / len(rows), len(rows), {k: v / len(rows) for k, v in rest})


def default_template(language: str) -> str:
    """The hypothesis template in the texts' language (English for languages without one)."""
    return DEFAULT_TEMPLATES.get(language, DEFAULT_TEMPLATES["en"])


def labels_language(label_names: Sequence[str]) -> str | None:
    """The language most label names are written in (None when they have no letters)."""
    names = [str(n).replace("_", " ") for n in label_names if str(n).strip()]
    if not names:
        return None
    lang, _ = Counter(detect_text_language(n) for n in names).most_common(1)[0]
    return None if lang == "unknown" else lang


def template_language(report: LanguageReport, label_names: Sequence[str] = ()) -> str:
    """The language the hypothesis template should be written in: the labels' when they differ from the texts'.

    A sentence that wraps an English label in a Chinese frame (「这段文字是关于cookbook的。」) is neither language;
    a multilingual embedder matches a whole English sentence to Chinese texts better. Measured on the dev slice of
    the ECDT intents (Chinese requests, English intent names): macro-F1 0.36 with the Chinese frame, 0.49 with the
    English one (bench/multilingual_quality.py); Chinese label names keep the Chinese frame.
    """
    label_lang = labels_language(label_names)
    if label_lang and label_lang != report.language and label_lang in DEFAULT_TEMPLATES:
        return label_lang
    return report.language if report.language in DEFAULT_TEMPLATES else "en"


def recommended_embedder(report: LanguageReport) -> str:
    """Registry name of the embedder to preselect: multilingual when enough rows are not English."""
    from llm_backend.models.registry import DEFAULT_MODELS, MULTILINGUAL_EMBEDDER

    if report.needs_multilingual:
        return MULTILINGUAL_EMBEDDER
    return next(s.name for s in DEFAULT_MODELS if s.role == "embedder")


def language_notice(report: LanguageReport, chosen_embedder: str | None = None) -> str | None:
    """What to tell the user on load: detected language, mixing, and the embedder chosen because of it."""
    if report.rows == 0 or (report.language == "en" and not report.is_mixed):
        return None
    parts = [f"Detected text language: {report.summary()}."]
    if report.is_mixed:
        parts.append("The column mixes languages; scores are most reliable with a multilingual embedder.")
    if report.needs_multilingual:
        name = chosen_embedder or recommended_embedder(report)
        parts.append(f"The default embedder is {name} (multilingual): the English MiniLM scores non-English text "
                     "near chance. You can still choose any embedder.")
        if report.language in DEFAULT_TEMPLATES and report.language != "en":
            parts.append(f"The default hypothesis template is in {report.name}: "
                         f"“{default_template(report.language)}” (editable; it follows the labels' language when "
                         "they are written in another one).")
    return " ".join(parts)


def label_language_warning(label_names: Sequence[str], text_report: LanguageReport,
                           embedder_name: str | None = None) -> str | None:
    """A warning when the labels are written in another language than the texts (None when they match)."""
    if text_report.rows == 0 or text_report.language == "unknown":
        return None
    label_lang = labels_language(label_names)
    if label_lang is None or label_lang == text_report.language:
        return None
    if label_lang in _FUNCTION_WORDS and text_report.language in _FUNCTION_WORDS:
        return None  # two Latin-script languages: label names are too short to tell them apart reliably
    msg = (f"The label names look {LANGUAGE_NAMES.get(label_lang, label_lang)} while the texts are mostly "
           f"{text_report.name}. ")
    from llm_backend.models.registry import MULTILINGUAL_EMBEDDER

    if embedder_name == MULTILINGUAL_EMBEDDER:
        msg += ("A multilingual embedder usually still matches them across languages, but labels written in the "
                "texts' language often score better.")
    else:
        msg += (f"The chosen embedder ({embedder_name or 'this embedder'}) is not multilingual, so the scores may be "
                f"near chance; choose {MULTILINGUAL_EMBEDDER} or write the labels in the texts' language.")
    if label_lang in DEFAULT_TEMPLATES:
        msg += f" The default hypothesis template follows the labels' language: “{default_template(label_lang)}”."
    return msg
