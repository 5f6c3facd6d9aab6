"""``run_batch``: one entry point for a batch job on either engine (what the ``batch`` command calls).

``local`` scores in this process without Ray; ``ray`` (the default) runs Ray Data over an actor pool, on a local
Ray started here or on the cluster at ``address``. Both read the same partitions and run the same scoring code
(:mod:`llm_backend.batch.job`), so they write the same rows.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llm_backend.batch.frozen import check_models, load_classifier
from llm_backend.batch.job import DEFAULT_BATCH_ROWS, BatchJob, Collector, prepare_output
from llm_backend.batch.readers import DEFAULT_ROWS_PER_PARTITION, check_columns, count_rows, expand_inputs
from llm_backend.core.errors import UserError

ENGINES = ("ray", "local")


def make_job(classifier: str | os.PathLike[str], inputs: str | list[str], text_column: str, output: str | os.PathLike[str],
             *, id_column: str | None = None, rows_per_partition: int = DEFAULT_ROWS_PER_PARTITION,
             batch_rows: int = DEFAULT_BATCH_ROWS, cache_entries: int = 20_000) -> BatchJob:
    """Validate everything that can be checked before any work: classifier, its models, inputs and their columns."""
    clf = load_classifier(classifier)
    check_models(clf)
    files = expand_inputs(inputs)
    if not text_column or not str(text_column).strip():
        raise UserError("Name the text column (--text-column).")
    check_columns(files, text_column, id_column)
    return BatchJob(str(Path(classifier)), clf, files, text_column, id_column or None, Path(output),
                    int(rows_per_partition), int(batch_rows), int(cache_entries))


def run_batch(job: BatchJob, *, engine: str = "ray", address: str | None = None, workers: int | None = None,
              num_cpus: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) ``job``; returns the summary also written to ``_SUCCESS.json`` in the output folder."""
    if engine not in ENGINES:
        raise UserError(f"Unknown engine '{engine}'. Choose one of: {', '.join(ENGINES)}.")
    if address and engine != "ray":
        raise UserError("--address joins a Ray cluster; it needs --engine ray.")
    if workers is not None and workers < 1:
        raise UserError("--workers must be at least 1.")
    done = prepare_output(job)
    sizes = [count_rows(f) for f in job.files]
    total = sum(s for s in sizes if s is not None) if all(s is not None for s in sizes) else None
    collector = Collector(job, progress=progress, total_rows=total)
    if engine == "local":
        from llm_backend.batch.local import run_local

        return run_local(job, done, collector)
    from llm_backend.batch.ray_engine import run_ray

    return run_ray(job, done, collector, address=address, workers=workers, num_cpus=num_cpus)
