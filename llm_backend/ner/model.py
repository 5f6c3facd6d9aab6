"""The token classifier: an encoder, an optional case-shape embedding, and a linear layer over BIO tags.

The case-shape embedding (one learned vector per shape, see :func:`llm_backend.ner.features.case_shape`) is added to
the encoder's word embeddings before the first layer, so every layer can use capitalisation although the bundled
vocabularies are lowercase. It starts at zero (the encoder starts exactly as pretrained) and costs 8 × hidden
weights. Measured on CoNLL-2003 dev in ``bench/ner.py`` (see docs/ner.md).

Saved as safetensors + JSON (no pickles): ``encoder/`` (a plain transformers folder with its tokenizer),
``tagger_head.safetensors`` (classifier and shape embedding) and ``zss_model.json`` (role ``ner``, the tag list).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Sequence

from llm_backend.core.device import DeviceInfo, pick_device
from llm_backend.core.errors import ModelError
from llm_backend.core.progress import Progress, report

from .features import N_SHAPES, build_chunks, collate, repair_iob2

HEAD_FILE = "tagger_head.safetensors"
META_FILE = "zss_model.json"
FORMAT = "token_classifier"


def _net_class():  # torch imported lazily: the CLI's --help must not pay for it
    import torch
    from torch import nn

    class TaggerNet(nn.Module):
        def __init__(self, encoder: Any, num_tags: int, use_case: bool, dropout: float = 0.1) -> None:
            super().__init__()
            self.encoder = encoder
            hidden = encoder.config.hidden_size
            self.use_case = use_case
            self.shape_embedding = nn.Embedding(N_SHAPES, hidden)
            nn.init.zeros_(self.shape_embedding.weight)
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(hidden, num_tags)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    shape_ids: torch.Tensor) -> torch.Tensor:
            embeds = self.encoder.get_input_embeddings()(input_ids)
            if self.use_case:
                embeds = embeds + self.shape_embedding(shape_ids)
            hidden = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
            return self.classifier(self.dropout(hidden))

    return TaggerNet


def build_net(encoder: Any, num_tags: int, use_case: bool) -> Any:
    return _net_class()(encoder, num_tags, use_case)


class NerModel:
    """A trained tagger ready to tag word lists. ``tags`` is the label order of the classifier's outputs."""

    kind = FORMAT

    def __init__(self, net: Any, tokenizer: Any, tags: Sequence[str], device: DeviceInfo, max_length: int = 128,
                 batch_size: int = 64) -> None:
        self.net = net
        self.tokenizer = tokenizer
        self.tags = list(tags)
        self.device = device
        self.max_length = max_length
        self.batch_size = batch_size
        self.lock = threading.RLock()

    @property
    def classes(self) -> list[str]:
        return self.tags

    def entity_types(self) -> list[str]:
        return sorted({t[2:] for t in self.tags if t != "O"})

    def tag(self, sentences: Sequence[Sequence[str]], progress: Progress = None,
            should_stop: Any = None) -> tuple[list[list[str]], int]:
        """BIO tags for each sentence (valid IOB2), and how many sentences were split for the length limit."""
        import torch

        chunks, n_split = build_chunks(self.tokenizer, sentences, self.max_length)
        out: list[list[str]] = [["O"] * len(s) for s in sentences]
        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].input_ids))  # less padding per batch
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with self.lock:
            was_training = self.net.training
            self.net.eval()
            try:
                for b in range(0, len(order), self.batch_size):
                    if should_stop is not None and should_stop():
                        break
                    batch = [chunks[i] for i in order[b : b + self.batch_size]]
                    enc = collate(batch, pad, self.device.torch_device)
                    with torch.inference_mode():
                        logits = self.net(enc["input_ids"], enc["attention_mask"], enc["shape_ids"])
                    best = logits.argmax(-1).cpu().numpy()
                    for row, c in enumerate(batch):
                        for w, pos in enumerate(c.first_piece):
                            out[c.sentence][c.word_start + w] = self.tags[int(best[row, pos])]
                    report(progress, min(b + self.batch_size, len(order)), len(order))
            finally:
                self.net.train(was_training)
        return [repair_iob2(t) for t in out], n_split

    def save(self, folder: Path) -> dict[str, Any]:
        from safetensors.torch import save_file

        with self.lock:
            encoder = self.net.encoder
            encoder.save_pretrained(str(folder / "encoder"), safe_serialization=True)
            self.tokenizer.save_pretrained(str(folder / "encoder"))
            save_file({"classifier.weight": self.net.classifier.weight.detach().cpu().contiguous(),
                       "classifier.bias": self.net.classifier.bias.detach().cpu().contiguous(),
                       "shape_embedding.weight": self.net.shape_embedding.weight.detach().cpu().contiguous()},
                      str(folder / HEAD_FILE))
        return {"role": "ner", "format": FORMAT, "labels": self.tags, "use_case": bool(self.net.use_case),
                "max_length": self.max_length}


def _read_meta(folder: Path) -> dict[str, Any]:
    """zss_model.json (read here, not via training.trained_models, which imports this module: no import circle)."""
    import json

    try:
        return json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"'{folder.name}' is not a trained model folder (no {META_FILE}).") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"The {META_FILE} of '{folder.name}' cannot be read: {exc}") from None


def load_ner(folder: str | Path, device: DeviceInfo | None = None) -> NerModel:
    """A saved tagger back from its folder; a ModelError when the folder is not one."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    device = device or pick_device()
    folder = Path(folder)
    meta = _read_meta(folder)
    if meta.get("format") != FORMAT:
        raise ModelError(f"'{folder.name}' is not a named-entity model (format '{meta.get('format')}'). "
                         "Train one with ner-train or the Named entities page.")
    tags = [str(t) for t in meta.get("labels") or []]
    if "O" not in tags or len(tags) < 2:
        raise ModelError(f"'{folder.name}' has no usable tag list in its zss_model.json.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "encoder"), trust_remote_code=False)
        encoder = AutoModel.from_pretrained(str(folder / "encoder"), trust_remote_code=False, use_safetensors=True)
        head = load_file(str(folder / HEAD_FILE))
    except (OSError, ValueError) as exc:
        raise ModelError(f"The named-entity model '{folder.name}' cannot be loaded: {str(exc)[:200]}") from None
    net = build_net(encoder, len(tags), bool(meta.get("use_case", True)))
    with torch.no_grad():
        net.classifier.weight.copy_(head["classifier.weight"])
        net.classifier.bias.copy_(head["classifier.bias"])
        net.shape_embedding.weight.copy_(head["shape_embedding.weight"])
    net.to(device.torch_device).eval()
    return NerModel(net, tokenizer, tags, device, int(meta.get("max_length", 128)))


def throughput(model: NerModel, sentences: Sequence[Sequence[str]]) -> float:
    """Sentences tagged per second over ``sentences`` (one warm-up batch first)."""
    model.tag(sentences[: model.batch_size])
    t0 = time.perf_counter()
    model.tag(sentences)
    return len(sentences) / max(time.perf_counter() - t0, 1e-9)

