"""YAML and JSON parsing with budgets: no alias bombs, no deep nesting, no oversized files.

``yaml.safe_load`` refuses Python objects but not *expansion*: nine nested aliases of nine items each (a 444-byte
"billion laughs" label file) made it run for over a minute at 2.8 GB. Here composing counts alias uses and nesting
depth and stops past a small budget, before the constructor expands anything. JSON has no aliases, but a file
nested thousands deep makes ``json.loads`` (or any code walking the result) raise ``RecursionError``; that becomes
a clear error too.
"""
from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent

from llm_backend.core.limits import limits
from llm_backend.core.errors import UserError


class NestingError(UserError):
    """A YAML/JSON document is too large, too deep or uses too many aliases."""


class _BudgetLoader(yaml.SafeLoader):
    """A SafeLoader whose composer counts alias uses and depth (checked before any node is expanded)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        lim = limits()
        self._max_aliases, self._max_depth = lim.yaml_max_aliases, lim.max_depth
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > self._max_aliases:
                raise NestingError(f"uses more than {self._max_aliases} YAML aliases (*name); write the values out "
                                   "instead (alias expansion is limited because it can blow a small file up to "
                                   "gigabytes)")
        self._depth += 1
        if self._depth > self._max_depth:
            raise NestingError(f"is nested more than {self._max_depth} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str | bytes, *, what: str = "file") -> Any:
    """Parse one YAML (or JSON) document under the limits; :class:`NestingError` or ``yaml.YAMLError`` otherwise."""
    lim = limits()
    size = len(text.encode("utf-8", "replace") if isinstance(text, str) else text)
    if size > lim.yaml_max_bytes:
        raise NestingError(f"The {what} is {size / 1024:.0f} kB, above the {lim.yaml_max_bytes // 1024} kB limit "
                           "for label and template files.")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    loader = _BudgetLoader(text)
    try:
        return loader.get_single_data()
    except NestingError as exc:
        raise NestingError(f"The {what} {exc}.") from None
    except RecursionError:
        raise NestingError(f"The {what} is nested too deeply to read.") from None
    except ComposerError as exc:
        raise yaml.YAMLError(str(exc)) from None
    finally:
        loader.dispose()


def check_depth(value: Any, *, what: str = "file", max_depth: int | None = None) -> Any:
    """``value`` unchanged, or :class:`NestingError` when lists/dicts nest deeper than the limit (iterative walk)."""
    limit = max_depth if max_depth is not None else limits().max_depth
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise NestingError(f"The {what} is nested more than {limit} levels deep; this app reads flat tables "
                               "and simple records.")
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return value


def load_json(text: str | bytes, *, what: str = "JSON file") -> Any:
    """``json.loads`` with a depth limit; RecursionError (thousands of nested brackets) becomes NestingError.

    ``json.JSONDecodeError`` is left to the caller, which knows how to word a syntax error for its file.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise NestingError(f"The {what} is nested too deeply to read (thousands of levels); "
                           f"the limit is {limits().max_depth}.") from None
    return check_depth(value, what=what)
