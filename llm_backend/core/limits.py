"""Every hard limit the app enforces on hostile or careless input, in one place, read from the environment.

The README's limits table and ``docs/security.md`` describe these. Each is read on every call (not at import) so
tests and operators can change them without restarting. Defaults were chosen so that honest use never meets them:
the shipped templates render to < 3,000 characters with 8 examples per label, label and template files are a few
kB, and real JSON exports nest < 10 levels deep.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class Limits:
    #: Characters a rendered prompt may have. Checked while rendering, before anything is tokenized: a prompt far
    #: beyond any model's context only costs memory (the tokenizer of SmolLM2 aborted the process at ~4 GB).
    template_max_chars: int
    #: Wall-clock seconds one render may take in the worker process before it is killed.
    template_timeout_s: float
    #: Loop iterations, summed over all ``{% for %}`` loops, in one render.
    template_max_loop: int
    #: Length of a value built with ``*`` (``[1]*n``, ``'x'*n``) or ``+`` in a template.
    template_max_repeat: int
    #: Characters of template source (the prompt text itself).
    template_max_source: int
    #: Memory (bytes of address space) of the render worker.
    template_worker_memory: int
    #: YAML/JSON: bytes of a label, template or project file read as YAML.
    yaml_max_bytes: int
    #: YAML: alias uses (``*name``) allowed in one document; label and template files need none.
    yaml_max_aliases: int
    #: YAML/JSON: nesting depth.
    max_depth: int
    #: Names (projects, datasets, label sets, templates, models) stored in the experiment store.
    name_max_chars: int
    #: Rows of one table (upload, CLI --data, project import): ZSS_MAX_ROWS.
    max_rows: int


def limits() -> Limits:
    return Limits(
        template_max_chars=int(_env_number("ZSS_TEMPLATE_MAX_CHARS", 100_000)),
        template_timeout_s=_env_number("ZSS_TEMPLATE_TIMEOUT_S", 3.0),
        template_max_loop=int(_env_number("ZSS_TEMPLATE_MAX_LOOP", 10_000)),
        template_max_repeat=int(_env_number("ZSS_TEMPLATE_MAX_REPEAT", 100_000)),
        template_max_source=int(_env_number("ZSS_TEMPLATE_MAX_SOURCE", 20_000)),
        template_worker_memory=int(_env_number("ZSS_TEMPLATE_WORKER_MB", 1024)) * 1024 * 1024,
        yaml_max_bytes=int(_env_number("ZSS_YAML_MAX_KB", 1024)) * 1024,
        yaml_max_aliases=int(_env_number("ZSS_YAML_MAX_ALIASES", 50)),
        max_depth=int(_env_number("ZSS_MAX_NESTING", 50)),
        name_max_chars=200,
        max_rows=int(_env_number("ZSS_MAX_ROWS", 200_000)),
    )
