"""The in-process engine: one process reads, scores and writes partition after partition, without Ray.

For small jobs and machines without Ray. Memory holds one partition (``rows_per_partition`` rows) plus the model, so
it stays flat however large the input is (measured in ``bench/batch_scale.py``).
"""
from __future__ import annotations

from typing import Any

from llm_backend.batch.frozen import ClassifierRunner
from llm_backend.batch.job import BatchJob, Collector, partition_frames, score_frame


def run_local(job: BatchJob, done: set[tuple[int, int]], collector: Collector) -> dict[str, Any]:
    runner = ClassifierRunner(job.clf, cache_entries=job.cache_entries)
    for f in job.files:
        for frame in partition_frames(job, f, done):
            collector.add(score_frame(runner, frame, job.batch_rows))
    return collector.finish("local")
