"""Few-shot training methods, from seconds to minutes, behind one :func:`train` call.

* ``head`` — logistic regression (scikit-learn) on the cached embeddings of the shared embedder. Seconds, and often
  most of the gain, because the embedder already separates topics well.
* ``setfit`` — SetFit-style: a *copy* of the embedder is tuned with sentence-transformers' CosineSimilarityLoss on a
  bounded number of same/different-class pairs (:func:`llm_backend.data.sampler.sample_pairs`), then the prediction
  averages a logistic head on the tuned embeddings and one on the untouched embedder's (``TrainConfig.base_view``,
  :func:`average_heads`). Our own loop rather than the ``setfit`` package: it needs no checkpoint folder, gives
  per-step progress and a stop check, and does not depend on setfit's transformers pins.
* ``finetune`` / ``finetune-head`` / ``lora`` — the embedder's transformer with a new classification head, trained
  with AdamW end to end, head only (frozen body), or with LoRA adapters (peft), with early stopping on a
  validation split.
* ``distill`` lives in :mod:`llm_backend.training.distillation`; it and the fine-tunes share the loop in
  :mod:`llm_backend.training.loop`.

Every method reports progress, records a per-epoch history (loss, validation metric) and polls a stop callback
between steps, so the page can draw curves and end a run cleanly; a stopped run still returns the best model so far.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from llm_backend.core.device import DeviceInfo, pick_device
from llm_backend.core.errors import TrainingError
from llm_backend.core.progress import report
from llm_backend.data.labels import Label, make_labels
from llm_backend.data.sampler import (
    TrainingSet,
    default_num_pairs,
    prepare_training_set,
    sample_pairs,
    split_validation,
)
from llm_backend.evaluation.metrics import evaluate, normalise_label
from llm_backend.models.embedding_cache import embed_texts, encode_uncached
from llm_backend.models.loaded import LoadedModel
from llm_backend.models.registry import resolve_location
from llm_backend.training.loop import (
    TrainCallbacks,
    TrainConfig,
    TrainResult,
    emit,
    fit_sequence_model,
    linear_schedule,
    load_sequence_base,
    optimise_step,
    val_metrics,
)
from llm_backend.training.trained_models import EmbeddingHeadModel, both_views, memory_spec


def class_anchors(encode: Callable[[list[str]], np.ndarray], classes: Sequence[str],
                  label_set: Sequence[Label] | None = None) -> np.ndarray:
    """One vector per class: its label written as the zero-shot scorer writes it (plus the user's description).

    With 8 rows per class the head has seen little of each class; the label's own meaning is free extra evidence.
    Added as one weighted training row per class it lifted macro-F1 on held-out AG News (k=8: 77.2 → 79.9, k=16:
    80.9 → 81.8) and Banking77 (k=8: 83.1 → 83.6, k=16: 85.2 → 85.9), mean of 3 seeds, weight 2 (docs/fine-tune.md).
    """
    from llm_backend.scorers.embedding import DEFAULT_TEMPLATE, label_vectors

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


def refit_with_pseudo_labels(emb: np.ndarray, y: np.ndarray, unl_emb: np.ndarray, weight: np.ndarray,
                             bias: np.ndarray, cfg: TrainConfig, n_classes: int,
                             anchors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Self-training of a few-shot head: label ``unl_emb`` with (weight, bias), keep each predicted class's most
    confident ``pseudo_fraction``, refit on gold + pseudo rows. Returns the new head and the pseudo rows used.

    The teacher is the few-shot head (label anchors included), not the zero-shot scorer: with 8 rows per class it is
    already far better (Banking77: 0.84 vs 0.62 macro-F1), and its confident answers add the unlabelled rows' view of
    each class. Measured in bench/fine_tune.py (method ``head+pseudo``) and docs/fine-tune.md.
    """
    from llm_backend.scorers.self_training import select_confident

    if len(unl_emb) < n_classes:
        return weight, bias, 0
    scores = unl_emb @ weight.T + bias
    idx, y_pseudo = select_confident(scores - scores.mean(axis=0, keepdims=True), cfg.pseudo_fraction)
    w2, b2 = fit_logistic_head(np.vstack([emb, unl_emb[idx]]), np.concatenate([y, y_pseudo]), n_classes,
                               cfg.head_c, cfg.seed, anchors, cfg.label_anchor_weight)
    return w2, b2, int(len(idx))


def fit_head(emb: np.ndarray, y: np.ndarray, cfg: TrainConfig, n_classes: int, anchors: np.ndarray | None,
             unl_emb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The few-shot head on one view: gold rows plus label anchors, then (given unlabelled rows) the pseudo-label
    refit. Returns (weight, bias, pseudo rows used)."""
    weight, bias = fit_logistic_head(emb, y, n_classes, cfg.head_c, cfg.seed, anchors, cfg.label_anchor_weight)
    if unl_emb is None or not len(unl_emb):
        return weight, bias, 0
    return refit_with_pseudo_labels(emb, y, unl_emb, weight, bias, cfg, n_classes, anchors)


def average_heads(tuned: tuple[np.ndarray, np.ndarray],
                  base: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One linear head over :func:`both_views` whose softmax is the renormalised geometric mean of the two heads'.

    Why average two heads rather than fit one on both views: a head fitted jointly leans on the tuned view, which
    separates the training rows perfectly because it was tuned on them, and so inherits what tuning forgot (on the
    dev slices the joint head was no better than the tuned view where the untouched head was far better, ECDT).
    Averaging keeps each view's own vote. With features ``[t, b] / sqrt(2)`` the weights ``[Wt, Wb] / sqrt(2)`` give
    logits ``(t Wt' + b Wb') / 2``: the mean of the two heads' logits, which softmax turns into the geometric mean.
    """
    scale = np.float32(np.sqrt(2.0))
    weight = np.hstack([tuned[0], base[0]]).astype(np.float32) / scale
    return weight, ((tuned[1] + base[1]) / 2).astype(np.float32)


# --------------------------------------------------------------------------- head on frozen embeddings


def train_head(data: TrainingSet, cfg: TrainConfig, embedder: LoadedModel, cb: TrainCallbacks,
               label_set: Sequence[Label] | None = None, unlabelled: Sequence[str] = ()) -> TrainResult:
    start = time.perf_counter()
    y = data.y
    tr, va = split_validation(y, cfg.val_fraction, cfg.seed)
    cb.status("Embedding the training rows")
    emb = embed_texts(embedder, data.texts, progress=cb.progress)
    cb.status("Fitting the logistic head")
    anchors = (class_anchors(lambda s: embed_texts(embedder, s), data.classes, label_set)
               if cfg.label_anchor_weight > 0 else None)
    use_pseudo = cfg.pseudo_labels and len(unlabelled) > 0
    if use_pseudo:
        cb.status("Pseudo-labelling the unlabelled rows")
    weight, bias, n_pseudo = fit_head(emb[tr], y[tr], cfg, len(data.classes), anchors,
                                      embed_texts(embedder, list(unlabelled)) if use_pseudo else None)
    model = EmbeddingHeadModel(embedder, weight, bias, data.classes, body_is_base=True)
    row = {"epoch": 1, "loss": None, "elapsed_s": time.perf_counter() - start,
           **val_metrics(model, [data.texts[i] for i in va], y[va], data.classes)}
    result = TrainResult(model, "head", data.classes, cfg, n_train=len(tr), n_val=len(va))
    if n_pseudo:
        result.notes.append(f"Refitted on {len(tr)} gold rows plus {n_pseudo} confidently pseudo-labelled rows.")
        result.extra["n_pseudo"] = n_pseudo
    emit(result.history, row, cb)
    return result


# --------------------------------------------------------------------------- SetFit-style contrastive tuning


def _batch_to(features: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}


def _preprocess(body: Any, texts: list[str]) -> dict[str, Any]:
    """Tokenised features; sentence-transformers 6 renamed ``tokenize`` to ``preprocess``.

    The model's default prompt (e5's ``"query: "``) is prepended as ``encode`` does, so training sees the inputs
    inference will see (``preprocess`` itself adds no prompt).
    """
    fn = getattr(body, "preprocess", None) or body.tokenize
    name = getattr(body, "default_prompt_name", None)
    prompt = (getattr(body, "prompts", None) or {}).get(name, "") if name else ""
    return fn([prompt + t for t in texts] if prompt else texts)


def train_setfit(data: TrainingSet, cfg: TrainConfig, embedder: LoadedModel, cb: TrainCallbacks,
                 device: DeviceInfo, label_set: Sequence[Label] | None = None,
                 unlabelled: Sequence[str] = ()) -> TrainResult:
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
    scheduler = linear_schedule(optimiser, total_steps, cfg.warmup_ratio)
    loaded_body = LoadedModel(memory_spec("setfit body"), body, body.tokenizer, device)

    k = len(data.classes)

    def _anchors(encode: Callable[[list[str]], np.ndarray]) -> np.ndarray | None:
        return class_anchors(encode, data.classes, label_set) if cfg.label_anchor_weight > 0 else None

    def _features(loaded: LoadedModel, texts: list[str]) -> np.ndarray:
        # Uncached: the body's weights change under one name while it trains; the base view is cached (it never does).
        tuned = encode_uncached(loaded, texts)
        return both_views(tuned, embed_texts(embedder, texts)) if cfg.base_view else tuned

    base_heads: dict[bool, tuple[np.ndarray, np.ndarray]] = {}

    def _head(loaded: LoadedModel, unl: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
        """The tuned view's head, averaged with the untouched view's (``base_view``); pseudo-labels when ``unl``."""
        tuned_enc = lambda sents: encode_uncached(loaded, list(sents))  # noqa: E731
        w, b, n = fit_head(tuned_enc(texts_tr), y_tr, cfg, k, _anchors(tuned_enc), tuned_enc(unl) if unl else None)
        if not cfg.base_view:
            return w, b, n
        if bool(unl) not in base_heads:  # the untouched view never changes: one fit per run (two with pseudo-labels)
            base_enc = lambda sents: embed_texts(embedder, list(sents))  # noqa: E731
            base_heads[bool(unl)] = fit_head(base_enc(texts_tr), y_tr, cfg, k, _anchors(base_enc),
                                             base_enc(unl) if unl else None)[:2]
        return (*average_heads((w, b), base_heads[bool(unl)]), n)

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
            w, bias, _ = _head(loaded_body, [])
            val_emb = _features(loaded_body, [data.texts[i] for i in va])
            pred = (val_emb @ w.T + bias).argmax(axis=1)
            m = evaluate([data.classes[i] for i in y[va]], [data.classes[i] for i in pred], data.classes)
            row.update(val_accuracy=m["accuracy"], val_macro_f1=m["macro_f1"])
        emit(result.history, row, cb)
        if result.stopped:
            break
    use_pseudo = cfg.pseudo_labels and len(unlabelled) > 0
    cb.status("Fitting the logistic head" + (" and pseudo-labelling the unlabelled rows" if use_pseudo else ""))
    loaded_body = LoadedModel(memory_spec("setfit body"), body, body.tokenizer, device)  # fresh key: final weights
    weight, bias, n_pseudo = _head(loaded_body, list(unlabelled) if use_pseudo else [])
    if n_pseudo:
        result.notes.append(f"Head refitted on {len(y_tr)} gold rows plus {n_pseudo} pseudo-labelled rows.")
        result.extra["n_pseudo"] = n_pseudo
    if cfg.base_view:
        result.notes.append("The prediction averages two heads: one on the tuned embedder, one on the untouched "
                            "embedder (the tuned one forgets some of what the general one knew).")
    result.model = EmbeddingHeadModel(loaded_body, weight, bias, data.classes, body_is_base=False,
                                      base=embedder if cfg.base_view else None)
    return result


# --------------------------------------------------------------------------- transformer fine-tuning


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
    base transformer of the fine-tunes and the distillation student. ``teacher`` (a Scorer) is for ``distill``;
    ``unlabelled`` feeds ``distill`` and, with ``config.pseudo_labels``, the self-training of ``head``/``setfit``.
    ``label_set`` (the user's labels with descriptions) shapes the class anchors of ``head`` and ``setfit``; without
    it the class names are used.
    """
    cfg = config.resolved()
    cb = callbacks or TrainCallbacks()
    from dataclasses import replace as _replace

    from llm_backend.core.workshop import RunTimer

    timer = RunTimer("This training run")  # the workshop's time limit: training stops gracefully, keeping weights
    cb = _replace(cb, should_stop=timer.should_stop(cb.should_stop))
    device = device or pick_device()
    data = prepare_training_set(texts, labels, min_per_class=2)
    if not any(str(t).strip() for t in data.texts):
        raise TrainingError("Every training text is empty, so there is nothing to learn from (an Excel column of "
                            "formulas without saved values reads like this). Check the text column.")
    start = time.perf_counter()
    if cfg.method == "head":
        result = train_head(data, cfg, embedder, cb, label_set, unlabelled)
    elif cfg.method == "setfit":
        result = train_setfit(data, cfg, embedder, cb, device, label_set, unlabelled)
    elif cfg.method == "distill":
        from llm_backend.training.distillation import distill

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
