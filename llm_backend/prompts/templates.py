"""Prompt templates: one YAML format for the page, the library and the CLI, rendered in a locked-down sandbox.

A template is Jinja text with placeholders for dataset columns (``{{ text }}`` is always the chosen text column),
plus a verbalizer (label -> answer words) and an optional number of few-shot examples per label. Templates are user
input that runs on the server, so rendering uses :class:`jinja2.sandbox.SandboxedEnvironment` with
``StrictUndefined`` and refuses *every* attribute access on values (``{{ text.__class__ }}`` fails with a message,
not a leak); values are plain strings, dicts of strings and lists, never Python objects of ours.

File format (YAML)::

    name: Sentiment (chat)
    description: ...
    template: |
      Review: {{ text }}
      Is this review positive, negative or neutral?
    verbalizer: {positive: [great, good], negative: [bad, terrible]}
    few_shot: 0            # examples per label (0 = zero-shot)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml
from jinja2 import meta

from llm_backend.core.safe_yaml import NestingError, load_yaml
from llm_backend.prompts.render_sandbox import ENV, parse as _sandbox_parse, render_limited

from llm_backend.core.config import PROJECT_ROOT, get_settings
from llm_backend.core.errors import TemplateError
from llm_backend.data.labels import humanize

#: Names every template may use besides the dataset's columns.
RESERVED = {
    "text": "the text column of the current row",
    "row": "all columns of the current row, e.g. {{ row['my column'] }}",
    "examples": "few-shot examples: a list of {text, label, answer} (loop with {% for ex in examples %})",
    "examples_block": "few-shot examples pre-formatted as 'Text: …\\nAnswer: …' blocks",
    "labels": "the label names, as a list",
    "label_list": "the label names joined with commas",
    "answers": "the first answer word of every label, joined with commas",
    "mask": "the masked LM's mask token (cloze mode)",
}
MASK_MARK = "[MASK]"
SHIPPED_DIR = PROJECT_ROOT / "templates"
#: Template, label-set and other names are cut off at this length (the store's limit too).
NAME_MAX_CHARS = 200
#: Example texts are cut to this many characters so k examples per label stay affordable in the context.
EXAMPLE_MAX_CHARS = 300


#: The locked sandbox (no attributes, no calls, bounded operators and loops); rendering itself happens in a worker
#: process under hard limits, see :mod:`llm_backend.prompts.render_sandbox`.
_ENV = ENV


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as YAML literal blocks, so saved templates read like the prompt they are."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _str_representer)


@dataclass
class PromptTemplate:
    """A named template with its verbalizer (label -> answer words) and few-shot setting."""

    name: str
    template: str
    verbalizer: dict[str, list[str]]
    few_shot: int = 0
    description: str = ""
    mode: str = "score"

    @property
    def labels(self) -> list[str]:
        return list(self.verbalizer)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["template"] = self.template
        out["verbalizer"] = {k: list(v) for k, v in self.verbalizer.items()}
        out["few_shot"] = int(self.few_shot)
        if self.mode != "score":
            out["mode"] = self.mode
        return out

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=120)


# ------------------------------------------------------------------------------------------------ verbalizer
def parse_words(value: Any) -> list[str]:
    """Answer words from a list or a comma/semicolon-separated string, trimmed, de-duplicated, order kept."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else re.split(r"[,;\n]", str(value))
    return list(dict.fromkeys(str(w).strip() for w in items if str(w).strip()))


def check_verbalizer(verbalizer: Mapping[str, Any]) -> dict[str, list[str]]:
    """Validated verbalizer: at least two labels, each with at least one word, no word shared by two labels."""
    if not isinstance(verbalizer, Mapping) or not verbalizer:
        raise TemplateError("The verbalizer is empty: give each label one or more answer words (positive: great, good).")
    out: dict[str, list[str]] = {}
    for label, words in verbalizer.items():
        name = str(label).strip()
        if not name:
            continue
        parsed = parse_words(words)
        if not parsed:
            raise TemplateError(f"Label '{name}' has no answer words in the verbalizer. Add at least one.")
        out[name] = parsed
    if len(out) < 2:
        raise TemplateError("The verbalizer needs at least two labels.")
    owner: dict[str, str] = {}
    for label, words in out.items():
        for w in words:
            key = w.lower()
            if key in owner and owner[key] != label:
                raise TemplateError(f"The answer word '{w}' is used by both '{owner[key]}' and '{label}'; "
                                    "each word must point to one label.")
            owner[key] = label
    return out


def verbalizer_from_labels(labels: Iterable[str]) -> dict[str, list[str]]:
    """A starting verbalizer: each label's humanized name as its only answer word (card_arrival -> card arrival)."""
    return {str(l): [humanize(str(l))] for l in labels if str(l).strip()}


def verbalizer_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The validated verbalizer from an edited table of ``{"label", "words"}`` rows.

    Rows with an empty label are skipped rather than refused: a table editor always shows a blank row for adding
    one, and the user should not have to delete it before running.
    """
    return check_verbalizer({str(r["label"]).strip(): r.get("words") for r in rows
                             if str(r.get("label") or "").strip()})


STARTER_TEMPLATE = "Text: {{ text }}\n\nWhich category fits this text best: {{ answers }}? Answer with one word."


def starter_template(labels: Sequence[str] | None) -> PromptTemplate:
    """The template a fresh editor starts with: a one-word question over the dataset's gold labels.

    Without gold labels a two-label sentiment verbalizer keeps the editor runnable, so a user sees a preview
    before writing anything.
    """
    return PromptTemplate(name="My template", template=STARTER_TEMPLATE,
                          verbalizer=verbalizer_from_labels(list(labels or []) or ["positive", "negative"]))


def check_gold_covered(verbalizer: Mapping[str, Sequence[str]], gold: Iterable[str]) -> None:
    """Gold labels the verbalizer does not know would silently count as errors: name them instead."""
    missing = sorted({g for g in gold if g and g not in verbalizer})
    if missing:
        shown = ", ".join(f"'{m}'" for m in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise TemplateError(f"The verbalizer is missing label(s) that occur in the gold column: {shown}. "
                            "Add them with their answer words (or fill the verbalizer from the gold labels).")


# ------------------------------------------------------------------------------------------------- rendering
def _parse(source: str):
    return _sandbox_parse(source)


def placeholders(source: str) -> set[str]:
    """The variable names a template uses (undeclared in it): what must come from the row or the reserved names."""
    from jinja2.exceptions import TemplateSyntaxError

    try:
        return set(meta.find_undeclared_variables(_parse(source)))
    except TemplateSyntaxError as exc:  # e.g. "No filter named 'format'" (filters that are switched off)
        raise TemplateError(f"Template error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise TemplateError("The template is nested too deeply to read.") from None


def identifier_columns(columns: Iterable[str]) -> list[str]:
    """Columns usable as ``{{ name }}``; others are reachable as ``{{ row['my column'] }}``."""
    return [str(c) for c in columns if str(c).isidentifier() and str(c) not in RESERVED]


def check_template(source: str, columns: Iterable[str] = (), *, mode: str = "score") -> set[str]:
    """Raise :class:`TemplateError` for a template the run cannot use; return its placeholders.

    Checks: valid syntax, a text placeholder, no unknown names (each named, with what is available), and a mask
    for cloze mode.
    """
    if not str(source).strip():
        raise TemplateError("The template is empty. Write a prompt with a {{ text }} placeholder.")
    used = placeholders(source)
    cols = identifier_columns(columns)
    known = set(RESERVED) | set(cols)
    unknown = sorted(used - known)
    if unknown:
        names = ", ".join("{{ " + u + " }}" for u in unknown)
        avail = ", ".join(sorted(set(cols) | {"text", "examples", "examples_block", "label_list"}))
        raise TemplateError(f"Unknown placeholder(s) {names}. Available: {avail}.")
    if "text" not in used and "row" not in used:
        raise TemplateError("The template has no text placeholder: add {{ text }} where the row's text goes.")
    if mode == "cloze" and MASK_MARK not in source and "mask" not in used:
        raise TemplateError(f"Cloze mode needs a mask in the template: write {MASK_MARK} (or {{{{ mask }}}}) where the "
                            "answer word goes.")
    return used


def row_context(row: Mapping[str, Any], text: str) -> dict[str, Any]:
    """Row values as plain strings (never Python objects), plus ``text``."""
    values = {str(k): ("" if v is None or (isinstance(v, float) and v != v) else str(v)) for k, v in row.items()}
    ctx: dict[str, Any] = {c: values[c] for c in identifier_columns(values)}
    ctx["row"] = values
    ctx["text"] = text
    return ctx


def examples_block(examples: Sequence[Mapping[str, str]]) -> str:
    return "\n\n".join(f"Text: {ex['text']}\nAnswer: {ex['answer']}" for ex in examples)


def render(source: str, context: Mapping[str, Any], verbalizer: Mapping[str, Sequence[str]], *,
           examples: Sequence[Mapping[str, str]] = (), mask: str = MASK_MARK) -> str:
    """Render one prompt under the rendering limits (length, loops, time; see ``render_sandbox``).

    Errors (unknown names, blocked attributes, a limit reached) become :class:`TemplateError`.
    """
    labels = list(verbalizer)
    ctx = dict(context)
    ctx.update({
        "examples": [dict(ex) for ex in examples],
        "examples_block": examples_block(examples),
        "labels": labels,
        "label_list": ", ".join(labels),
        "answers": ", ".join(words[0] for words in verbalizer.values() if words),
        "mask": mask,
    })
    out = render_limited(source, ctx)
    return out.replace(MASK_MARK, mask) if mask != MASK_MARK else out


# ------------------------------------------------------------------------------------------------ file format
def template_from_dict(data: Any, *, source: str = "template") -> PromptTemplate:
    if not isinstance(data, Mapping):
        raise TemplateError(f"The {source} is not a YAML mapping with name, template and verbalizer.")
    missing = [k for k in ("name", "template", "verbalizer") if not data.get(k)]
    if missing:
        raise TemplateError(f"The {source} lacks required field(s): {', '.join(missing)}.")
    try:
        k = int(data.get("few_shot") or 0)
    except (TypeError, ValueError):
        raise TemplateError(f"few_shot in the {source} must be a whole number of examples per label.") from None
    if k < 0 or k > 64:
        raise TemplateError("few_shot must be between 0 and 64 examples per label.")
    mode = str(data.get("mode") or "score").strip().lower()
    if mode not in ("score", "cloze", "generate"):
        raise TemplateError(f"Unknown mode '{mode}' in the {source}: use score, cloze or generate.")
    for key in ("name", "template", "description"):
        if data.get(key) is not None and not isinstance(data.get(key), (str, int, float)):
            raise TemplateError(f"'{key}' in the {source} must be text, not a {type(data.get(key)).__name__}.")
    name = str(data["name"]).strip()
    if len(name) > NAME_MAX_CHARS:
        raise TemplateError(f"The template name is {len(name):,} characters long; the limit is {NAME_MAX_CHARS}.")
    if not isinstance(data["verbalizer"], Mapping):
        raise TemplateError(f"'verbalizer' in the {source} must be a mapping of label -> answer words.")
    tpl = PromptTemplate(
        name=name,
        template=str(data["template"]),
        verbalizer=check_verbalizer(data["verbalizer"]),
        few_shot=k,
        description=str(data.get("description") or "").strip(),
        mode=mode,
    )
    _parse(tpl.template)
    return tpl


def check_template_body(body: Any) -> None:
    """A stored template body (store, project import): a mapping whose known fields have the right types.

    Stored bodies may be partial (a page saves what it has), so only present fields are checked; "Open in the
    prompt page" still goes through :func:`template_from_dict`.
    """
    if not isinstance(body, Mapping):
        raise TemplateError(f"a template must be an object, not {type(body).__name__}")
    for key in ("name", "description", "mode"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise TemplateError(f"'{key}' must be text, not {type(body[key]).__name__}")
    if len(str(body.get("name") or "")) > NAME_MAX_CHARS:
        raise TemplateError(f"the name is longer than {NAME_MAX_CHARS} characters")
    if "template" in body:
        if not isinstance(body["template"], str):
            raise TemplateError(f"'template' must be text, not {type(body['template']).__name__}")
        _parse(body["template"])
    if "verbalizer" in body and body["verbalizer"] is not None:
        if not isinstance(body["verbalizer"], Mapping):
            raise TemplateError("'verbalizer' must map labels to answer words")
        for label, words in body["verbalizer"].items():
            if not isinstance(words, (str, list)) or (isinstance(words, list) and
                                                     not all(isinstance(w, (str, int, float)) for w in words)):
                raise TemplateError(f"the answer words of '{str(label)[:60]}' must be text or a list of texts")
    if "few_shot" in body and body["few_shot"] is not None and (isinstance(body["few_shot"], bool) or
                                                                not isinstance(body["few_shot"], int)):
        raise TemplateError("'few_shot' must be a whole number")


def load_template_text(text: str, *, source: str = "template file") -> PromptTemplate:
    try:
        data = load_yaml(text, what=source)
    except NestingError as exc:
        raise TemplateError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"The {source} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return template_from_dict(data, source=source)


_UPLOAD_CACHE: dict[str, PromptTemplate] = {}


def load_template_upload(data: bytes, name: str) -> PromptTemplate:
    """An uploaded template file, parsed once per content (sha256): the page calls this on every rerun.

    Returns a copy so a page editing the template cannot change the cached one.
    """
    import copy
    import hashlib

    key = hashlib.sha256(data).hexdigest() + "|" + name
    tpl = _UPLOAD_CACHE.get(key)
    if tpl is None:
        tpl = load_template_text(data.decode("utf-8", "replace"), source=name)
        if len(_UPLOAD_CACHE) > 32:
            _UPLOAD_CACHE.clear()
        _UPLOAD_CACHE[key] = tpl
    return copy.deepcopy(tpl)


def load_template_file(path: str | Path) -> PromptTemplate:
    p = Path(path)
    if not p.is_file():
        raise TemplateError(f"No template file '{p.name}'.")
    return load_template_text(p.read_text(encoding="utf-8"), source=f"template file '{p.name}'")


# ---------------------------------------------------------------------------------------------------- library
def slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.").lower()
    return s[:80] or "template"


def default_library_dir() -> Path:
    return get_settings().data_dir / "templates"


@dataclass
class TemplateLibrary:
    """Templates saved as ``<slug>.yaml`` in one folder; the folder must lie inside the allowed roots."""

    folder: Path = field(default_factory=default_library_dir)

    @classmethod
    def at(cls, user_folder: str | Path | None = None) -> "TemplateLibrary":
        """A library in a folder the user typed, refused when it escapes the allowed roots (``paths.safe_path``)."""
        if user_folder is None or not str(user_folder).strip():
            return cls()
        from llm_backend.core.paths import safe_path

        return cls(safe_path(user_folder, must_exist=False, kind="template folder"))

    def _path(self, name: str) -> Path:
        return self.folder / f"{slug(name)}.yaml"

    def names(self) -> list[str]:
        return [t.name for t in self.list()]

    def list(self) -> list[PromptTemplate]:
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.glob("*.yaml")):
            try:
                out.append(load_template_file(p))
            except TemplateError:
                continue  # a broken file must not hide the others
        return out

    def load(self, name: str) -> PromptTemplate:
        for tpl in self.list():
            if tpl.name == name:
                return tpl
        path = self._path(name)
        if path.is_file():
            return load_template_file(path)
        raise TemplateError(f"No template named '{name}' in the library.")

    def _writable(self) -> Path:
        """Writes and deletes stay inside the data folder, whatever folder the library was opened at."""
        from llm_backend.core.paths import PathError, check_writable

        try:
            return check_writable(self.folder, kind="template folder")
        except PathError as exc:
            raise TemplateError(str(exc)) from None

    def save(self, tpl: PromptTemplate, *, overwrite: bool = True) -> Path:
        self._writable()
        template_from_dict(tpl.to_dict(), source="template")  # the same checks as a loaded file (types, sizes)
        check_verbalizer(tpl.verbalizer)
        _parse(tpl.template)
        if not tpl.name.strip():
            raise TemplateError("Give the template a name before saving it.")
        path = self._path(tpl.name)
        if path.exists() and not overwrite:
            raise TemplateError(f"A template named '{tpl.name}' already exists.")
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(tpl.to_yaml(), encoding="utf-8")
        return path

    def rename(self, old: str, new: str) -> Path:
        self._writable()
        tpl = self.load(old)
        if not new.strip():
            raise TemplateError("The new name is empty.")
        if new != old and self._path(new).exists():
            raise TemplateError(f"A template named '{new}' already exists.")
        old_path = self._path(old)
        tpl.name = new.strip()
        path = self.save(tpl)
        if old_path != path and old_path.exists():
            old_path.unlink()
        return path

    def delete(self, name: str) -> None:
        self._writable()
        path = self._path(name)
        if not path.exists():
            raise TemplateError(f"No template named '{name}' in the library.")
        path.unlink()


def shipped_templates() -> list[PromptTemplate]:
    """The starting templates in the project's ``templates/`` folder."""
    return TemplateLibrary(SHIPPED_DIR).list()
