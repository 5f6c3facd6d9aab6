"""Free-text generation with the instruct LM, and mapping what it wrote back to a label.

Generation shows what the model *says*, which is the honest view of an instruct prompt; the mapping finds the
verbalizer word (or label name) that appears first in the answer. Answers that mention no label are "unmapped" and
counted, never guessed.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from llm_backend.core.errors import UserError
from llm_backend.core.progress import Progress, report
from llm_backend.models.loaded import LoadedModel

UNMAPPED = "unmapped"


def generate_texts(loaded: LoadedModel, prompts: Sequence[str], *, max_new_tokens: int = 16, temperature: float = 0.0,
                   seed: int = 0, batch_size: int = 8, progress: Progress = None) -> list[str]:
    """Generated continuation of each prompt (greedy when temperature is 0; seeded sampling otherwise)."""
    import torch

    if not 1 <= int(max_new_tokens) <= 512:
        raise UserError("Max new tokens must be between 1 and 512.")
    if temperature < 0:
        raise UserError("Temperature cannot be negative.")
    tok = loaded.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    device = loaded.device.torch_device if loaded.device else "cpu"
    out: list[str] = []
    with loaded.lock, torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            encoded = [tok(p, add_special_tokens=not (tok.bos_token and p.startswith(tok.bos_token)))["input_ids"]
                       for p in chunk]
            width = max(len(e) for e in encoded)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, e in enumerate(encoded):  # left padding: generation continues from the last column
                ids[r, width - len(e):] = torch.tensor(e)
                mask[r, width - len(e):] = 1
            torch.manual_seed(seed + start)
            kwargs = {"do_sample": temperature > 0, "max_new_tokens": int(max_new_tokens), "pad_token_id": pad_id}
            if temperature > 0:
                kwargs.update(temperature=float(temperature), top_k=0, top_p=1.0)
            else:
                kwargs.update(temperature=None, top_k=None, top_p=None)
            gen = loaded.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
            out.extend(tok.decode(g[width:], skip_special_tokens=True).strip() for g in gen)
            report(progress, min(start + batch_size, len(prompts)), len(prompts))
    return out


def map_to_label(answer: str, verbalizer: Mapping[str, Sequence[str]]) -> str:
    """The label whose answer word (or name) appears first in ``answer`` as a whole word; UNMAPPED when none does."""
    text = answer.lower()
    best: tuple[int, int, str] | None = None  # (position, -length, label)
    for label, words in verbalizer.items():
        for w in list(words) + [label]:
            w = str(w).strip().lower()
            if not w:
                continue
            m = re.search(r"(?<!\w)" + re.escape(w) + r"(?!\w)", text)
            if m:
                key = (m.start(), -len(w), label)
                if best is None or key < best:
                    best = key
    return best[2] if best else UNMAPPED
