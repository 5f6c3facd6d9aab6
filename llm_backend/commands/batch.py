"""``batch``: label an archive (CSV / Parquet / JSON Lines, a path or a glob) with a frozen classifier.

Examples::

    python -m llm_backend freeze --data tickets_5k.csv --text-column text --labels-file labels.yaml --out clf/
    python -m llm_backend batch --classifier clf/ --input 'archive/*.parquet' --text-column body \\
        --id-column ticket_id --output predictions/
    python -m llm_backend batch ... --engine local          # in-process, without Ray
    python -m llm_backend batch ... --address ray://head:10001   # an existing Ray cluster

Output: ``part-<file>-<partition>.parquet`` files with the id column (default ``row``, the row number in its file,
plus ``file`` when there are several inputs), ``label``, ``score`` and ``margin``; ``_job.json`` says what the job
is and ``_SUCCESS.json`` what it did. Rerunning the same command resumes; rows with empty text get an empty label
and are counted in the summary.
"""
from __future__ import annotations

import argparse
import json
import sys

from llm_backend.batch.engines import ENGINES, make_job, run_batch
from llm_backend.batch.job import DEFAULT_BATCH_ROWS
from llm_backend.batch.readers import DEFAULT_ROWS_PER_PARTITION


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="label CSV/Parquet/JSONL files of any size with a frozen classifier (Ray or local)",
                       description="Score files lazily with a classifier written by `freeze`; Parquet partitions out.")
    p.add_argument("--classifier", required=True, help="folder written by `freeze` (or an exported classifier's name)")
    p.add_argument("--input", required=True, nargs="+", help="input file(s), folder or glob (quote globs)")
    p.add_argument("--text-column", required=True, help="column holding the text")
    p.add_argument("--output", required=True, help="output folder (new or empty; the same folder resumes the job)")
    p.add_argument("--id-column", help="column copied to the output to join predictions back (default: row number)")
    p.add_argument("--engine", choices=ENGINES, default="ray", help="ray (default: local Ray or --address) or local")
    p.add_argument("--address", help="join this Ray cluster instead of starting a local one")
    p.add_argument("--workers", type=int, help="scoring actors (default: one per CPU, or per GPU when there are GPUs)")
    p.add_argument("--rows-per-partition", type=int, default=DEFAULT_ROWS_PER_PARTITION,
                   help=f"rows per output file (default {DEFAULT_ROWS_PER_PARTITION:,}); part of the job's identity")
    p.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS, help="rows per model call")
    p.add_argument("--cache-entries", type=int, default=20_000,
                   help="per-worker cache of repeated texts' embeddings (0 = off; bounded, so memory stays flat)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    inputs = args.input if len(args.input) > 1 else args.input[0]
    job = make_job(args.classifier, inputs, args.text_column, args.output, id_column=args.id_column,
                   rows_per_partition=args.rows_per_partition, batch_rows=args.batch_rows,
                   cache_entries=args.cache_entries)
    print(f"{job.clf.describe()}\n{len(job.files)} input file(s) → {job.output} (job {job.job_id})",
          file=sys.stderr, flush=True)
    summary = run_batch(job, engine=args.engine, address=args.address, workers=args.workers)
    if summary["empty_text_skipped"]:
        print(f"note: {summary['empty_text_skipped']:,} row(s) have empty text: skipped (empty label), counted in "
              "_SUCCESS.json.", file=sys.stderr)
    print(json.dumps(summary), file=sys.stderr)
    return 0
