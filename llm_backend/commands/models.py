"""``models``: what can be loaded, from where, and whether it works offline."""
from __future__ import annotations

import argparse
import json

from llm_backend.models.registry import ModelRegistry, is_available_offline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models and whether they are available offline")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": s.name,
            "role": s.role,
            "source": s.source,
            "location": s.location,
            "offline": is_available_offline(s),
            "description": s.description,
        }
        for s in ModelRegistry().all()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    widths = [max(len(str(r[k])) for r in rows + [{k: k for k in rows[0]}]) for k in ("name", "role", "source")]
    print(f"{'name':<{widths[0]}}  {'role':<{widths[1]}}  {'source':<{widths[2]}}  offline  description")
    for r in rows:
        print(f"{r['name']:<{widths[0]}}  {r['role']:<{widths[1]}}  {r['source']:<{widths[2]}}  "
              f"{'yes' if r['offline'] else 'no ':<7}  {r['description']}")
    return 0
