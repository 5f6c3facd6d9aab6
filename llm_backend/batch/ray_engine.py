"""The Ray engine: Ray Data reads partitions in tasks and scores them with ``map_batches`` over an actor pool.

Each actor loads the frozen classifier and its model once (:class:`_ScoreActor`), then labels batch after batch;
when the cluster has GPUs, actors ask for a fraction of one (:func:`actor_plan`: several small-model actors share a
GPU) and load their model on CUDA. Without ``--address`` a local Ray is started in this process on
this machine's cores; with it, the job joins an existing cluster unchanged (every worker needs the classifier folder
and its model at the same paths: a worker missing the model fails with the classifier's message).

Rows come back to the driver (only ids, labels and two floats), which writes each partition once it is complete
(:class:`~llm_backend.batch.job.Collector`): Ray may retry a failed task or restart a failed actor, and a row
delivered twice is dropped by its row number, so the output never holds duplicates or half partitions.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import pandas as pd

from llm_backend.batch.job import BatchJob, Collector, partition_frames, score_frame
from llm_backend.core.errors import UserError

#: CPU share of a reading task: reading is light next to encoding, and a whole CPU per reader would leave a 2-core
#: machine one encoder actor.
READER_CPUS = 0.25
#: A file path: when set and missing, the first scoring call creates it and kills its actor (tests Ray's retry).
CRASH_ONCE_ENV = "ZSS_BATCH_CRASH_ONCE"
#: Target block size: about 2,000-5,000 short texts.
BLOCK_BYTES = 1 << 20
#: Scoring actors per GPU by default. The bundled models are small (MiniLM 90 MB, SmolLM2-135M 0.5 GB): one actor
#: leaves most of a GPU idle between its batches (reading, tokenizing, moving rows), so several share one GPU, each
#: asking Ray for 1/ACTORS_PER_GPU of it. Not measured on a real GPU in this session (see docs/batch-scoring.md).
ACTORS_PER_GPU = 4


def _read_file(batch: pd.DataFrame, job: BatchJob, done: set[tuple[int, int]]) -> Iterator[pd.DataFrame]:
    for fi in batch["file"].tolist():
        yield from partition_frames(job, job.files[int(fi)], done)


class _ScoreActor:
    """Holds one loaded classifier; Ray Data calls it with batches of tagged rows."""

    def __init__(self, job: BatchJob, use_gpu: bool = False) -> None:
        from llm_backend.batch.frozen import ClassifierRunner

        if use_gpu:
            # Ray has set CUDA_VISIBLE_DEVICES for this actor; a CPU-only setting inherited from the driver's
            # environment (ZSS_FORCE_CPU, as in the tests) must not keep the model off the GPU it was given.
            os.environ["ZSS_FORCE_CPU"] = "0"
        self.job = job
        self.runner = ClassifierRunner(job.clf, cache_entries=job.cache_entries)
        if use_gpu:
            off = [m.spec.name for m in self.runner.loaded if getattr(getattr(m, "device", None), "kind", "") != "cuda"]
            if off:
                raise UserError(f"Ray gave this scoring actor a GPU, but {', '.join(off)} loaded on the CPU (torch sees "
                                "no CUDA device on this worker). Install a CUDA build of torch on the GPU workers.")

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        crash_marker = os.environ.get(CRASH_ONCE_ENV)
        if crash_marker and not os.path.exists(crash_marker):
            # Fault injection for the retry test: the first call anywhere kills its worker process outright.
            open(crash_marker, "w").close()
            os._exit(1)
        return score_frame(self.runner, batch, self.job.batch_rows)


def _init_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                              "configure_logging": True}
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise UserError(f"Could not start or join {where}: {str(exc).splitlines()[0][:200]}") from None


@dataclass(frozen=True)
class ActorPlan:
    """How many scoring actors, and the Ray resources each one asks for."""

    actors: int
    num_cpus: float
    num_gpus: float

    @property
    def use_gpu(self) -> bool:
        return self.num_gpus > 0

    def describe(self) -> str:
        return f"{self.actors} actor(s), {self.num_cpus:g} CPU / {self.num_gpus:g} GPU each"


def _floor4(x: float) -> float:
    """Ray accepts fractional resources with at most 4 decimals; round down so the actors always fit."""
    return math.floor(x * 10_000) / 10_000


def actor_plan(resources: Mapping[str, float], workers: int | None = None,
               actors_per_gpu: int = ACTORS_PER_GPU) -> ActorPlan:
    """The actor pool for a cluster with ``resources`` (``ray.cluster_resources()``): a pure function, unit-tested.

    - With GPUs: ``workers`` actors (default ``actors_per_gpu`` per GPU), each asking for an equal fraction of the
      GPUs, never more than one whole GPU (a scorer uses one device), and an equal share of the CPUs left after the
      readers, at most one.
    - Without: one actor per CPU left after the readers (or ``workers``), sharing those CPUs equally.
    """
    gpus = float(resources.get("GPU", 0) or 0)
    cpus = float(resources.get("CPU", 1) or 1)
    avail = max(cpus - READER_CPUS, 0.5)
    if gpus > 0:
        n = workers or max(1, int(round(gpus * actors_per_gpu)))
        return ActorPlan(n, _floor4(min(1.0, avail / n)), _floor4(min(1.0, gpus / n)))
    n = workers or max(1, round(avail))
    return ActorPlan(n, _floor4(avail / n), 0.0)


def pool_plan(workers: int | None) -> ActorPlan:
    """:func:`actor_plan` for the cluster Ray is connected to."""
    import ray

    return actor_plan(ray.cluster_resources(), workers)


def run_ray(job: BatchJob, done: set[tuple[int, int]], collector: Collector, *, address: str | None = None,
            workers: int | None = None, num_cpus: int | None = None) -> dict[str, Any]:
    import ray
    import ray.data

    _init_ray(address, num_cpus)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    # Small blocks so one file's partitions spread over the whole actor pool (Ray hands out whole blocks; at the
    # default 128 MB a file of short texts would be one block on one actor).
    ctx.target_max_block_size = BLOCK_BYTES
    if hasattr(ctx, "enable_rich_progress_bars"):
        ctx.enable_rich_progress_bars = False
    plan = pool_plan(workers)
    ds = ray.data.from_items([{"file": f.index} for f in job.files], override_num_blocks=len(job.files))
    ds = ds.map_batches(_read_file, fn_kwargs={"job": job, "done": done}, batch_size=1, batch_format="pandas",
                        num_cpus=READER_CPUS)
    ds = ds.map_batches(_ScoreActor, fn_constructor_kwargs={"job": job, "use_gpu": plan.use_gpu},
                        batch_size=job.batch_rows, batch_format="pandas",
                        compute=ray.data.ActorPoolStrategy(size=plan.actors), num_cpus=plan.num_cpus,
                        num_gpus=plan.num_gpus, udf_modifying_row_count=False)
    try:
        for out in ds.iter_batches(batch_format="pandas", batch_size=None):
            collector.add(out)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray wraps worker errors; surface the user-facing one when there is one
        raise _user_error_from(exc) from None
    return collector.finish(f"ray ({plan.describe()})")


def _user_error_from(exc: BaseException) -> Exception:
    """The analyst's message inside a Ray error (a missing model or column on a worker), else the error itself."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen or e is None:
            continue
        seen.add(id(e))
        if isinstance(e, UserError):
            lines = [l for l in str(e).splitlines() if l.strip()]
            return UserError(lines[-1] if lines else str(e))
        stack += [getattr(e, "cause", None), e.__cause__, e.__context__]
    text = str(exc)
    for marker in ("ClassifierError: ", "DataError: ", "ModelError: ", "UserError: "):
        if marker in text:
            return UserError(text.split(marker, 1)[1].splitlines()[0][:500])
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))
