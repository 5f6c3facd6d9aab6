"""Training runs in a background thread, so a page stays responsive while a model trains.

A :class:`TrainingRun` owns one thread, a stop event and a snapshot of progress (steps, status, per-epoch history,
ETA) that the page polls. The :class:`RunManager` refuses a second run for the same owner (a browser session)
while one is running, and caps concurrent runs per process: two trainings on a 2-core machine only make both slow.
No Streamlit here; the page reads :meth:`TrainingRun.snapshot` from a polling fragment.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from llm_backend.core.errors import TrainingError, UserError
from llm_backend.training.loop import TrainCallbacks, TrainResult

log = logging.getLogger(__name__)


@dataclass
class RunSnapshot:
    """A consistent copy of a run's state for drawing."""

    run_id: str
    method: str
    state: str  # "running", "stopping", "done", "stopped", "failed"
    status: str
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    history: list[dict[str, Any]]
    error: str | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


@dataclass
class TrainingRun:
    """One background run. ``job`` receives the callbacks and returns a TrainResult."""

    method: str
    job: Callable[[TrainCallbacks], TrainResult]
    owner: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    result: TrainResult | None = None
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # what the starter shows next to the run (rows, k, seed)
    config: dict[str, Any] = field(default_factory=dict)  # the full settings, for the experiment store
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _done: int = 0
    _total: int = 0
    _status: str = "starting"
    _history: list[dict[str, Any]] = field(default_factory=list)
    _started: float = 0.0
    _finished: float | None = None
    _phase_started: float = 0.0

    def start(self) -> "TrainingRun":
        self._started = self._phase_started = time.perf_counter()
        self._thread = threading.Thread(target=self._work, name=f"train-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    # callbacks, called from the worker thread
    def _progress(self, done: int, total: int) -> None:
        with self._lock:
            if total != self._total or done < self._done:
                self._phase_started = time.perf_counter()  # a new phase (embedding, then training) restarts the ETA
            self._done, self._total = done, total

    def _on_epoch(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._history.append(dict(row))

    def _on_status(self, text: str) -> None:
        with self._lock:
            self._status = text

    def _work(self) -> None:
        cb = TrainCallbacks(self._progress, self._on_epoch, self._stop.is_set, self._on_status)
        try:
            self.result = self.job(cb)
        except UserError as exc:
            self.error = str(exc)
        except Exception as exc:  # a bug must not kill the server thread silently: keep it for the page and the log
            log.exception("Training run %s failed", self.run_id)
            self.error = f"Training failed unexpectedly ({type(exc).__name__}: {str(exc)[:300]})."
        finally:
            self._finished = time.perf_counter()

    # control and inspection, from any thread
    def stop(self) -> None:
        """Ask the run to end after the current step; it keeps the best weights reached so far."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            now = self._finished or time.perf_counter()
            elapsed = now - self._started if self._started else 0.0
            eta = None
            if self.running and self._done and self._total:
                rate = (now - self._phase_started) / self._done
                eta = max(0.0, rate * (self._total - self._done))
            if self.running:
                state = "stopping" if self._stop.is_set() else "running"
            elif self.error:
                state = "failed"
            elif self.result is not None and self.result.stopped:
                state = "stopped"
            else:
                state = "done"
            return RunSnapshot(self.run_id, self.method, state, self._status, self._done, self._total, elapsed, eta,
                               list(self._history), self.error)


class RunManager:
    """Starts runs, at most one per owner and ``max_running`` per process."""

    def __init__(self, max_running: int = 2) -> None:
        self.max_running = max_running
        self._runs: dict[str, TrainingRun] = {}
        self._lock = threading.Lock()

    def start(self, owner: str, method: str, job: Callable[[TrainCallbacks], TrainResult]) -> TrainingRun:
        with self._lock:
            current = self._runs.get(owner)
            if current is not None and current.running:
                raise TrainingError("A training run is already in progress. Wait for it to finish or stop it first.")
            busy = sum(1 for r in self._runs.values() if r.running)
            if busy >= self.max_running:
                raise TrainingError(f"{busy} training runs are already using this server. Try again when one ends.")
            run = TrainingRun(method, job, owner=owner)
            self._runs[owner] = run
            return run.start()

    def current(self, owner: str) -> TrainingRun | None:
        with self._lock:
            return self._runs.get(owner)


MANAGER = RunManager()


def train_and_evaluate_job(
    texts: list[str],
    labels: list[str],
    config: Any,
    embedder: Any,
    *,
    test_texts: list[str] = (),  # type: ignore[assignment]
    test_gold: list[str] = (),  # type: ignore[assignment]
    teacher: Any = None,
    unlabelled: list[str] = (),  # type: ignore[assignment]
    baseline: Any = None,
    baseline_labels: Any = None,
) -> Callable[[TrainCallbacks], TrainResult]:
    """A job for :meth:`RunManager.start`: train, then score the test split (and a zero-shot baseline) in the thread.

    Evaluating inside the job keeps the page responsive for large test splits too. Results land in
    ``result.evaluation``: ``test`` (metrics.evaluate of the model), ``pred``, ``baseline`` (same split, zero-shot)
    and, for distillation, ``teacher`` metrics and the student's speed-up.
    """
    from llm_backend.evaluation.metrics import evaluate
    from llm_backend.scorers.base import decide, to_probabilities
    from llm_backend.training.trained_models import predict, scorer_for
    from llm_backend.training.trainer import train

    def job(cb: TrainCallbacks) -> TrainResult:
        result = train(texts, labels, config, embedder, cb, teacher=teacher, unlabelled=unlabelled,
                       label_set=baseline_labels)
        if not test_texts:
            return result
        cb.status("Scoring the test split")
        pred, _ = predict(result.model, list(test_texts), progress=cb.progress)
        result.evaluation["pred"] = pred
        result.evaluation["test"] = evaluate(list(test_gold), pred, result.classes)
        if baseline is not None and baseline_labels:
            cb.status("Zero-shot baseline on the same split")
            probs = to_probabilities(baseline.score(list(test_texts), baseline_labels, progress=cb.progress),
                                     baseline.kind)
            names = [l.name for l in baseline_labels]
            result.evaluation["baseline"] = evaluate(list(test_gold), decide(probs, names).labels, names)
            result.evaluation["baseline_name"] = getattr(baseline, "name", "zero-shot")
        if teacher is not None:
            from llm_backend.data.labels import make_labels
            from llm_backend.training.distillation import measure_speed

            cb.status("Scoring the test split with the teacher")
            t_probs = to_probabilities(teacher.score(list(test_texts), make_labels(result.classes)), teacher.kind)
            result.evaluation["teacher"] = evaluate(list(test_gold), decide(t_probs, result.classes).labels,
                                                    result.classes)
            sample = list(test_texts)[:256]
            t_speed = measure_speed(teacher, sample, result.classes)
            s_speed = measure_speed(scorer_for(result.model, "student"), sample, result.classes)
            result.evaluation["speed"] = {"teacher_texts_per_s": t_speed, "student_texts_per_s": s_speed,
                                          "speedup": s_speed / t_speed if t_speed else None}
        return result

    return job
