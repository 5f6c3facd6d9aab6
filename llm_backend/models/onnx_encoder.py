"""A sentence embedder run by onnxruntime: the CPU inference path, with int8 weights where quality holds.

Why not sentence-transformers' own ``backend="onnx"``: it needs ``optimum-onnx``, which requires transformers < 4.58
and does not install beside this stack. So the transformer body of a loaded ``SentenceTransformer`` is exported here
with ``torch.onnx.export`` (TorchScript exporter; mean pooling inside the graph), once per model into the cache
folder, and — only when int8 is asked for — dynamically quantised to int8 per output channel (MatMul weights only;
activations are quantised on the fly). ``bench/encode_speed.py`` measures it against plain ``SentenceTransformer.encode`` on the same texts: cosine
~1.0 for fp32, ~0.99 for int8, same zero-shot macro-F1 within noise, and 2-3x the throughput on 2 CPU cores.

The torch model stays loaded next to this one: training (SetFit, fine-tuning) needs gradients, and on a GPU the
torch path is faster. :class:`OnnxEncoder` mirrors the part of ``SentenceTransformer.encode`` the project uses
(prompts, length-sorted batches, normalised float32 rows) so callers do not care which path ran.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from llm_backend.core.model_folders import write_once

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
#: Bump when the exported graph changes so stale files in users' caches are re-exported.
EXPORT_VERSION = 1
_export_lock = threading.Lock()


def _pooled_module(transformer: Any) -> Any:
    import torch  # imported here: importing torch at module import would slow every CLI command

    class PooledBody(torch.nn.Module):
        """Transformer body + masked mean pooling: the graph returns one vector per text, not per token."""

        def __init__(self, body: Any) -> None:
            super().__init__()
            self.body = body

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    return PooledBody(transformer)


def _hf_body(st_model: Any) -> Any:
    """The transformers model inside a SentenceTransformer's first module (mean-pooling models only)."""
    first = st_model[0]
    body = getattr(first, "auto_model", None) or getattr(first, "model", None)
    if body is None:
        raise ValueError("this sentence-transformer has no transformers body to export")
    pooling = st_model[1] if len(st_model) > 1 else None
    if getattr(pooling, "pooling_mode", None) != "mean" or not getattr(pooling, "include_prompt", True):
        raise ValueError("only mean-pooling sentence-transformers (prompt included) are exported to ONNX")
    return body


def export_fp32(st_model: Any, path: Path) -> Path:
    """Export the mean-pooled body to ONNX (dynamic batch and sequence axes), float32."""
    import warnings

    import torch

    module = _pooled_module(_hf_body(st_model)).eval().to("cpu", dtype=torch.float32)
    # Two texts of different lengths, so the example batch is padded: transformers skips an all-ones attention
    # mask with a Python-level check, and the tracer would freeze that skip into the graph (padding then leaks into
    # attention). With padding in the example the masked path is the one recorded (tests compare padded batches).
    enc = st_model.tokenizer(["a short example text", "another one"], padding=True, return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about those Python-level checks, verified harmless above
        torch.onnx.export(
            module, (enc["input_ids"], enc["attention_mask"]), str(path),
            input_names=["input_ids", "attention_mask"], output_names=["pooled"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "pooled": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    return path


def quantise_int8(fp32_path: Path, out_path: Path) -> Path:
    """Dynamic int8 quantisation of the MatMul weights, per output channel (embeddings and LayerNorm stay fp32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32_path), str(out_path), per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul"])
    return out_path


def _cache_key(model_key: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_key.split(":")[-2].split("/")[-1])[:60]
    digest = hashlib.sha1(model_key.encode("utf-8")).hexdigest()[:10]
    return f"{safe}-{digest}-v{EXPORT_VERSION}"


def onnx_file(st_model: Any, model_key: str, precision: Precision = "fp32",
              cache_dir: str | Path | None = None) -> Path:
    """The ONNX file of a model at ``precision``, exported (fp32) or quantised (int8) once into ``cache_dir/onnx/``.

    Lazy: the fp32 export is the default CPU path and is all most users ever need; the int8 copy (a quantisation
    pass of several seconds and another ~25 MB per model) is written only the first time int8 is asked for, from
    the fp32 export, into its own folder. Each folder is written in a temporary folder and renamed, so a killed
    export never leaves a file that looks finished.
    """
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be fp32 or int8, not {precision!r}")
    if cache_dir is None:
        from llm_backend.core.config import get_settings

        cache_dir = get_settings().cache_dir
    target = Path(cache_dir) / "onnx" / _cache_key(model_key)
    fp32 = _build_once(target / "model.onnx", lambda out: export_fp32(st_model, out),
                       f"Exporting {model_key} to ONNX once into {target}")
    if precision == "fp32":
        return fp32
    int8_dir = target.with_name(target.name + "-int8")
    return _build_once(int8_dir / "model_int8.onnx", lambda out: quantise_int8(fp32, out),
                       f"Quantising the ONNX export of {model_key} to int8 once into {int8_dir}")


def _build_once(path: Path, build: Callable[[Path], Any], message: str) -> Path:
    """``path`` (a file in its own cache folder), built by ``build(out)`` the first time any thread asks for it."""
    if not path.is_file():
        with _export_lock:
            if not path.is_file():
                log.info("%s", message)
                with write_once(path.parent, lambda t: (t / path.name).is_file(), prefix=".tmp-onnx-") as tmp:
                    build(tmp / path.name)
    return path


class OnnxEncoder:
    """``encode`` like ``SentenceTransformer.encode`` (the subset the project uses), run by onnxruntime."""

    def __init__(self, path: str | Path, tokenizer: Any, *, max_seq_length: int, dim: int,
                 prompts: dict[str, str] | None = None, default_prompt_name: str | None = None,
                 precision: Precision = "int8", threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.dim = int(dim)
        self.prompts = dict(prompts or {})
        self.default_prompt_name = default_prompt_name
        self.precision = precision
        self.path = Path(path)

    @classmethod
    def from_sentence_transformer(cls, st_model: Any, model_key: str, precision: Precision = "int8",
                                  cache_dir: str | Path | None = None) -> "OnnxEncoder":
        return cls(onnx_file(st_model, model_key, precision, cache_dir), st_model.tokenizer, max_seq_length=st_model.max_seq_length,
                   dim=st_model.get_embedding_dimension(), prompts=getattr(st_model, "prompts", None),
                   default_prompt_name=getattr(st_model, "default_prompt_name", None), precision=precision)

    def get_embedding_dimension(self) -> int:
        return self.dim

    def _prefix(self, prompt_name: str | None, prompt: str | None) -> str:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        return self.prompts.get(name, "") if name else ""

    def encode(self, sentences: str | Sequence[str], batch_size: int = 64, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False, prompt_name: str | None = None,
               prompt: str | None = None, progress: Callable[[int, int], None] | None = None,
               **_ignored: Any) -> np.ndarray:
        """(n, dim) float32 rows in input order. Texts are sorted by length so each batch pads little."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else [s if isinstance(s, str) else str(s) for s in sentences]
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        prefix = self._prefix(prompt_name, prompt)
        if prefix:
            texts = [prefix + t for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")
        batch_size = max(1, int(batch_size))
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_seq_length, return_tensors="np")
            feeds = {"input_ids": enc["input_ids"].astype(np.int64),
                     "attention_mask": enc["attention_mask"].astype(np.int64)}
            out[idx] = self.session.run(["pooled"], feeds)[0]
            if progress is not None:
                progress(min(start + batch_size, n), n)
        if normalize_embeddings:
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out[0] if single else out


def onnx_wanted(device_kind: str) -> Precision | None:
    """Which ONNX precision the CPU default uses (``ZSS_ENCODER_BACKEND``: ``onnx`` default, ``onnx-int8``, ``torch``).

    float32 is the default, not int8: dynamic int8 quantisation scales activations per *batch*, so a row's vector
    (and, near a decision boundary, its label) depends on the other rows it was encoded with. That breaks the promise
    that a frozen classifier gives the same answer for a row whatever the split of the data (bench/batch_scale.py,
    tests/batch/test_batch_frozen.py); int8 stays one setting away for interactive use. Never on a GPU: there the torch
    path in fp16/bf16 is the fast one.
    """
    choice = os.environ.get("ZSS_ENCODER_BACKEND", "onnx").strip().lower()
    if device_kind != "cpu" or choice == "torch":
        return None
    return "fp32" if choice in ("onnx", "onnx-fp32") else "int8"
