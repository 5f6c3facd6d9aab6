"""Token-tagged data in: CoNLL text, a CSV/JSONL table of tokens and tags, or plain text to tag.

Everything a user uploads is checked line by line here, so training and evaluation never meet a malformed tag:

* CoNLL: one ``token ... TAG`` per line (2 columns, or the 4-column CoNLL-2003 layout ``token POS chunk TAG``; the
  tag is always the last column), a blank line between sentences, ``-DOCSTART-`` lines skipped. A line whose column
  count differs from the file's and a tag that is not ``O`` / ``B-TYPE`` / ``I-TYPE`` are errors that name the line.
  An ``I-TYPE`` that does not continue a ``B-TYPE``/``I-TYPE`` of its type (invalid IOB2) is read as starting an
  entity, as conlleval does, with a note naming the lines: the shared CoNLL-2003 training file itself has 267 of
  them, so refusing them would refuse the standard data set.
* Tables: one row per sentence (``tokens`` and ``tags`` columns holding JSON lists or space-separated strings) or
  one row per token (``sentence_id``, ``token``, ``tag`` columns).
* Plain text: one sentence per non-empty line, split into words and punctuation the way CoNLL-2003 is tokenised.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from llm_backend.core.errors import DataError

MAX_SENTENCES = 200_000  # about 14x CoNLL-2003's training set; beyond this a browser session would stall
MAX_TOKENS_PER_SENTENCE = 5_000  # a "sentence" this long is a formatting error (missing blank lines)
MAX_TOKEN_CHARS = 200
MAX_ERRORS_SHOWN = 5
TAG_RE = re.compile(r"^(?:O|[BI]-[A-Za-z][A-Za-z0-9_.]{0,30})$")
TAGGED_EXTENSIONS = (".conll", ".txt", ".iob", ".bio", ".csv", ".tsv", ".jsonl", ".json")
# Words, numbers with inner separators, and single punctuation marks: close to CoNLL-2003's own tokenisation
# ("U.S." and "1996-08-22" stay whole, "Germany's" becomes "Germany 's").
_WORD_RE = re.compile(r"[A-Za-z]\.(?:[A-Za-z]\.)+|'s\b|n't\b|\d+(?:[.,:/-]\d+)*|\w+(?=n't\b)|\w+(?:-\w+)*|[^\w\s]",
                      re.UNICODE)


@dataclass
class TaggedSentence:
    """One sentence: its tokens, their BIO tags (empty when untagged) and where it started in its file."""

    tokens: list[str]
    tags: list[str] = field(default_factory=list)
    line: int = 0

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class TaggedData:
    sentences: list[TaggedSentence]
    notes: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def tagged(self) -> bool:
        return bool(self.sentences) and all(len(s.tags) == len(s.tokens) for s in self.sentences)

    def entity_types(self) -> list[str]:
        return sorted({t[2:] for s in self.sentences for t in s.tags if t != "O"})

    def tag_set(self) -> list[str]:
        return sorted({t for s in self.sentences for t in s.tags})


def _raise_many(problems: list[str], source: str, what: str) -> None:
    if not problems:
        return
    more = f" (and {len(problems) - MAX_ERRORS_SHOWN} more)" if len(problems) > MAX_ERRORS_SHOWN else ""
    raise DataError(f"{source}: {len(problems)} {what}{more}: " + "; ".join(problems[:MAX_ERRORS_SHOWN]))


def check_tags(tokens: Sequence[str], tags: Sequence[str], lines: Sequence[int] | None, where: str) -> list[str]:
    """Tags that are not BIO (``O``, ``B-TYPE``, ``I-TYPE``), as readable strings naming the line or token."""
    problems = []
    for i, tag in enumerate(tags):
        if not TAG_RE.match(tag):
            at = f"line {lines[i]}" if lines else f"{where}, token {i + 1}"
            problems.append(f"{at}: tag '{tag[:40]}' is not BIO (use O, B-TYPE or I-TYPE)")
    return problems


def orphan_inside(tokens: Sequence[str], tags: list[str], lines: Sequence[int] | None, where: str) -> list[str]:
    """Repair, in place, each I-TYPE that does not continue a B-/I- of its type (it becomes B-TYPE, the way
    conlleval reads it) and describe each repair. Real data has these: conll2003_train.txt has 267."""
    found = []
    prev = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            at = f"line {lines[i]}" if lines else f"{where}, token {i + 1}"
            found.append(f"{at}: '{tag}' on '{tokens[i][:40]}' after {prev}")
            tags[i] = "B-" + tag[2:]
        prev = tags[i]
    return found


def _orphan_note(found: list[str], source: str) -> list[str]:
    if not found:
        return []
    more = f" (and {len(found) - MAX_ERRORS_SHOWN} more)" if len(found) > MAX_ERRORS_SHOWN else ""
    return [f"{source}: {len(found)} I- tag(s) did not continue an entity of their type and were read as starting "
            f"one (B-), as conlleval does: " + "; ".join(found[:MAX_ERRORS_SHOWN]) + more]


def parse_conll(text: str, source: str = "the file") -> TaggedData:
    """CoNLL text → sentences, or a DataError naming the malformed lines."""
    sentences: list[TaggedSentence] = []
    problems: list[str] = []
    orphans: list[str] = []
    notes: list[str] = []
    width: int | None = None
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []

    def flush() -> None:
        if tokens:
            if len(tokens) > MAX_TOKENS_PER_SENTENCE:
                problems.append(f"line {lines[0]}: a sentence of {len(tokens):,} tokens (limit "
                                f"{MAX_TOKENS_PER_SENTENCE:,}); are blank lines between sentences missing?")
            problems.extend(check_tags(tokens, tags, lines, source))
            orphans.extend(orphan_inside(tokens, tags, lines, source))
            sentences.append(TaggedSentence(list(tokens), list(tags), lines[0]))
            tokens.clear(), tags.clear(), lines.clear()

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("-DOCSTART-"):
            flush()
            continue
        parts = line.split()
        if len(parts) < 2:
            problems.append(f"line {number}: 1 column ('{line[:40]}'); expected 'token TAG'")
            continue
        if width is None:
            width = len(parts)
        elif len(parts) != width:
            problems.append(f"line {number}: {len(parts)} columns where the file has {width}")
            continue
        token, tag = parts[0], parts[-1]
        if len(token) > MAX_TOKEN_CHARS:
            token = token[:MAX_TOKEN_CHARS]
        tokens.append(token)
        tags.append(tag)
        lines.append(number)
        if len(sentences) > MAX_SENTENCES:
            raise DataError(f"{source} has more than {MAX_SENTENCES:,} sentences; split it into smaller files.")
    flush()
    _raise_many(problems, source, "malformed line(s)")
    if not sentences:
        raise DataError(f"{source} has no tagged tokens (expected one 'token TAG' per line, blank lines between "
                        "sentences).")
    notes.extend(_orphan_note(orphans, source))
    if width and width > 2:
        notes.append(f"{source} has {width} columns per line: the first is the token, the last the tag.")
    return TaggedData(sentences, notes, source)


def _as_list(value: object, column: str, row: int) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and value != value):
        return []
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise DataError(f"row {row}: column '{column}' starts like a JSON list but is not one.") from None
        if not isinstance(parsed, list):
            raise DataError(f"row {row}: column '{column}' is not a list.")
        return [str(v) for v in parsed]
    return text.split()


def from_table(df: pd.DataFrame, source: str = "the table") -> TaggedData:
    """Sentences from a table: a row per sentence (tokens, tags) or a row per token (sentence_id, token, tag)."""
    cols = {str(c).strip().lower(): c for c in df.columns}
    problems: list[str] = []
    orphans: list[str] = []
    sentences: list[TaggedSentence] = []
    if "tokens" in cols:
        has_tags = "tags" in cols or "ner_tags" in cols
        tag_col = cols.get("tags", cols.get("ner_tags"))
        for i, row in enumerate(df.itertuples(index=False), start=2 if source.endswith(".csv") else 1):
            record = dict(zip(df.columns, row))
            toks = _as_list(record[cols["tokens"]], "tokens", i)
            if not toks:
                continue
            tags = _as_list(record[tag_col], "tags", i) if has_tags else []
            if has_tags and len(tags) != len(toks):
                problems.append(f"row {i}: {len(toks)} tokens but {len(tags)} tags")
                continue
            if has_tags:
                problems.extend(check_tags(toks, tags, None, f"row {i}"))
                orphans.extend(orphan_inside(toks, tags, None, f"row {i}"))
            sentences.append(TaggedSentence([t[:MAX_TOKEN_CHARS] for t in toks], tags, i))
    elif "token" in cols and ("sentence_id" in cols or "sentence" in cols):
        sid_col = cols.get("sentence_id", cols.get("sentence"))
        tag_col = cols.get("tag", cols.get("ner_tag"))
        for sid, group in df.groupby(sid_col, sort=False):
            toks = [str(t)[:MAX_TOKEN_CHARS] for t in group[cols["token"]].tolist()]
            tags = [str(t).strip() for t in group[tag_col].tolist()] if tag_col is not None else []
            if tags:
                problems.extend(check_tags(toks, tags, None, f"sentence {sid}"))
                orphans.extend(orphan_inside(toks, tags, None, f"sentence {sid}"))
            sentences.append(TaggedSentence(toks, tags, int(group.index[0]) + 1))
    else:
        raise DataError(f"{source} needs a 'tokens' column (with 'tags'), or 'sentence_id', 'token' and 'tag' "
                        f"columns. Its columns: {', '.join(map(str, df.columns))[:300]}.")
    _raise_many(problems, source, "bad row(s)")
    if not sentences:
        raise DataError(f"{source} has no tokens.")
    if len(sentences) > MAX_SENTENCES:
        raise DataError(f"{source} has more than {MAX_SENTENCES:,} sentences; split it into smaller files.")
    return TaggedData(sentences, _orphan_note(orphans, source), source)


def tokenize_text(text: str, source: str = "the text") -> TaggedData:
    """Plain text → untagged sentences (one per non-empty line). A DataError when there are no tokens at all."""
    sentences = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in line)  # control/format chars
        toks = [t[:MAX_TOKEN_CHARS] for t in _WORD_RE.findall(line)]
        if toks:
            sentences.append(TaggedSentence(toks, [], number))
        if len(sentences) > MAX_SENTENCES:
            raise DataError(f"{source} has more than {MAX_SENTENCES:,} lines; split it into smaller files.")
    if not sentences:
        raise DataError(f"{source} has no tokens to tag (it is empty or only spaces and control characters).")
    return TaggedData(sentences, [], source)


def _looks_like_conll(text: str) -> bool:
    """True when most non-blank lines end in a BIO tag: then a .txt upload is CoNLL rather than plain text."""
    lines = [l.split() for l in text.splitlines()[:200] if l.strip()]
    if not lines:
        return False
    tagged = sum(1 for parts in lines if len(parts) >= 2 and TAG_RE.match(parts[-1]))
    return tagged >= 0.8 * len(lines)


def read_tagged_bytes(data: bytes, filename: str, plain_text_ok: bool = False) -> TaggedData:
    """An uploaded file → sentences. ``.txt`` files that are not CoNLL are plain text when ``plain_text_ok``."""
    from llm_backend.data.files import decode_text, read_table

    name = Path(filename).name
    ext = Path(name).suffix.lower()
    if ext in (".csv", ".jsonl", ".json", ".parquet", ".xlsx"):
        table = read_table(data, name, keep_lists=True)
        out = from_table(table.df, name)
        out.notes = list(table.notes) + out.notes
        return out
    text, _encoding, notes = decode_text(data)
    if ext in (".conll", ".iob", ".bio", ".tsv") or _looks_like_conll(text):
        out = parse_conll(text, name)
    elif plain_text_ok:
        out = tokenize_text(text, name)
    else:
        raise DataError(f"{name} is not in CoNLL form (one 'token TAG' per line, a blank line between sentences).")
    out.notes = list(notes) + out.notes
    return out


def read_tagged_path(path: str | Path, plain_text_ok: bool = False) -> TaggedData:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"No such file: {p.name}")
    return read_tagged_bytes(p.read_bytes(), p.name, plain_text_ok)


def to_conll(tokens: Iterable[Sequence[str]], tags: Iterable[Sequence[str]]) -> str:
    """Sentences back to CoNLL text (token TAG, blank line between sentences)."""
    blocks = ["\n".join(f"{t} {g}" for t, g in zip(toks, tg)) for toks, tg in zip(tokens, tags)]
    return "\n\n".join(blocks) + "\n"


def spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entity spans (type, start, end exclusive) of one IOB2 tag sequence, as seqeval strict mode reads them."""
    out: list[tuple[str, int, int]] = []
    start, kind = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        if start is not None and (tag == "O" or tag.startswith("B-") or tag[2:] != kind):
            out.append((kind, start, i))  # type: ignore[arg-type]
            start, kind = None, None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, kind = i, tag[2:]
    return out
