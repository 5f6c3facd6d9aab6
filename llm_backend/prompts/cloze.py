"""Cloze scoring with a masked LM: fill the template's ``[MASK]`` and compare the verbalizer words at that slot.

This is PET-style prompting (Schick & Schütze, 2021): the score of a label is the log-probability of its answer
word at the mask position, restricted to the verbalizer's words. A word that the tokenizer splits into several
pieces is scored by its first piece (one mask, one piece), which the UI reports. The bundled masked LM is a tiny
BERT meant for plumbing; bring a real one (e.g. a local roberta-base folder) for useful numbers.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from llm_backend.core.errors import ModelError, TemplateError
from llm_backend.core.progress import Progress, report
from llm_backend.models.loaded import LoadedModel


def mask_token(loaded: LoadedModel) -> str:
    tok = loaded.tokenizer
    mask = getattr(tok, "mask_token", None)
    if not mask:
        raise ModelError(f"'{loaded.spec.name}' has no mask token, so it cannot fill a cloze template.")
    return str(mask)


def verbalizer_token_ids(loaded: LoadedModel, verbalizer: Mapping[str, Sequence[str]]) -> tuple[list[list[int]], list[str]]:
    """Per label, the first-piece token id of each answer word (with and without a leading space for BPE vocabularies)."""
    tok = loaded.tokenizer
    ids: list[list[int]] = []
    split: list[str] = []
    for words in verbalizer.values():
        row: list[int] = []
        for w in words:
            pieces = tok(" " + w, add_special_tokens=False)["input_ids"] or tok(w, add_special_tokens=False)["input_ids"]
            if not pieces:
                continue
            if len(pieces) > 1:
                split.append(w)
            row.append(int(pieces[0]))
        ids.append(list(dict.fromkeys(row)))
    notes = []
    if split:
        notes.append(f"{len(split)} answer word(s) are several tokens for this masked LM and are scored by their "
                     f"first piece: {', '.join(split[:6])}.")
    return ids, notes


def cloze_scores(loaded: LoadedModel, prompts: Sequence[str], verbalizer: Mapping[str, Sequence[str]], *,
                 batch_size: int = 16, progress: Progress = None, notes: list[str] | None = None) -> np.ndarray:
    """(n_prompts, n_labels): for each label the max over its words of log P(word | prompt) at the mask."""
    import torch

    tok = loaded.tokenizer
    mask = mask_token(loaded)
    label_ids, extra = verbalizer_token_ids(loaded, verbalizer)
    if notes is not None:
        notes.extend(extra)
    if any(not row for row in label_ids):
        raise TemplateError("Some labels have no answer word the masked LM can represent.")
    max_len = min(int(getattr(tok, "model_max_length", 512) or 512), 512)
    out = np.zeros((len(prompts), len(label_ids)))
    device = loaded.device.torch_device if loaded.device else "cpu"
    missing = [i for i, p in enumerate(prompts) if mask not in p]
    if missing:
        raise TemplateError(f"The rendered prompt has no mask token ({mask}); cloze mode needs one.")
    with loaded.lock, torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start:start + batch_size])
            enc = tok(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_len).to(device)
            logits = loaded.model(**enc).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            for r in range(len(chunk)):
                where = (enc["input_ids"][r] == tok.mask_token_id).nonzero()
                if len(where) == 0:  # the mask fell off the end when the prompt was truncated
                    raise TemplateError("The mask was cut off: the prompt is longer than the masked LM's context "
                                        f"({max_len} tokens). Put [MASK] before the text or shorten the template.")
                pos = int(where[0, 0])
                for j, ids in enumerate(label_ids):
                    out[start + r, j] = float(logp[r, pos, ids].max())
            report(progress, min(start + batch_size, len(prompts)), len(prompts))
    return out
