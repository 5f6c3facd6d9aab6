"""Keyword arguments for every model load: never run code shipped with a model, never unpickle weights.

``trust_remote_code=False`` stops ``auto_map`` code in a folder someone sent; ``use_safetensors=True`` refuses a
pickled ``pytorch_model.bin`` (unpickling can run code). Used by ``models.loading``, ``training.trained_models``,
``training.loop`` and ``ner``; see docs/security.md.
"""
from __future__ import annotations

from typing import Any

SAFE_HF_KWARGS: dict[str, Any] = {"trust_remote_code": False, "use_safetensors": True}
SAFE_ST_KWARGS: dict[str, Any] = {"trust_remote_code": False, "model_kwargs": {"use_safetensors": True}}
