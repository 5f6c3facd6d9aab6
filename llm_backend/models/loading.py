"""Turning a :class:`ModelSpec` into weights on the right device, once per process.

The loaders here are plain functions; the one process-wide :class:`~llm_backend.models.loaded.ModelCache` wraps
them, so pages (every browser session of a server), the CLI, tests and benches share each loaded model.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from llm_backend.core.config import get_settings
from llm_backend.core.device import DeviceInfo, pick_device
from llm_backend.core.errors import ModelError
from llm_backend.core.model_folders import write_once
from llm_backend.core.safe_loading import SAFE_HF_KWARGS, SAFE_ST_KWARGS
from llm_backend.models.loaded import GetModel, LoadedModel, ModelCache
from llm_backend.models.registry import ModelSpec, resolve_location

log = logging.getLogger(__name__)



def _load_embedder(spec: ModelSpec, device: DeviceInfo) -> LoadedModel:
    from sentence_transformers import SentenceTransformer

    location = resolve_location(spec)
    model = SentenceTransformer(location, device=device.kind, **SAFE_ST_KWARGS)
    if spec.max_tokens:
        model.max_seq_length = min(int(spec.max_tokens), model.max_seq_length or spec.max_tokens)
    if device.kind == "cuda":
        model = model.to(dtype=device.dtype)
    loaded = LoadedModel(spec, model, model.tokenizer, device)
    attach_fast_encoder(loaded)
    return loaded


def attach_fast_encoder(loaded: LoadedModel) -> None:
    """On CPU, put an ONNX (int8 by default) copy of the embedder next to the torch one for inference.

    ``bench/encode_speed.py`` measured it 2-4x faster than the torch path with the same zero-shot macro-F1; the torch
    model stays for training and GPUs. Any export failure falls back to torch with a logged warning: a slower
    encoder is better than none. ``ZSS_ENCODER_BACKEND=torch`` turns it off.
    """
    from llm_backend.models.onnx_encoder import OnnxEncoder, onnx_wanted

    precision = onnx_wanted(loaded.device.kind if loaded.device else "cpu")
    if precision is None:
        return
    try:
        loaded.extra["fast_encoder"] = OnnxEncoder.from_sentence_transformer(loaded.model, loaded.spec.key, precision)
    except Exception as exc:  # noqa: BLE001 - any exporter/runtime failure means "use torch"
        log.warning("ONNX path for %s unavailable, using torch: %s", loaded.spec.name, exc)
        loaded.extra["fast_encoder_error"] = str(exc)[:300]


def _gguf_cache_dir(spec: ModelSpec) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{spec.name}-{spec.gguf_file}")
    return get_settings().cache_dir / "dequantised" / safe


def dequantised_folder(spec: ModelSpec) -> Path:
    """A float copy of a GGUF model, written once.

    transformers dequantises GGUF on every load (about 45 s for SmolLM2 on 2 cores); the saved copy loads in about a
    second. The copy is written to a temporary folder and renamed, so a killed process never leaves a half model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _gguf_cache_dir(spec)
    if (target / "config.json").is_file():
        return target
    folder = resolve_location(spec)
    gguf = spec.gguf_file
    if gguf is None or not (Path(folder) / gguf).is_file():
        raise ModelError(f"The GGUF file of '{spec.name}' is missing from {Path(folder).name}.")
    log.info("Dequantising %s once into %s", spec.name, target)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32, trust_remote_code=False)
    model.hf_quantizer = None  # transformers refuses to save a GGUF-loaded model otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with write_once(target, lambda t: (t / "config.json").is_file()) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return target


def _pretrained_location(spec: ModelSpec) -> str:
    if spec.gguf_file:
        return str(dequantised_folder(spec))
    return resolve_location(spec)


def _load_auto(spec: ModelSpec, device: DeviceInfo, auto_class_name: str) -> LoadedModel:
    import transformers
    from transformers import AutoTokenizer

    location = _pretrained_location(spec)
    auto_class = getattr(transformers, auto_class_name)
    dtype = device.dtype if device.kind == "cuda" else None
    kwargs: dict[str, Any] = dict(SAFE_HF_KWARGS)
    if dtype is not None:
        kwargs["dtype"] = dtype
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
    model = auto_class.from_pretrained(location, **kwargs)
    model.to(device.torch_device)
    model.eval()
    if getattr(tokenizer, "pad_token", None) is None and getattr(tokenizer, "eos_token", None) is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(spec, model, tokenizer, device)


_AUTO_CLASSES = {
    "causal_lm": "AutoModelForCausalLM",
    "masked_lm": "AutoModelForMaskedLM",
    "nli": "AutoModelForSequenceClassification",
    "classifier": "AutoModelForSequenceClassification",
}


def refuse_remote_code(spec: ModelSpec) -> None:
    """A local folder whose config only loads through its own Python code (``auto_map`` with an architecture
    transformers does not know) is refused up front with a clear message, before any tokenizer or weight loading.

    ``trust_remote_code=False`` already stops the code; this turns transformers' generic failure into words, and
    never reaches the interactive "do you trust this code?" prompt that made the CLI wait ~23 s (issue 13).
    """
    if spec.source not in ("folder", "trained"):
        return
    import json

    for config_path in (Path(spec.location) / "config.json", Path(spec.location) / "model" / "config.json"):
        if not config_path.is_file():
            continue
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return  # the loader reports a damaged config in its own words
        if not isinstance(config, dict) or not config.get("auto_map"):
            continue
        from transformers import CONFIG_MAPPING

        if str(config.get("model_type")) not in CONFIG_MAPPING:
            raise ModelError(f"'{spec.name}' needs its own Python code to load (config.json has an auto_map for the "
                             f"unknown architecture '{str(config.get('model_type'))[:60]}'); this app never runs code "
                             "shipped with a model. Use a model of a standard architecture.")
        log.warning("%s: ignoring auto_map in config.json (standard %s classes are used; no remote code runs)",
                    spec.name, config.get("model_type"))


def load_model(spec: ModelSpec, get_dependency: GetModel | None = None, device: DeviceInfo | None = None) -> LoadedModel:
    """Load weights for ``spec``. Every failure becomes a ModelError that names the model and a likely fix.

    ``get_dependency`` fetches models this one is built on (a head-only trained model's embedder); the process-wide
    cache passes its own ``get`` so the shared copy is reused.
    """
    device = device or pick_device()
    refuse_remote_code(spec)
    try:
        if spec.role == "embedder":
            return _load_embedder(spec, device)
        if spec.source == "trained":
            # Trained models know how to load themselves (head on embeddings, SetFit, fine-tuned transformer).
            from llm_backend.training import trained_models
            return trained_models.load_trained(spec, get_dependency or get_model, device)
        return _load_auto(spec, device, _AUTO_CLASSES[spec.role])
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001  (any load failure, e.g. UnpicklingError, SafetensorError, is the model's)
        if not isinstance(exc, (OSError, ValueError, KeyError, RuntimeError, ImportError)):
            log.warning("Loading %s failed", spec.name, exc_info=True)
        hint = "Is it a complete model folder (config, tokenizer and weights)?"
        text = str(exc)
        if "trust_remote_code" in text or "auto_map" in text or "custom code" in text:
            hint = ("The folder asks to run its own Python code (auto_map); this app never runs code shipped with "
                    "a model. Use a model of a standard architecture.")
        elif "safetensors" in text or "pytorch_model.bin" in text or "Unpickl" in type(exc).__name__:
            hint = ("This app loads weights only from .safetensors files (pickled .bin/.pt weights can run code). "
                    "Convert the model with save_pretrained(..., safe_serialization=True).")
        if spec.source == "hub":
            hint = "Check the id, and that the app runs with network (HF_HUB_OFFLINE=0)."
        from llm_backend.core.paths import (
            redact,  # the library's message often names the folder's absolute path
        )

        first_line = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
        raise ModelError(f"Could not load '{spec.name}' as a {spec.role}: {first_line}. {hint}") from exc


_default_cache = ModelCache(load_model)


def get_model(spec: ModelSpec) -> LoadedModel:
    """The process-wide cached model: what the CLI, tests and benchmarks call."""
    return _default_cache.get(spec)


def loaded_specs() -> list[ModelSpec]:
    return _default_cache.loaded()
