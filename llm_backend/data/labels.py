"""Label sets: names, descriptions, extra phrasings, and turning codes like ``card_arrival`` into words.

Zero-shot methods compare text with *words*, so a label named ``Sci/Tech`` or ``card_arrival`` has to become a
phrase a model understands. The rule is generic (split on separators and camelCase, expand ``&`` and ``/``), never
tuned to one data set; users override it with a description or phrasings.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from llm_backend.core.safe_yaml import NestingError, load_yaml
from llm_backend.core.text_clean import label_key, strip_invisible

from llm_backend.core.errors import LabelError


def humanize(name: str) -> str:
    """'card_arrival' -> 'card arrival', 'Sci/Tech' -> 'sci and tech', 'getRefund' -> 'get refund'."""
    s = str(name).strip()
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", " ", s)  # camelCase boundary
    s = s.replace("&", " and ").replace("/", " and ").replace("+", " and ")
    s = re.sub(r"[_\-.:|]+", " ", s)
    s = re.sub(r"\s+", " ", s).strip()
    # Keep acronyms (ATM, PIN) as written; lowercase the rest so 'World' and 'world' embed alike.
    words = [w if (w.isupper() and len(w) > 1) else w.lower() for w in s.split(" ")]
    return " ".join(words)


@dataclass
class Label:
    """One label: the name written to predictions, plus optional words that describe it to a model."""

    name: str
    description: str = ""
    phrasings: list[str] = field(default_factory=list)
    display: str = ""  # the phrase used in templates; derived from the name when empty

    @property
    def phrase(self) -> str:
        return self.display.strip() or humanize(self.name)

    def texts(self) -> list[str]:
        """Every phrasing of this label that a scorer may average over (phrase first)."""
        out = [self.phrase] + [p.strip() for p in self.phrasings if p and p.strip()]
        return list(dict.fromkeys(out))


def make_labels(items: Iterable[str | Label | dict[str, Any]]) -> list[Label]:
    """Labels from names, dicts or Label objects, validated: none empty, no duplicates (case/space-insensitive)."""
    labels: list[Label] = []
    for item in items:
        if isinstance(item, Label):
            lab = item
        elif isinstance(item, dict):
            phr = item.get("phrasings") or []
            if isinstance(phr, str):
                phr = [p.strip() for p in re.split(r"[;\n]", phr) if p.strip()]
            lab = Label(str(item.get("name", "")).strip(), str(item.get("description") or "").strip(),
                        [str(p) for p in phr], str(item.get("display") or "").strip())
        else:
            lab = Label(str(item).strip())
        lab.name = strip_invisible(lab.name).strip()  # 'billing\u200b' would be a second, identical-looking label
        if len(lab.name) > 200:
            raise LabelError(f"A label name is {len(lab.name):,} characters long; the limit is 200. Put the long "
                             "text in the label's description.")
        if len(lab.display) > 200:  # "reads as" stands in for the name in every template sentence
            raise LabelError(f"What label '{lab.name[:40]}' reads as is {len(lab.display):,} characters long; the "
                             "limit is 200. Put the long text in the label's description.")
        if lab.name:
            labels.append(lab)
    if not labels:
        raise LabelError("The label set is empty: add at least two labels (or one in multi-label mode).")
    seen: dict[str, str] = {}
    dupes = []
    for lab in labels:
        key = label_key(lab.name)
        if key in seen:
            dupes.append(f"'{seen[key]}' and '{lab.name}'")
        seen[key] = lab.name
    if dupes:
        raise LabelError(f"Duplicate labels: {', '.join(dupes)}. Each label must be distinct.")
    return labels



def labels_for_classes(current: Sequence[Label] | None, classes: Sequence[str]) -> list[Label]:
    """One label per trained class, taken from the current label set when it has that name.

    Its descriptions and phrasings help the zero-shot baseline and teacher; classes it does not name get a bare label,
    and labels of classes that were not trained on are left out.
    """
    by_name = {l.name: l for l in current or []}
    return make_labels([by_name.get(c, Label(c)) for c in classes])


def labels_from_gold(gold: Sequence[object] | None) -> list[Label]:
    """The default label set when the data has a gold column: its distinct values (normalised), sorted, blanks dropped.

    One definition for the zero-shot page, the map and the CLI, so the same gold column gives the same labels.
    """
    from llm_backend.evaluation.metrics import normalise_label

    names = sorted({normalise_label(g) for g in gold or []} - {""})
    return make_labels(names) if names else []

def check_label_count(labels: Sequence[Label], multi_label: bool) -> None:
    """Every run goes through here, so the workshop's label cap applies to the pages and the CLI alike."""
    from llm_backend.core.workshop import (
        check_labels,  # local: workshop reads settings, labels stays importable without them
    )

    if len(labels) < 2 and not multi_label:
        raise LabelError("Single-label classification needs at least two labels; with one label use multi-label mode.")
    check_labels(len(labels))


def parse_label_list(text: str) -> list[Label]:
    """A pasted list: one label per line or comma-separated; 'name: description' lines keep the description."""
    lines = [l.strip() for l in text.replace("\r", "").split("\n") if l.strip()]
    if len(lines) == 1 and "," in lines[0] and ":" not in lines[0]:
        lines = [p.strip() for p in lines[0].split(",") if p.strip()]
    items: list[dict[str, Any]] = []
    for line in lines:
        line = re.sub(r"^[-*•\d.)\s]+", "", line) if re.match(r"^([-*•]|\d+[.)])\s", line) else line
        name, _, desc = line.partition(":")
        items.append({"name": name.strip(), "description": desc.strip()})
    return make_labels(items)


def labels_to_dict(labels: Sequence[Label], name: str = "label set") -> dict[str, Any]:
    return {"name": name, "labels": [{k: v for k, v in asdict(l).items() if v} for l in labels]}


def dump_labels(labels: Sequence[Label], fmt: str = "yaml", name: str = "label set") -> str:
    data = labels_to_dict(labels, name)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_labels_text(text: str) -> list[Label]:
    """Read a label set saved as YAML or JSON: {labels: [...]} or a bare list of names/dicts."""
    try:
        data = load_yaml(text, what="label file")  # YAML is a superset of JSON; aliases and depth are bounded
    except NestingError as exc:
        raise LabelError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise LabelError(f"The label file is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict):
        data = data.get("labels", data)
        if isinstance(data, dict):  # {name: description}
            data = [{"name": k, "description": v or ""} for k, v in data.items()]
    if not isinstance(data, list):
        raise LabelError("The label file must hold a list of labels (or {labels: [...]}).")
    return make_labels(data)


def load_labels_file(path: str | Path) -> list[Label]:
    p = Path(path)
    if not p.is_file():
        raise LabelError(f"No such label file: {p}")
    return load_labels_text(p.read_text(encoding="utf-8"))
