"""Few-shot training methods, from seconds to minutes, behind one :func:`train` call.

* ``head`` — logistic regression (scikit-learn) on the cached embeddings of the shared embedder. Seconds, and often
  most of the gain, because the embedder already separates topics well.
* ``setfit`` — SetFit-style: a *copy* of the embedder is tuned with sentence-transformers' CosineSimilarityLoss on a
  bounded number of same/different-class pairs (:func:`llm_backend.sampler.sample_pairs`), then a logistic head
  is fitted on the tuned embeddings. Our own loop rather than the ``setfit`` package: it needs no checkpoint
  folder, gives per-step progress and a stop check, and does not depend on setfit's transformers pins.
* ``finetune`` / ``finetune-head`` / ``lora`` — the embedder's transformer with a new classification head, trained
  with AdamW end to end, head only (frozen body), or with LoRA adapters (peft), with early stopping on a
  validation split.
* ``distill`` lives in :mod:`llm_backend.trainer_distillation` and reuses the loop here.

Every method reports progress, records a per-epoch history (loss, validation metric) and polls a stop callback
between steps, so the page can draw curves and end a run cleanly; a stopped run still returns the best model so far.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .device import DeviceInfo, pick_device
from .embedding_cache import encode_uncached
from .errors import TrainingError
from .labels import Label, make_labels
from .loading import LoadedModel
from .metrics import evaluate, normalise_label
from .progress import Progress, report
from .registry import resolve_location
from .sampler import TrainingSet, default_num_pairs, prepare_training_set, sample_pairs, split_validation
from .trained_models import EmbeddingHeadModel, SequenceModel, TrainedModel, memory_spec

METHODS: dict[str, str] = {
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
    lora_r: int = 8
    lora_alpha: int = 16
    # distillation
    student: str = "small"  # "small" (truncated transformer) or "head" (logistic head on embeddings)
    student_layers: int = 3
    distill_lambda: float = 0.5  # weight of cross-entropy on gold rows next to KL on the teacher's soft labels
    teacher_temperature: float | None = None

    def resolved(self) -> "TrainConfig":
        if self.method not in METHODS:
            raise TrainingError(f"Unknown training method '{self.method}'. Choose one of: {', '.join(METHODS)}.")
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
        """What :func:`llm_backend.trained_models.save_model` stores next to the weights."""
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


def _val_metrics(model: TrainedModel, texts: Sequence[str], y: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    if not len(texts):
        return {}
    pred = model.predict_log_proba(list(texts)).argmax(axis=1)
    m = evaluate([classes[i] for i in y], [classes[i] for i in pred], list(classes))
    return {"val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"]}


def class_anchors(encode: Callable[[list[str]], np.ndarray], classes: Sequence[str],
                  label_set: Sequence[Label] | None = None) -> np.ndarray:
    """One vector per class: its label written as the zero-shot scorer writes it (plus the user's description).

    With 8 rows per class the head has seen little of each class; the label's own meaning is free extra evidence.
    Added as one weighted training row per class it lifted macro-F1 on held-out AG News (k=8: 77.2 → 79.9, k=16:
    80.9 → 81.8) and Banking77 (k=8: 83.1 → 83.6, k=16: 85.2 → 85.9), mean of 3 seeds, weight 2 (docs/fine-tune.md).
    """
    from .scorers.embedding import DEFAULT_TEMPLATE, label_vectors

    by_name = {normalise_label(l.name): l for l in label_set or []}
    labels = [by_name.get(normalise_label(c)) or make_labels([c])[0] for c in classes]
    return label_vectors(labels, [DEFAULT_TEMPLATE], encode)


def fit_logistic_head(emb: np.ndarray, y: np.ndarray, n_classes: int, c: float, seed: int,
                      anchors: np.ndarray | None = None, anchor_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(weight (k, d), bias (k,)) of a multinomial logistic regression, stored as arrays rather than pickled.

    ``anchors`` (one row per class, see :func:`class_anchors`) join the training rows with ``anchor_weight``.
    """
    from sklearn.linear_model import LogisticRegression

    weights = np.ones(len(y), dtype=np.float64)
    if anchors is not None and anchor_weight > 0:
        emb = np.vstack([emb, anchors.astype(emb.dtype, copy=False)])
        y = np.concatenate([y, np.arange(n_classes)])
        weights = np.concatenate([weights, np.full(n_classes, anchor_weight)])
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit(emb, y, sample_weight=weights)
    coef = np.ascontiguousarray(clf.coef_, dtype=np.float32)
    intercept = np.ascontiguousarray(clf.intercept_, dtype=np.float32)
    if n_classes == 2 and coef.shape[0] == 1:  # binary: softmax over [0, z] equals sigmoid(z)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept]).astype(np.float32)
    return coef, intercept


def _emit(history: list[dict[str, Any]], row: dict[str, Any], cb: TrainCallbacks) -> None:
    history.append(row)
    if cb.on_epoch:
        cb.on_epoch(row)


# --------------------------------------------------------------------------- head on frozen embeddings


def train_head(data: TrainingSet, cfg: TrainConfig, embedder: LoadedModel, cb: TrainCallbacks,
               label_set: Sequence[Label] | None = None) -> TrainResult:
    from .embedding_cache import embed_texts

    start = time.perf_counter()
    y = data.y
    tr, va = split_validation(y, cfg.val_fraction, cfg.seed)
    cb.status("Embedding the training rows")
    emb = embed_texts(embedder, data.texts, progress=cb.progress)
    cb.status("Fitting the logistic head")
    anchors = (class_anchors(lambda s: embed_texts(embedder, s), data.classes, label_set)
               if cfg.label_anchor_weight > 0 else None)
    weight, bias = fit_logistic_head(emb[tr], y[tr], len(data.classes), cfg.head_c, cfg.seed, anchors,
                                     cfg.label_anchor_weight)
    model = EmbeddingHeadModel(embedder, weight, bias, data.classes, body_is_base=True)
    row = {"epoch": 1, "loss": None, "elapsed_s": time.perf_counter() - start,
           **_val_metrics(model, [data.texts[i] for i in va], y[va], data.classes)}
    result = TrainResult(model, "head", data.classes, cfg, n_train=len(tr), n_val=len(va))
    _emit(result.history, row, cb)
    return result


# --------------------------------------------------------------------------- SetFit-style contrastive tuning


def _batch_to(features: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}


def _preprocess(body: Any, texts: list[str]) -> dict[str, Any]:
    """Tokenised features; sentence-transformers 6 renamed ``tokenize`` to ``preprocess``."""
    fn = getattr(body, "preprocess", None) or body.tokenize
    return fn(texts)


def train_setfit(data: TrainingSet, cfg: TrainConfig, embedder: LoadedModel, cb: TrainCallbacks,
                 device: DeviceInfo, label_set: Sequence[Label] | None = None) -> TrainResult:
    import torch
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    y = data.y
    tr, va = split_validation(y, cfg.val_fraction, cfg.seed)
    texts_tr = [data.texts[i] for i in tr]
    y_tr = y[tr]
    # A copy: the shared embedder serves every page and session and must never change under them.
    with embedder.lock:
        body = copy.deepcopy(embedder.model)
    body.to(device.torch_device, dtype=torch.float32)
    body.train()
    loss_fn = CosineSimilarityLoss(body)
    optimiser = torch.optim.AdamW(body.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    num_pairs = cfg.num_pairs or default_num_pairs(len(tr))
    steps_per_epoch = math.ceil(num_pairs / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = _linear_schedule(optimiser, total_steps, cfg.warmup_ratio)
    loaded_body = LoadedModel(memory_spec("setfit body"), body, body.tokenizer, device)

    def _tuned_anchors(loaded: LoadedModel) -> np.ndarray | None:
        # Uncached: the body's weights change under one name while it trains.
        if cfg.label_anchor_weight <= 0:
            return None
        return class_anchors(lambda sents: encode_uncached(loaded, sents), data.classes, label_set)

    result = TrainResult(None, "setfit", data.classes, cfg, n_train=len(tr), n_val=len(va))  # type: ignore[arg-type]
    result.notes.append(f"{num_pairs} contrastive pairs per epoch ({steps_per_epoch} steps of {cfg.batch_size}).")
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        cb.status(f"Contrastive epoch {epoch}/{cfg.epochs}")
        pairs = sample_pairs(y_tr, num_pairs, seed=cfg.seed * 1000 + epoch)
        losses = []
        body.train()
        for b in range(0, len(pairs), cfg.batch_size):
            if cb.stop_requested():
                result.stopped = True
                break
            chunk = pairs[b : b + cfg.batch_size]
            fa = _batch_to(_preprocess(body, [texts_tr[i] for i, _, _ in chunk]), device.torch_device)
            fb = _batch_to(_preprocess(body, [texts_tr[j] for _, j, _ in chunk]), device.torch_device)
            target = torch.tensor([s for _, _, s in chunk], dtype=torch.float32, device=device.torch_device)
            losses.append(optimise_step(loss_fn([fa, fb], target), optimiser, scheduler))
            step += 1
            report(cb.progress, step, total_steps)
        body.eval()
        row: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None,
                               "elapsed_s": time.perf_counter() - start}
        if len(va):
            # Uncached: the body changes every epoch, and a cache keyed by its name would serve stale vectors.
            emb = encode_uncached(loaded_body, texts_tr)
            w, bias = fit_logistic_head(emb, y_tr, len(data.classes), cfg.head_c, cfg.seed,
                                        _tuned_anchors(loaded_body), cfg.label_anchor_weight)
            val_emb = encode_uncached(loaded_body, [data.texts[i] for i in va])
            pred = (val_emb @ w.T + bias).argmax(axis=1)
            m = evaluate([data.classes[i] for i in y[va]], [data.classes[i] for i in pred], data.classes)
            row.update(val_accuracy=m["accuracy"], val_macro_f1=m["macro_f1"])
        _emit(result.history, row, cb)
        if result.stopped:
            break
    cb.status("Fitting the logistic head on the tuned embeddings")
    loaded_body = LoadedModel(memory_spec("setfit body"), body, body.tokenizer, device)  # fresh key: final weights
    emb = encode_uncached(loaded_body, texts_tr)
    weight, bias = fit_logistic_head(emb, y_tr, len(data.classes), cfg.head_c, cfg.seed,
                                     _tuned_anchors(loaded_body), cfg.label_anchor_weight)
    result.model = EmbeddingHeadModel(loaded_body, weight, bias, data.classes, body_is_base=False)
    return result


def optimise_step(loss: Any, optimiser: Any, scheduler: Any) -> float:
    """One AdamW step with the learning-rate schedule; returns the loss as a float for the history."""
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    scheduler.step()
    return float(loss.detach())


def _linear_schedule(optimiser: Any, total_steps: int, warmup_ratio: float) -> Any:
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimiser, int(total_steps * warmup_ratio), max(total_steps, 1))


# --------------------------------------------------------------------------- transformer fine-tuning


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
    scheduler = _linear_schedule(optimiser, total_steps, cfg.warmup_ratio)
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
            row.update(_val_metrics(wrapped, val_texts, val_y, classes))
            score = row["val_macro_f1"]
            if score > best_score:
                best_score, since_best = score, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
        _emit(result.history, row, cb)
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


def train_transformer(data: TrainingSet, cfg: TrainConfig, embedder: LoadedModel, cb: TrainCallbacks,
                      device: DeviceInfo) -> TrainResult:
    start = time.perf_counter()
    y = data.y
    tr, va = split_validation(y, cfg.val_fraction, cfg.seed)
    cb.status("Loading the base transformer")
    location = resolve_location(embedder.spec)
    model, tok = load_sequence_base(location, len(data.classes), device)
    result = TrainResult(None, cfg.method, data.classes, cfg, n_train=len(tr), n_val=len(va))  # type: ignore[arg-type]
    if cfg.method == "finetune-head":
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith(("classifier", "bert.pooler", "pooler"))
    elif cfg.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.1,
                          target_modules=["query", "value"], modules_to_save=["classifier", "pooler"])
        model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    result.notes.append(f"Training {trainable:,} of {total:,} weights ({100 * trainable / total:.1f}%).")
    if not len(va) and cfg.epochs > 1:
        result.notes.append("No validation split: all epochs run and the last weights are kept.")
    cb.status("Training")
    wrapped = fit_sequence_model(
        model, tok, [data.texts[i] for i in tr], y[tr], data.classes, cfg, cb, device,
        val_texts=[data.texts[i] for i in va], val_y=y[va] if len(va) else None, result=result, start=start)
    if cfg.method == "lora":
        wrapped.model = model.merge_and_unload()  # a plain transformers model: loads without peft
    result.model = wrapped
    return result


# --------------------------------------------------------------------------- entry point


def train(
    texts: Sequence[str],
    labels: Sequence[object],
    config: TrainConfig,
    embedder: LoadedModel,
    callbacks: TrainCallbacks | None = None,
    *,
    teacher: Any = None,
    unlabelled: Sequence[str] = (),
    device: DeviceInfo | None = None,
    label_set: Sequence[Label] | None = None,
) -> TrainResult:
    """Train ``config.method`` on (texts, labels); checks and cleans the data first (see sampler.prepare_training_set).

    ``embedder`` is the shared sentence embedder: used as is by ``head``, copied by ``setfit``, and its folder is the
    base transformer of the fine-tunes and the distillation student. ``teacher`` (a Scorer) and ``unlabelled`` are
    for ``distill`` only. ``label_set`` (the user's labels with descriptions) shapes the class anchors of ``head``
    and ``setfit``; without it the class names are used.
    """
    cfg = config.resolved()
    cb = callbacks or TrainCallbacks()
    from dataclasses import replace as _replace

    from llm_backend.workshop import RunTimer

    timer = RunTimer("This training run")  # the workshop's time limit: training stops gracefully, keeping weights
    cb = _replace(cb, should_stop=timer.should_stop(cb.should_stop))
    device = device or pick_device()
    data = prepare_training_set(texts, labels, min_per_class=2)
    if not any(str(t).strip() for t in data.texts):
        raise TrainingError("Every training text is empty, so there is nothing to learn from (an Excel column of "
                            "formulas without saved values reads like this). Check the text column.")
    start = time.perf_counter()
    if cfg.method == "head":
        result = train_head(data, cfg, embedder, cb, label_set)
    elif cfg.method == "setfit":
        result = train_setfit(data, cfg, embedder, cb, device, label_set)
    elif cfg.method == "distill":
        from .trainer_distillation import distill

        if teacher is None:
            raise TrainingError("Distillation needs a teacher: a zero-shot scorer or a trained model.")
        result = distill(data, list(unlabelled), teacher, cfg, embedder, cb, device)
    else:
        result = train_transformer(data, cfg, embedder, cb, device)
    result.notes = data.notes + result.notes
    result.wall_s = time.perf_counter() - start
    result.base_model = embedder.spec.name
    try:
        result.base_location = resolve_location(embedder.spec)
    except Exception:  # a hub embedder has no folder; the name is enough for the registry
        result.base_location = ""
    if result.stopped:
        result.notes.append("The run was stopped early; the model holds the weights reached so far.")
        if timer.expired():
            result.notes.append(timer.message())
    return result
