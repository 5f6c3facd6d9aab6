"""The training loop's shared pieces: settings, callbacks, result, and the AdamW loop for transformers.

Why a module of its own: fine-tuning (:mod:`llm_backend.training.trainer`) and distillation
(:mod:`llm_backend.training.distillation`) run the same loop with the same config and callbacks. When these lived
in ``trainer`` the distillation imported its private helpers while ``train()`` imported the distillation: a circle.
Both now import from here, and ``train()`` only dispatches.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from llm_backend.core.device import DeviceInfo
from llm_backend.core.errors import TrainingError
from llm_backend.core.progress import Progress, report
from llm_backend.evaluation.metrics import evaluate
from llm_backend.training.trained_models import SequenceModel, TrainedModel

TRAINING_METHODS: dict[str, str] = {
    "head": "Head on frozen embeddings (logistic regression, seconds)",
    "setfit": "SetFit-style contrastive tuning of the embedder, then a head",
    "finetune": "Fine-tune the transformer with a classification head (all weights)",
    "finetune-head": "Train only the classification head of the transformer (frozen body)",
    "lora": "Fine-tune with LoRA adapters (peft): few trainable weights",
    "distill": "Distil a teacher's soft labels into a smaller, faster student",
}
_DEFAULT_LR = {"setfit": 2e-5, "finetune": 1e-4, "finetune-head": 2e-3, "lora": 1e-3, "distill": 1e-4}
_DEFAULT_EPOCHS = {"head": 1, "setfit": 1, "finetune": 15, "finetune-head": 30, "lora": 15, "distill": 4}


@dataclass
class TrainConfig:
    """Settings of one run. ``None`` means "the method's default", resolved by :meth:`resolved`."""

    method: str = "head"
    epochs: int | None = None
    batch_size: int = 16
    learning_rate: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    val_fraction: float = 0.0
    patience: int = 3
    seed: int = 0
    max_length: int = 128
    head_c: float = 10.0  # inverse regularisation of the logistic head; unit-length embeddings need a large C
    label_anchor_weight: float = 2.0  # each class's label sentence joins the head's training rows with this weight
    num_pairs: int | None = None  # contrastive pairs per epoch (SetFit); None: 40 per row, capped
    # head / setfit: label the unlabelled rows with the few-shot head, refit on gold + the confident share of them
    pseudo_labels: bool = False
    pseudo_fraction: float = 0.5  # share of each predicted class's unlabelled rows kept (largest margin first)
    # setfit: the head reads the untouched embedder's view beside the tuned body's (trained_models.both_views)
    base_view: bool = True
    lora_r: int = 8
    lora_alpha: int = 16
    # distillation
    student: str = "small"  # "small" (truncated transformer) or "head" (logistic head on embeddings)
    student_layers: int = 3
    distill_lambda: float = 0.5  # weight of cross-entropy on gold rows next to KL on the teacher's soft labels
    teacher_temperature: float | None = None

    def resolved(self) -> "TrainConfig":
        if self.method not in TRAINING_METHODS:
            raise TrainingError(f"Unknown training method '{self.method}'. Choose one of: {', '.join(TRAINING_METHODS)}.")
        cfg = copy.copy(self)
        cfg.epochs = int(self.epochs if self.epochs is not None else _DEFAULT_EPOCHS[self.method])
        cfg.learning_rate = float(self.learning_rate if self.learning_rate is not None else _DEFAULT_LR.get(self.method, 1e-4))
        if cfg.epochs < 1 or cfg.batch_size < 1:
            raise TrainingError("Epochs and batch size must be at least 1.")
        if not 0 <= cfg.val_fraction < 0.9:
            raise TrainingError("The validation share must be between 0 and 0.9.")
        if cfg.learning_rate <= 0:
            raise TrainingError("The learning rate must be positive.")
        if cfg.label_anchor_weight < 0:
            raise TrainingError("The label anchor weight must be 0 (off) or positive.")
        if not 0 < cfg.pseudo_fraction <= 1:
            raise TrainingError("The pseudo-label share must be above 0 and at most 1.")
        return cfg

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainCallbacks:
    """How a run talks to whoever started it. All optional; the CLI uses progress only, the page all of them."""

    progress: Progress = None  # (steps done, steps total)
    on_epoch: Callable[[dict[str, Any]], None] | None = None  # one history row per epoch
    should_stop: Callable[[], bool] | None = None  # polled between steps
    on_status: Callable[[str], None] | None = None  # "embedding texts", "fitting head", ...

    def stop_requested(self) -> bool:
        return bool(self.should_stop and self.should_stop())

    def status(self, text: str) -> None:
        if self.on_status:
            self.on_status(text)


@dataclass
class TrainResult:
    model: TrainedModel
    method: str
    classes: list[str]
    config: TrainConfig
    history: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False
    wall_s: float = 0.0
    n_train: int = 0
    n_val: int = 0
    base_model: str = ""
    base_location: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Filled by whoever evaluates the run (page, CLI, bench); not saved with the model except as chosen metrics.
    evaluation: dict[str, Any] = field(default_factory=dict)

    def meta(self, description: str = "", metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """What :func:`llm_backend.training.trained_models.save_model` stores next to the weights."""
        return {
            "description": description or f"{self.method} on {self.n_train} rows, {len(self.classes)} classes",
            "method": self.method,
            "base_model": self.base_model,
            "base_location": self.base_location,
            "settings": self.config.as_dict(),
            "metrics": metrics or {},
            "history": self.history,
            "notes": self.notes,
            "n_train": self.n_train,
            "stopped": self.stopped,
            **{k: v for k, v in self.extra.items() if isinstance(v, (str, int, float, bool, list, dict))},
        }


def val_metrics(model: TrainedModel, texts: Sequence[str], y: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    if not len(texts):
        return {}
    pred = model.predict_log_proba(list(texts)).argmax(axis=1)
    m = evaluate([classes[i] for i in y], [classes[i] for i in pred], list(classes))
    return {"val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"]}


def emit(history: list[dict[str, Any]], row: dict[str, Any], cb: TrainCallbacks) -> None:
    history.append(row)
    if cb.on_epoch:
        cb.on_epoch(row)



def optimise_step(loss: Any, optimiser: Any, scheduler: Any) -> float:
    """One AdamW step with the learning-rate schedule; returns the loss as a float for the history."""
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    scheduler.step()
    return float(loss.detach())


def linear_schedule(optimiser: Any, total_steps: int, warmup_ratio: float) -> Any:
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimiser, int(total_steps * warmup_ratio), max(total_steps, 1))



def load_sequence_base(location: str, n_classes: int, device: DeviceInfo, num_layers: int | None = None) -> tuple[Any, Any]:
    """A fresh classifier on top of the embedder's transformer (optionally keeping only the first layers)."""
    import logging

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    kwargs: dict[str, Any] = {"num_labels": n_classes}
    if num_layers is not None:
        kwargs["num_hidden_layers"] = num_layers
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)  # "newly initialised classifier weights" is exactly what we want here
    try:
        tok = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(location, trust_remote_code=False,
                                                                   use_safetensors=True, **kwargs)
    finally:
        hf_logging.set_verbosity(level)
    model.to(device.torch_device)
    return model, tok


def fit_sequence_model(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    y: np.ndarray,
    classes: Sequence[str],
    cfg: TrainConfig,
    cb: TrainCallbacks,
    device: DeviceInfo,
    *,
    soft: np.ndarray | None = None,
    val_texts: Sequence[str] = (),
    val_y: np.ndarray | None = None,
    result: TrainResult,
    start: float,
) -> SequenceModel:
    """The AdamW loop shared by fine-tuning and distillation; keeps the best-on-validation weights.

    ``y`` holds class indices, -1 for rows without gold. Loss: cross-entropy on gold rows; with ``soft`` (teacher
    probabilities) it is KL(teacher ‖ student) over all rows plus ``distill_lambda`` × cross-entropy on gold rows.
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    n = len(texts)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = linear_schedule(optimiser, total_steps, cfg.warmup_ratio)
    wrapped = SequenceModel(model, tokenizer, classes, device, cfg.max_length)
    best_score, best_state, since_best, step = -1.0, None, 0, 0
    y_t = torch.as_tensor(y, dtype=torch.long)
    soft_t = torch.as_tensor(soft, dtype=torch.float32) if soft is not None else None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(n)
        losses = []
        for b in range(0, n, cfg.batch_size):
            if cb.stop_requested():
                result.stopped = True
                break
            idx = order[b : b + cfg.batch_size]
            enc = tokenizer([str(texts[i]) for i in idx], padding=True, truncation=True, max_length=cfg.max_length,
                            return_tensors="pt").to(device.torch_device)
            logits = model(**enc).logits.float()
            yb = y_t[idx].to(device.torch_device)
            gold = yb >= 0
            ce = F.cross_entropy(logits[gold], yb[gold]) if bool(gold.any()) else logits.sum() * 0.0
            if soft_t is not None:
                kl = F.kl_div(F.log_softmax(logits, dim=-1), soft_t[idx].to(device.torch_device), reduction="batchmean")
                loss = kl + cfg.distill_lambda * ce
            else:
                loss = ce
            losses.append(optimise_step(loss, optimiser, scheduler))
            step += 1
            report(cb.progress, step, total_steps)
        row: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None,
                               "elapsed_s": time.perf_counter() - start}
        if val_y is not None and len(val_texts):
            row.update(val_metrics(wrapped, val_texts, val_y, classes))
            score = row["val_macro_f1"]
            if score > best_score:
                best_score, since_best = score, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
        emit(result.history, row, cb)
        if result.stopped:
            break
        if val_y is not None and len(val_texts) and since_best >= cfg.patience:
            result.notes.append(f"Early stopping after epoch {epoch}: no validation gain for {cfg.patience} epochs; "
                                f"kept the weights of epoch {epoch - since_best}.")
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return wrapped
