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


class RunStopped(UserError):
    """Raised from a progress callback when the user pressed Stop (or the browser session went away)."""


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
    """One background run. ``job`` receives the callbacks and returns a result (a TrainResult for training, a
    ZeroShotResult for a long zero-shot run); it ends early when ``cb.should_stop()`` turns true."""

    method: str
    job: Callable[[TrainCallbacks], TrainResult]
    owner: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    result: TrainResult | None = None
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # what the starter shows next to the run (rows, k, seed)
    config: dict[str, Any] = field(default_factory=dict)  # the full settings, for the experiment store
    #: False once the browser session that started the run is gone: the run then stops like on Stop (issue 18).
    alive: Callable[[], bool] | None = None
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

    def should_stop(self) -> bool:
        if not self._stop.is_set() and self.alive is not None and not self.alive():
            log.info("Run %s: its browser session is gone; stopping", self.run_id)
            self._stop.set()
        return self._stop.is_set()

    def _work(self) -> None:
        cb = TrainCallbacks(self._progress, self._on_epoch, self.should_stop, self._on_status)
        try:
            self.result = self.job(cb)
        except RunStopped:
            self.result = None
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
            elif (self.result is None and self._stop.is_set()) or getattr(self.result, "stopped", False):
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

    def start(self, owner: str, method: str, job: Callable[[TrainCallbacks], Any],
              alive: Callable[[], bool] | None = None) -> TrainingRun:
        with self._lock:
            current = self._runs.get(owner)
            if current is not None and current.running:
                raise TrainingError("A training run is already in progress. Wait for it to finish or stop it first.")
            busy = sum(1 for r in self._runs.values() if r.running)
            if busy >= self.max_running:
                raise TrainingError(f"{busy} training runs are already using this server. Try again when one ends.")
            run = TrainingRun(method, job, owner=owner, alive=alive)
            self._runs[owner] = run
            return run.start()

    def current(self, owner: str) -> TrainingRun | None:
        with self._lock:
            return self._runs.get(owner)


MANAGER = RunManager()


def zero_shot_scorer(embedder: Any, labels: Any = None) -> Any:
    """Zero-shot embedding similarity (refinement, prior centering) as one scorer.

    This was the zero-shot page's default until issue 17 (now self-training); it stays the baseline here so the
    fine-tune figures in docs/fine-tune.md remain comparable. It is the fine-tune baseline and the distillation teacher on the page and in ``train``, so "zero-shot" means
    the same predictions everywhere. ``labels`` (the user's label set) gives class names their descriptions.
    """
    from llm_backend.scorers.embedding import EmbeddingScorer
    from llm_backend.scorers.pipeline import CalibratedScorer
    from llm_backend.scorers.zero_shot import DEFAULT_CALIBRATION

    return CalibratedScorer(EmbeddingScorer(embedder), DEFAULT_CALIBRATION, labels)


def teacher_scorer(choice: str | None, embedder: Any, labels: Any = None, load: Callable[[Any], Any] | None = None,
                   registry: Any = None) -> Any:
    """The distillation teacher: ``"zero-shot"``/None (see :func:`zero_shot_scorer`) or a trained model's name."""
    if not choice or choice == "zero-shot":
        return zero_shot_scorer(embedder, labels)
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.training.trained_models import TrainedScorer

    spec = (registry or ModelRegistry()).resolve(choice, "classifier")
    if spec.source != "trained":
        raise TrainingError(f"'{choice}' is not a model trained here; use 'zero-shot' or a trained model.")
    return TrainedScorer((load or get_model)(spec))


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
    """A job for :meth:`RunManager.start` (the page) or to call directly (``train``): train, then score the test
    split and a zero-shot baseline on it.

    Evaluating inside the job keeps the page responsive for large test splits too. Results land in
    ``result.evaluation``: ``test`` (metrics.evaluate of the model), ``pred``, ``baseline`` (same split, zero-shot
    through the same pipeline as the zero-shot page) and, for distillation, ``teacher`` metrics and the student's
    speed-up. A head has no training loop, so its one history row gets the training log-loss (the chart is never
    empty).
    """
    from llm_backend.data.labels import make_labels
    from llm_backend.evaluation.metrics import evaluate
    from llm_backend.scorers.base import decide
    from llm_backend.scorers.pipeline import scored
    from llm_backend.training.trained_models import predict, scorer_for
    from llm_backend.training.trainer import train

    def _decide(scorer: Any, rows: list[str], labs: Any, progress: Any = None) -> list[str]:
        # The zero-shot baseline/teacher is a CalibratedScorer (calibrated inside); a trained teacher needs none.
        out = scored(scorer, rows, labs, calibration="none", progress=progress)
        return decide(out.probs, [l.name for l in labs]).labels

    def job(cb: TrainCallbacks) -> TrainResult:
        result = train(texts, labels, config, embedder, cb, teacher=teacher, unlabelled=unlabelled,
                       label_set=baseline_labels)
        _fill_head_loss(result, texts, labels)
        if not test_texts:
            return result
        cb.status("Scoring the test split")
        pred, _ = predict(result.model, list(test_texts), progress=cb.progress)
        result.evaluation["pred"] = pred
        result.evaluation["test"] = evaluate(list(test_gold), pred, result.classes)
        if baseline is not None and baseline_labels:
            cb.status("Zero-shot baseline on the same split")
            labs = make_labels(baseline_labels)
            names = [l.name for l in labs]
            result.evaluation["baseline"] = evaluate(list(test_gold), _decide(baseline, list(test_texts), labs,
                                                                                cb.progress), names)
            result.evaluation["baseline_name"] = getattr(baseline, "name", "zero-shot")
        if teacher is not None:
            from llm_backend.training.distillation import measure_speed

            cb.status("Scoring the test split with the teacher")
            t_pred = _decide(teacher, list(test_texts), make_labels(result.classes))
            result.evaluation["teacher"] = evaluate(list(test_gold), t_pred, result.classes)
            sample = list(test_texts)[:256]
            t_speed = measure_speed(teacher, sample, result.classes)
            s_speed = measure_speed(scorer_for(result.model, "student"), sample, result.classes)
            result.evaluation["speed"] = {"teacher_texts_per_s": t_speed, "student_texts_per_s": s_speed,
                                          "speedup": s_speed / t_speed if t_speed else None}
        return result

    return job


def _fill_head_loss(result: TrainResult, texts: list[str], labels: list[str]) -> None:
    """Training log-loss for one-step methods (the logistic head) whose history row has no loss."""
    import numpy as np

    if not result.history or any(r.get("loss") is not None for r in result.history):
        return
    model = result.model
    if not hasattr(model, "predict_log_proba") or not texts:
        return
    try:
        logp = np.asarray(model.predict_log_proba(list(texts)))
        idx = {c: j for j, c in enumerate(result.classes)}
        rows = [(i, idx[l]) for i, l in enumerate(labels) if l in idx]
        if rows:
            result.history[-1]["loss"] = float(-np.mean([logp[i, j] for i, j in rows]))
    except Exception:  # noqa: BLE001 - a missing chart point must never fail a finished run
        log.debug("head loss not computed", exc_info=True)


def stoppable(cb: TrainCallbacks) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback for code without a stop hook (scorers): reports progress to the run and
    raises :class:`RunStopped` between batches once Stop was pressed."""

    def _progress(done: int, total: int) -> None:
        if cb.stop_requested():
            raise RunStopped(f"Stopped after {done:,} of {total:,}.")
        if cb.progress:
            cb.progress(done, total)

    return _progress


def zero_shot_job(run: Callable[[Callable[[int, int], None]], Any], record: Callable[[Any, float], None] | None = None
                  ) -> Callable[[TrainCallbacks], Any]:
    """Wrap ``run(progress)`` (e.g. ``lambda p: run_scorer(..., progress=p)``) as a stoppable background job."""

    def job(cb: TrainCallbacks) -> Any:
        cb.status("Scoring")
        start = time.perf_counter()
        out = run(stoppable(cb))
        if record is not None:
            record(out, time.perf_counter() - start)
        return out

    return job


#: Zero-shot runs in the background (one per session); separate from training so a long scoring run does not
#: block a training run.
SCORING = RunManager(max_running=4)
