"""``python -m llm_backend``: the batch face of the same backend the pages use.

Each subcommand lives in its own module under :mod:`llm_backend.commands` and exposes ``register(subparsers)``;
the parser is assembled from whatever modules are there, so adding a command never edits this file. A
:class:`UserError` prints its message and exits 2; progress goes to stderr, results to files or stdout.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from llm_backend import commands
from llm_backend.core.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_backend",
        description="Zero-Shot Studio from the command line: list models, score, prompt, map and train.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
