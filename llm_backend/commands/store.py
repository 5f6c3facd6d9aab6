"""``store``: list, export and import the saved experiments from the command line.

Examples::

    python -m llm_backend store projects
    python -m llm_backend store runs --project default --kind zero-shot --search minilm
    python -m llm_backend store export --project default -o default.json
    python -m llm_backend store import default.json --name "copy of default"
    python -m llm_backend store delete-runs 3 4
    python -m llm_backend store classifiers --project default

The database is ``ZSS_DB_PATH`` (default ``<data dir>/studio.db``), or ``--db``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_backend.core.errors import UserError
from llm_backend.store.database import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="list, export and import saved experiments (projects, runs, label sets)")
    p.add_argument("--db", help="database file (default: ZSS_DB_PATH or <data dir>/studio.db)")
    actions = p.add_subparsers(dest="store_action", metavar="ACTION")

    actions.add_parser("projects", help="list projects with their number of runs")

    runs = actions.add_parser("runs", help="list runs with accuracy and macro-F1")
    runs.add_argument("--project", default="default")
    runs.add_argument("--kind", action="append", help="only this kind (repeatable)")
    runs.add_argument("--method", action="append", help="only this method (repeatable)")
    runs.add_argument("--search", help="text to find in model, method, dataset, settings or notes")
    runs.add_argument("--json", action="store_true", help="print JSON (with settings and metrics)")

    exp = actions.add_parser("export", help="write one project (runs, label sets, templates) to a JSON file")
    exp.add_argument("--project", default="default")
    exp.add_argument("-o", "--output", help="output file (default: stdout)")

    imp = actions.add_parser("import", help="import a project JSON file as a new project")
    imp.add_argument("file")
    imp.add_argument("--name", help="name for the imported project (default: the name in the file)")

    clfs = actions.add_parser("classifiers", help="list frozen classifiers (from `freeze` or Export classifier)")
    clfs.add_argument("--project", default="default")

    dele = actions.add_parser("delete-runs", help="delete runs by id")
    dele.add_argument("ids", nargs="+", type=int)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = Store(args.db) if args.db else Store()
    try:
        action = args.store_action or "projects"
        if action == "projects":
            names = store.list_projects()
            if not names:
                print("No projects yet.")
            for name in names:
                print(f"{name}\t{store.count_runs(store.project_id(name))} runs")
        elif action == "runs":
            runs = store.list_runs(store.project_id(args.project), kinds=args.kind, methods=args.method,
                                   search=args.search, limit=None)
            if args.json:
                print(json.dumps([r.__dict__ for r in runs], indent=2, default=str))
                return 0
            print("id\tstarted\tstatus\tkind\tmethod\tmodel\tdataset\taccuracy\tmacro_f1")
            for r in runs:
                acc = f"{r.accuracy:.4f}" if r.accuracy is not None else "-"
                f1 = f"{r.macro_f1:.4f}" if r.macro_f1 is not None else "-"
                print(f"{r.id}\t{r.started_at}\t{r.status}\t{r.kind}\t{r.method}\t{r.model}\t{r.dataset_name or '-'}"
                      f"\t{acc}\t{f1}")
        elif action == "export":
            text = store.export_json(store.project_id(args.project))
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
                print(f"Wrote project '{args.project}' to {Path(args.output).name}", file=sys.stderr)
            else:
                print(text)
        elif action == "import":
            path = Path(args.file)
            if not path.is_file():
                raise UserError(f"No such file: {path.name}")
            pid = store.import_project(path.read_bytes(), name=args.name)
            name = next(n for n in store.list_projects() if store.project_id(n) == pid)
            print(f"Imported as project '{name}' ({store.count_runs(pid)} runs).")
        elif action == "classifiers":
            print("id\tcreated\tname\trun\tmethod\tmodel\tlabels\tfolder")
            for c in store.list_classifiers(store.project_id(args.project)):
                info = c["info"] if isinstance(c["info"], dict) else {}
                folder = Path(c["path"]).name + ("" if c["exists"] else " (missing)")
                print(f"{c['id']}\t{c['created_at']}\t{c['name']}\t{c['run_id'] or '-'}\t{info.get('method', '')}\t"
                      f"{info.get('model', '')}\t{info.get('n_labels', '')}\t{folder}")
        elif action == "delete-runs":
            print(f"Deleted {store.delete_runs(args.ids)} run(s).")
        return 0
    finally:
        store.close()
