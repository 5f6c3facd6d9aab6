"""The loaded-model type and the process-wide model cache, with no knowledge of how any model is loaded.

Why a module of its own: encoders, scorers and trained models all need the *type*, and a trained head-only model
needs the *cache* to fetch its base embedder. When both lived beside the loaders, which in turn dispatch to trained
models, the imports went in a circle. Here the cache is given its loader, and hands every loader a
``get_dependency`` callable, so a trained model reuses the one shared copy of its embedder instead of calling back
up into the loading module (or loading MiniLM a second time through another cache).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from llm_backend.core.device import DeviceInfo
from llm_backend.models.registry import ModelSpec


@dataclass
class LoadedModel:
    """A model with what is needed to use it safely: its tokenizer, device and a lock.

    Tokenizers and in-place cache state are not safe to use from two Streamlit sessions at the same instant; a short
    lock around a batched call costs far less than a second copy of the weights.
    """

    spec: ModelSpec
    model: Any
    tokenizer: Any = None
    device: DeviceInfo | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    extra: dict[str, Any] = field(default_factory=dict)


def inference_encoder(model: LoadedModel) -> Any:
    """What runs ``encode`` for inference: the ONNX copy on CPU when there is one, else the torch model."""
    return model.extra.get("fast_encoder") or model.model


GetModel = Callable[[ModelSpec], LoadedModel]
Loader = Callable[[ModelSpec, GetModel], LoadedModel]


class ModelCache:
    """Loads each spec once per process and hands the same object to every caller (pages, CLI, tests, benches)."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, spec: ModelSpec) -> LoadedModel:
        with self._lock:
            if spec.key in self._models:
                return self._models[spec.key]
            key_lock = self._loading.setdefault(spec.key, threading.Lock())
        with key_lock:  # two threads asking for one model load it once; other models load in parallel
            if spec.key not in self._models:
                loaded = self._loader(spec, self.get)
                with self._lock:
                    self._models[spec.key] = loaded
            return self._models[spec.key]

    def loaded(self) -> list[ModelSpec]:
        with self._lock:
            return [m.spec for m in self._models.values()]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
