"""The ONNX inference copy of an embedder: same vectors as torch (fp32), close ones (int8), same row order."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from llm_backend.models.embedding_cache import EmbeddingCache, embed_texts
from llm_backend.models.loaded import inference_encoder
from llm_backend.models.loading import attach_fast_encoder
from llm_backend.models.onnx_encoder import OnnxEncoder, onnx_wanted


def test_cpu_default_is_fp32_onnx_and_int8_or_torch_can_be_chosen(embedder, monkeypatch):
    enc = inference_encoder(embedder)
    assert isinstance(enc, OnnxEncoder) and enc.precision == "fp32"  # batch-independent: frozen classifiers need it
    assert onnx_wanted("cuda") is None  # GPUs keep the torch path
    monkeypatch.setenv("ZSS_ENCODER_BACKEND", "onnx-int8")
    assert onnx_wanted("cpu") == "int8"
    monkeypatch.setenv("ZSS_ENCODER_BACKEND", "torch")
    plain = replace(embedder, extra={})
    attach_fast_encoder(plain)
    assert inference_encoder(plain) is embedder.model


def test_onnx_rows_match_torch_in_input_order(embedder, banking77):
    texts = banking77["text"].iloc[:120].tolist() + ["short", "a much longer text " * 30]
    torch_vecs = embedder.model.encode(texts, batch_size=64, normalize_embeddings=True)
    fp32 = OnnxEncoder.from_sentence_transformer(embedder.model, embedder.spec.key, "fp32")
    cos32 = (fp32.encode(texts, batch_size=16) * torch_vecs).sum(axis=1)
    assert cos32.min() > 0.9999  # same graph, same weights: only float rounding differs
    default = embed_texts(embedder, texts, cache=EmbeddingCache())  # the default path (fp32 ONNX), length-sorted
    assert ((default * torch_vecs).sum(axis=1)).min() > 0.9999
    int8 = OnnxEncoder.from_sentence_transformer(embedder.model, embedder.spec.key, "int8").encode(texts)
    cos8 = (int8 * torch_vecs).sum(axis=1)
    assert cos8.mean() > 0.99 and cos8.min() > 0.97
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    # rows stay in input order although batches are sorted by length: each text is nearest to its own torch row
    assert (np.argmax(int8 @ torch_vecs.T, axis=1) == np.arange(len(texts))).mean() > 0.98


def test_int8_is_quantised_only_when_asked_for(embedder, tmp_path):
    """fp32 is the default: loading it writes no int8 file; the first int8 request writes it (from the fp32 export)
    and later requests reuse both files."""
    import shutil

    shared = OnnxEncoder.from_sentence_transformer(embedder.model, embedder.spec.key, "fp32")  # exported by the app
    folder = tmp_path / "onnx" / shared.path.parent.name
    folder.mkdir(parents=True)
    shutil.copy(shared.path, folder / "model.onnx")  # a cache holding the fp32 export only (no re-export here)
    fp32 = OnnxEncoder.from_sentence_transformer(embedder.model, embedder.spec.key, "fp32", cache_dir=tmp_path)
    assert fp32.path == folder / "model.onnx"
    assert not list(tmp_path.rglob("*int8*"))
    exported = fp32.path.stat().st_mtime_ns
    int8 = OnnxEncoder.from_sentence_transformer(embedder.model, embedder.spec.key, "int8", cache_dir=tmp_path)
    assert int8.path.is_file() and int8.path.parent != folder and int8.precision == "int8"
    assert fp32.path.stat().st_mtime_ns == exported  # the fp32 export was reused, not written again
    quantised = int8.path.stat().st_mtime_ns
    again = OnnxEncoder.from_sentence_transformer(embedder.model, embedder.spec.key, "int8", cache_dir=tmp_path)
    assert again.path == int8.path and int8.path.stat().st_mtime_ns == quantised
    vecs = int8.encode(["a short sentence", "another one"])
    ref = fp32.encode(["a short sentence", "another one"])
    assert vecs.shape == ref.shape and (vecs * ref).sum(axis=1).min() > 0.97
    assert not list(tmp_path.rglob(".tmp-onnx-*"))  # no half-written folders left
