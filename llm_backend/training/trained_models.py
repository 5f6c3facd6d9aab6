"""Trained classifiers: the two model shapes the fine-tune runs produce, saving them safely, and loading them back.

* :class:`EmbeddingHeadModel` — a sentence embedder (the shared base, or a contrastively tuned copy) plus a linear
  head. Used by "head on embeddings", SetFit-style training and the distilled head student.
* :class:`SequenceModel` — a transformer with a classification head (full / head-only / LoRA fine-tunes, the
  truncated distillation student).

Everything is stored as safetensors or JSON; nothing is pickled, so opening a model folder someone sent you cannot
run code. A model is written into a hidden temporary folder next to its destination and renamed into place: a run
killed while saving leaves no half-written model for the registry to list.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from llm_backend.core.config import get_settings
from llm_backend.core.device import DeviceInfo, pick_device
from llm_backend.core.errors import ModelError, TrainingError
from llm_backend.core.model_folders import (  # noqa: F401
    META_FILE,
    is_model_folder_name,
    publish_folder,
    recover_models_folder,
    recover_once,
)
from llm_backend.core.progress import Progress, report
from llm_backend.core.safe_loading import SAFE_HF_KWARGS, SAFE_ST_KWARGS
from llm_backend.core.safe_yaml import NestingError, load_json
from llm_backend.data.labels import Label
from llm_backend.models.embedding_cache import embed_texts
from llm_backend.models.loaded import GetModel, LoadedModel
from llm_backend.models.registry import ModelRegistry, ModelSpec, spec_from_folder

HEAD_FILE = "head.safetensors"
UNKNOWN_LABEL_SCORE = -1e9


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def memory_spec(name: str, role: str = "embedder") -> ModelSpec:
    """A spec for weights that live only in memory (a freshly tuned body); its unique key keeps caches apart."""
    return ModelSpec(name, role, "trained", f"memory:{uuid.uuid4().hex}", "trained in this session")  # type: ignore[arg-type]


def both_views(tuned: np.ndarray, base: np.ndarray) -> np.ndarray:
    """A tuned body's embeddings and the untouched embedder's side by side, scaled back to unit length.

    Why keep the untouched view: contrastive tuning on 8 rows per class pulls those rows' classes apart but also
    forgets some of what the general embedder knew about texts unlike them. SetFit's head is the average of a head
    on each view (``trainer.average_heads``), stored as one linear head over these features; on the dev slices
    (bench/setfit_recipe_dev.py, docs/fine-tune.md) it beat the tuned view alone.
    """
    return np.hstack([tuned, base]).astype(np.float32, copy=False) / np.float32(np.sqrt(2.0))


class EmbeddingHeadModel:
    """Sentence embeddings → linear layer → log-probabilities over ``classes``."""

    kind = "embedding_head"

    def __init__(self, body: LoadedModel, weight: np.ndarray, bias: np.ndarray, classes: Sequence[str],
                 body_is_base: bool, base: LoadedModel | None = None) -> None:
        self.body = body
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.classes = list(classes)
        #: True when the body is the unchanged shared embedder: then only the head is saved, not 90 MB of weights.
        self.body_is_base = body_is_base
        #: The shared embedder whose view joins a tuned body's (:func:`both_views`); None: the body's view alone.
        self.base = base

    def embed(self, texts: Sequence[str], progress: Progress = None) -> np.ndarray:
        emb = embed_texts(self.body, list(texts), progress=progress)
        if self.base is None:
            return emb
        return both_views(emb, embed_texts(self.base, list(texts)))

    def predict_log_proba(self, texts: Sequence[str], progress: Progress = None) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        emb = self.embed(texts, progress)
        if emb.shape[1] != self.weight.shape[1]:  # a model folder whose head and body(ies) do not belong together
            raise ModelError(f"This model's head expects {self.weight.shape[1]}-dimensional embeddings but its "
                             f"embedder gives {emb.shape[1]}: the folder mixes parts of different models.")
        return _log_softmax(emb @ self.weight.T + self.bias).astype(np.float32)

    def save(self, folder: Path) -> dict[str, Any]:
        from safetensors.numpy import save_file

        # C order: safetensors writes raw buffers, and scikit-learn may hand back Fortran-ordered coefficients.
        save_file({"weight": np.ascontiguousarray(self.weight), "bias": np.ascontiguousarray(self.bias)},
                  str(folder / HEAD_FILE))
        if not self.body_is_base:
            with self.body.lock:
                self.body.model.save(str(folder / "body"), safe_serialization=True)
        return {"format": self.kind, "body": "base" if self.body_is_base else "body",
                "base_view": self.base is not None}


class SequenceModel:
    """A transformers sequence classifier whose label order is ``classes``."""

    kind = "sequence_classifier"

    def __init__(self, model: Any, tokenizer: Any, classes: Sequence[str], device: DeviceInfo,
                 max_length: int = 128, batch_size: int = 64) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.classes = list(classes)
        self.device = device
        self.max_length = max_length
        self.batch_size = batch_size
        self.lock = threading.RLock()

    def logits(self, texts: Sequence[str], progress: Progress = None) -> np.ndarray:
        import torch

        out = []
        total = len(texts)
        with self.lock:
            was_training = self.model.training
            self.model.eval()
            try:
                for start in range(0, total, self.batch_size):
                    batch = [str(t) for t in texts[start : start + self.batch_size]]
                    enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                         return_tensors="pt").to(self.device.torch_device)
                    with torch.no_grad():
                        out.append(self.model(**enc).logits.float().cpu().numpy())
                    report(progress, min(start + self.batch_size, total), total)
            finally:
                self.model.train(was_training)
        if not out:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.vstack(out)

    def predict_log_proba(self, texts: Sequence[str], progress: Progress = None) -> np.ndarray:
        return _log_softmax(self.logits(texts, progress)).astype(np.float32)

    def save(self, folder: Path) -> dict[str, Any]:
        target = folder / "model"
        with self.lock:
            self.model.config.id2label = dict(enumerate(self.classes))
            self.model.config.label2id = {c: i for i, c in enumerate(self.classes)}
            self.model.save_pretrained(str(target), safe_serialization=True)
            self.tokenizer.save_pretrained(str(target))
        return {"format": self.kind, "max_length": self.max_length}


TrainedModel = EmbeddingHeadModel | SequenceModel


def predict(model: TrainedModel, texts: Sequence[str], progress: Progress = None) -> tuple[list[str], np.ndarray]:
    """Predicted class names and the (n, k) probabilities."""
    logp = model.predict_log_proba(texts, progress)
    probs = np.exp(logp)
    return [model.classes[i] for i in probs.argmax(axis=1)] if len(probs) else [], probs


# --------------------------------------------------------------------------- saving


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def check_model_name(name: str) -> str:
    """A folder name that is safe on every OS and cannot escape the models folder."""
    name = (name or "").strip()
    if not _NAME_RE.match(name) or ".." in name:
        raise TrainingError(f"'{name}' is not a usable model name: use letters, digits, '.', '_' or '-' "
                            "(up to 80 characters, starting with a letter or digit).")
    return name


def writable_models_dir(models_dir: Path | None = None) -> Path:
    """The models folder, created if needed; a TrainingError when it cannot be written, before any work is lost."""
    root = Path(models_dir) if models_dir is not None else get_settings().models_dir
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"The models folder {root} cannot be created ({exc.strerror or exc}). "
                            "Set ZSS_MODELS_DIR to a writable folder.") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise TrainingError(f"The models folder {root} is not writable. Set ZSS_MODELS_DIR to a writable folder.")
    return root


def save_model(model: TrainedModel, name: str, meta: dict[str, Any], models_dir: Path | None = None,
               overwrite: bool = False) -> Path:
    """Write ``model`` to ``models_dir/name`` atomically and return the folder.

    ``meta`` should carry description, method, base_model, settings and metrics; role, labels, format, created and
    a unique id are filled in here so every saved model has them.
    """
    name = check_model_name(name)
    root = writable_models_dir(models_dir)
    target = root / name
    if target.exists() and not overwrite:
        raise TrainingError(f"A model named '{name}' already exists in the models folder. Choose another name.")
    info = {
        "role": "classifier",
        "description": meta.get("description") or f"{meta.get('method', 'trained')} classifier",
        "method": meta.get("method", "unknown"),
        "labels": list(model.classes),
        "base_model": meta.get("base_model"),
        "settings": meta.get("settings", {}),
        "metrics": meta.get("metrics", {}),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "uid": uuid.uuid4().hex,
        **{k: v for k, v in meta.items() if k not in {"role", "labels", "created", "uid"}},
    }
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    except OSError as exc:
        raise TrainingError(f"Cannot write into the models folder {root} ({exc.strerror or exc}).") from None
    try:
        info.update(model.save(tmp))
        (tmp / META_FILE).write_text(json.dumps(info, indent=2, default=_json_default), encoding="utf-8")
        publish_folder(tmp, target)  # an overwrite moves the old one aside first: a failure keeps one complete copy
    except OSError as exc:
        raise TrainingError(f"Saving the model failed ({exc.strerror or exc}); nothing was left behind.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


# --------------------------------------------------------------------------- loading


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / META_FILE
    try:
        meta = load_json(path.read_text(encoding="utf-8"), what=META_FILE)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        return meta
    except FileNotFoundError:
        raise ModelError(f"'{Path(folder).name}' is not a trained model folder (no {META_FILE}).") from None
    except NestingError as exc:
        raise ModelError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"The {META_FILE} of '{Path(folder).name}' cannot be read: {exc}") from None


def _base_embedder(meta: dict[str, Any], get_model: GetModel) -> LoadedModel:
    """The shared embedder a head-only model was trained on, found by name in the registry, else by location."""
    registry = ModelRegistry()
    name, location = meta.get("base_model"), meta.get("base_location")
    try:
        spec = registry.get(name)
    except ModelError:
        if not location or not Path(location).is_dir():
            raise ModelError(f"This model needs the embedder '{name}', which is not available here.") from None
        spec = spec_from_folder(location, role="embedder", name=name)
    return get_model(spec)


def load_trained(spec: ModelSpec, get_model: GetModel, device: DeviceInfo | None = None) -> LoadedModel:
    """What :func:`llm_backend.models.loading.load_model` calls for source "trained": a LoadedModel holding the classifier."""
    device = device or pick_device()
    folder = Path(spec.location)
    meta = read_meta(folder)
    fmt = meta.get("format")
    if fmt == "token_classifier":  # a named-entity tagger (llm_backend.ner): tags tokens, not texts
        from llm_backend.ner.model import load_ner

        tagger = load_ner(folder, device)
        return LoadedModel(spec, tagger, tagger.tokenizer, device, extra={"meta": meta})
    classes = [str(c) for c in meta.get("labels") or []]
    if len(classes) < 2:
        raise ModelError(f"'{spec.name}' lists fewer than two labels in its {META_FILE}.")
    if fmt == EmbeddingHeadModel.kind:
        from safetensors.numpy import load_file

        head = load_file(str(folder / HEAD_FILE))
        if meta.get("body") == "base":
            body = _base_embedder(meta, get_model)
            is_base = True
        else:
            from sentence_transformers import SentenceTransformer

            st_model = SentenceTransformer(str(folder / "body"), device=device.kind, **SAFE_ST_KWARGS)
            body_spec = ModelSpec(f"{spec.name} body", "embedder", "trained", f"{folder / 'body'}#{meta.get('uid')}")
            body = LoadedModel(body_spec, st_model, st_model.tokenizer, device)
            is_base = False
        base = _base_embedder(meta, get_model) if meta.get("base_view") and not is_base else None
        model: TrainedModel = EmbeddingHeadModel(body, head["weight"], head["bias"], classes, is_base, base)
    elif fmt == SequenceModel.kind:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(folder / "model"), trust_remote_code=False)
        net = AutoModelForSequenceClassification.from_pretrained(str(folder / "model"), **SAFE_HF_KWARGS)
        net.to(device.torch_device).eval()
        model = SequenceModel(net, tok, classes, device, int(meta.get("max_length", 128)))
    else:
        raise ModelError(f"'{spec.name}' has an unknown model format '{fmt}'. Was it saved by a newer version?")
    return LoadedModel(spec, model, getattr(model, "tokenizer", None), device, extra={"meta": meta})


class TrainedScorer:
    """A trained classifier seen through the Scorer contract, so it sits beside zero-shot methods.

    Columns follow the *given* labels by name; a label the model was not trained on scores
    :data:`UNKNOWN_LABEL_SCORE` (it can never win), which keeps a trained model usable with an edited label set.
    """

    kind = "logit"

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.model: TrainedModel = loaded.model
        self.name = f"trained:{loaded.spec.name}"
        self.label_names = list(self.model.classes)

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        with self.loaded.lock:
            logp = self.model.predict_log_proba(list(texts), progress)
        index = {c: i for i, c in enumerate(self.label_names)}
        folded = {c.strip().casefold(): i for c, i in index.items()}
        out = np.full((len(texts), len(labels)), UNKNOWN_LABEL_SCORE, dtype=np.float32)
        for j, lab in enumerate(labels):
            i = index.get(lab.name, folded.get(lab.name.strip().casefold()))
            if i is not None:
                out[:, j] = logp[:, i]
        return out


def scorer_for(model: TrainedModel, name: str = "trained") -> TrainedScorer:
    """A Scorer for a model still in memory (a finished run that is not saved yet)."""
    device = model.device if isinstance(model, SequenceModel) else (model.body.device or pick_device())
    return TrainedScorer(LoadedModel(memory_spec(name, "classifier"), model, None, device))
