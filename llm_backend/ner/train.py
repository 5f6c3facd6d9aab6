"""Fine-tune a token classifier on BIO-tagged sentences: full fine-tune or LoRA, progress, stop, history.

Uses the same callback contract as the classification trainer (:class:`llm_backend.training.trainer.TrainCallbacks`) and
returns a :class:`llm_backend.training.trainer.TrainResult`, so :mod:`llm_backend.training.runs` runs it in the background
unchanged and the page draws it like any other run.

Defaults (chosen on CoNLL-2003 *dev* only, with the measured figures in docs/ner.md):

* encoder: the registry's default embedder, all-MiniLM-L6-v2 — 22M parameters, 6 layers, the only bundled encoder
  fast enough to fine-tune on a full CoNLL training set on 2 CPU cores; its vocabulary is uncased, so
* ``use_case=True``: the case-shape embedding gives the capitalisation cue back;
* learning rate 1e-4 for the encoder and 1e-3 for the new layers (classifier, shape embedding): a randomly
  initialised head next to a pretrained body learns faster at a higher rate;
* epochs: enough for about ``min_steps`` (600) optimiser steps, between 3 and 30 epochs — 100 sentences get 30
  passes, 1,000 get 10, the full CoNLL set (878 steps per epoch) the usual three;
* batches of similar-length sentences (shuffled buckets): much less padding, same gradients in expectation.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from llm_backend.core.device import DeviceInfo, pick_device
from llm_backend.core.errors import TrainingError
from llm_backend.core.progress import report
from llm_backend.training.loop import TrainCallbacks, TrainResult

from .conll import TaggedSentence, check_tags
from .features import build_chunks, collate
from .model import NerModel, build_net

from . import METHODS


@dataclass
class NerTrainConfig:
    """Settings of one NER run; ``None`` epochs means "about ``min_steps`` steps" (see module docstring)."""

    method: str = "full"
    epochs: int | None = None
    min_steps: int = 600
    batch_size: int = 16
    learning_rate: float | None = None
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 128
    use_case: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    seed: int = 0

    def resolved(self, n_chunks: int) -> "NerTrainConfig":
        if self.method not in METHODS:
            raise TrainingError(f"Unknown method '{self.method}'. Choose one of: {', '.join(METHODS)}.")
        cfg = copy.copy(self)
        if cfg.batch_size < 1 or (cfg.epochs is not None and cfg.epochs < 1):
            raise TrainingError("Epochs and batch size must be at least 1.")
        if not 16 <= cfg.max_length <= 512:
            raise TrainingError("The maximum length must be between 16 and 512 sub-word pieces.")
        if cfg.epochs is None:
            steps_per_epoch = max(1, math.ceil(n_chunks / cfg.batch_size))
            cfg.epochs = int(min(30, max(3, math.ceil(cfg.min_steps / steps_per_epoch))))
        if cfg.learning_rate is None:
            cfg.learning_rate = 1e-4 if cfg.method == "full" else 5e-4
        if cfg.learning_rate <= 0 or cfg.head_learning_rate <= 0:
            raise TrainingError("Learning rates must be positive.")
        return cfg

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tag_vocabulary(sentences: Sequence[TaggedSentence]) -> list[str]:
    """"O" first, then B-/I- of every type seen (both, even if a type never has an I- in training)."""
    types = sorted({t[2:] for s in sentences for t in s.tags if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def _batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of similar-length chunks: sort within random pools of 50 batches, then shuffle batches."""
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches: list[list[int]] = []
    for p in range(0, len(order), pool):
        part = sorted(order[p : p + pool], key=lambda i: lengths[i])
        batches.extend([list(part[b : b + batch_size]) for b in range(0, len(part), batch_size)])
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def _load_encoder(location: str) -> tuple[Any, Any]:
    import logging

    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)  # "some weights were not used" (the pooler) is expected, not news
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
        safe = {"trust_remote_code": False, "use_safetensors": True}  # no code from the folder, no pickles
        encoder = AutoModel.from_pretrained(location, add_pooling_layer=False, **safe) if _is_bert(location) else \
            AutoModel.from_pretrained(location, **safe)
    finally:
        hf_logging.set_verbosity(level)
    if not getattr(tokenizer, "is_fast", False):
        raise TrainingError("This encoder has no fast tokenizer; sub-word label alignment needs one.")
    return encoder, tokenizer


def _is_bert(location: str) -> bool:
    import json
    from pathlib import Path

    try:
        return json.loads((Path(location) / "config.json").read_text(encoding="utf-8")).get("model_type") == "bert"
    except (OSError, ValueError):
        return False


def train_ner(
    sentences: Sequence[TaggedSentence],
    config: NerTrainConfig,
    encoder_location: str,
    cb: TrainCallbacks | None = None,
    *,
    base_model: str = "",
    device: DeviceInfo | None = None,
) -> TrainResult:
    """Train a tagger on ``sentences`` (tokens + BIO tags). A stopped run returns the weights reached so far."""
    import torch
    import torch.nn.functional as F

    cb = cb or TrainCallbacks()
    start = time.perf_counter()
    device = device or pick_device()
    sentences = [s for s in sentences if s.tokens]
    if not sentences:
        raise TrainingError("There are no tagged sentences to train on.")
    untagged = [s for s in sentences if len(s.tags) != len(s.tokens)]
    if untagged:
        raise TrainingError(f"{len(untagged)} sentence(s) have no tags (first at line {untagged[0].line}); training "
                            "needs a tag for every token.")
    problems = [p for s in sentences[:50_000] for p in check_tags(s.tokens, s.tags, None, f"line {s.line}")]
    if problems:
        raise TrainingError(f"The tags are not valid BIO: {problems[0]}")
    tags = tag_vocabulary(sentences)
    if len(tags) < 3:
        raise TrainingError("The training sentences have no entities (every tag is O): nothing to learn.")
    tag_index = {t: i for i, t in enumerate(tags)}
    cb.status("Loading the encoder")
    encoder, tokenizer = _load_encoder(encoder_location)
    max_pos = int(getattr(encoder.config, "max_position_embeddings", 512) or 512)
    max_length = min(config.max_length, max_pos - 2 if max_pos > 2 else max_pos)
    chunks, n_split = build_chunks(tokenizer, [s.tokens for s in sentences], max_length,
                                   [[tag_index[t] for t in s.tags] for s in sentences])
    cfg = config.resolved(len(chunks))
    cfg.max_length = max_length
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = build_net(encoder, len(tags), cfg.use_case)
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        net.encoder = get_peft_model(net.encoder, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                             lora_dropout=0.1, target_modules=["query", "value"]))
    net.to(device.torch_device)
    head_params = list(net.classifier.parameters()) + list(net.shape_embedding.parameters())
    body_params = [p for p in net.encoder.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW([{"params": body_params, "lr": cfg.learning_rate},
                                   {"params": head_params, "lr": cfg.head_learning_rate}],
                                  weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(chunks) / cfg.batch_size)
    total_steps = steps_per_epoch * int(cfg.epochs or 1)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimiser, int(total_steps * cfg.warmup_ratio), total_steps)
    result = TrainResult(None, cfg.method, tags, cfg, n_train=len(sentences), base_model=base_model,  # type: ignore[arg-type]
                         base_location=encoder_location)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    total = sum(p.numel() for p in net.parameters())
    result.notes.append(f"Training {trainable:,} of {total:,} weights ({100 * trainable / total:.1f}%), "
                        f"{cfg.epochs} epoch(s) of {steps_per_epoch} steps.")
    if n_split:
        result.notes.append(f"{n_split} training sentence(s) were longer than {max_length} sub-word pieces and were "
                            "split into consecutive pieces at word boundaries (no tag was dropped).")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    lengths = [len(c.input_ids) for c in chunks]
    cb.status("Training")
    loop_start = time.perf_counter()
    step = 0
    for epoch in range(1, int(cfg.epochs or 1) + 1):
        net.train()
        losses = []
        for idx in _batches(lengths, cfg.batch_size, rng):
            if cb.stop_requested():
                result.stopped = True
                break
            batch = collate([chunks[i] for i in idx], pad, device.torch_device)
            logits = net(batch["input_ids"], batch["attention_mask"], batch["shape_ids"])
            loss = F.cross_entropy(logits.float().reshape(-1, len(tags)), batch["labels"].reshape(-1),
                                   ignore_index=-100)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            step += 1
            report(cb.progress, step, total_steps)
        row = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None,
               "elapsed_s": round(time.perf_counter() - start, 1)}
        result.history.append(row)
        if cb.on_epoch:
            cb.on_epoch(row)
        if result.stopped:
            result.notes.append(f"Stopped during epoch {epoch}: the model keeps the weights reached so far.")
            break
    if cfg.method == "lora":
        net.encoder = net.encoder.merge_and_unload()  # a plain transformers encoder: loads without peft
    net.eval()
    result.model = NerModel(net, tokenizer, tags, device, max_length)  # type: ignore[assignment]
    result.wall_s = time.perf_counter() - start
    result.extra["steps"] = step
    result.extra["seconds_per_step"] = round((time.perf_counter() - loop_start) / max(step, 1), 3)
    result.extra["entity_types"] = sorted({t[2:] for t in tags if t != "O"})
    return result


def train_and_evaluate_job(sentences: Sequence[TaggedSentence], config: NerTrainConfig, encoder_location: str, *,
                           base_model: str = "", test: Any = None) -> Any:
    """A job for :meth:`llm_backend.training.runs.RunManager.start`: train, then (with ``test``, a TaggedData with
    gold tags) evaluate in the same background thread, so a large test split never blocks the page.
    The metrics land in ``result.evaluation["test"]``."""
    from .tagging import evaluate_model

    def job(cb: TrainCallbacks) -> TrainResult:
        result = train_ner(sentences, config, encoder_location, cb, base_model=base_model)
        if test is not None and test.sentences:
            cb.status("Tagging the test sentences")
            result.evaluation["test"] = evaluate_model(result.model, test, progress=cb.progress)  # type: ignore[arg-type]
        return result

    return job
