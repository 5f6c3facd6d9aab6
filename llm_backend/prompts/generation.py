"""Free-text generation with the instruct LM, and mapping what it wrote back to a label.

Generation shows what the model *says*, which is the honest view of an instruct prompt; the mapping finds the
verbalizer word (or label name) that appears first in the answer. Answers that mention no label are "unmapped" and
counted, never guessed.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from llm_backend.core.errors import UserError
from llm_backend.core.progress import Progress, report
from llm_backend.models.loaded import LoadedModel
from llm_backend.prompts.lm_scoring import PrefixStore, derive_cache, halve_on_oom, is_oom, shared_prefix

UNMAPPED = "unmapped"


#: Templates that ask for a single word/label: generation stops as soon as a label word has been written.
ONE_WORD = re.compile(r"\b(one|single|1)[- ]word\b|\b(word|label|category|intent|topic|name|class) only\b"
                      r"|\bonly (the|one|a) (word|label|category|intent|topic|name|class)\b", re.IGNORECASE)


def asks_for_one_word(template_text: str) -> bool:
    return bool(ONE_WORD.search(template_text or ""))


def _stop_criteria(tokenizer: Any, start: int, verbalizer: Mapping[str, Sequence[str]] | None) -> Any:
    """Per-row stop: a newline after some text, or (with a verbalizer) a label word written as a whole word."""
    import torch
    from transformers import StoppingCriteria

    class AnswerStop(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
            done = []
            for row in input_ids[:, start:]:
                text = tokenizer.decode(row, skip_special_tokens=True)
                body = text.lstrip()
                stop = bool(body) and "\n" in body
                if not stop and verbalizer is not None and body:
                    stop = map_to_label(body, verbalizer) != UNMAPPED
                done.append(stop)
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return AnswerStop()


def generate_texts(loaded: LoadedModel, prompts: Sequence[str], *, max_new_tokens: int = 16, temperature: float = 0.0,
                   seed: int = 0, batch_size: int | None = None, progress: Progress = None,
                   stop_words: Mapping[str, Sequence[str]] | None = None, stop_at_newline: bool = True,
                   share_prefix: bool = True, prefix_hint: str | None = None, prefix_store: PrefixStore | None = None,
                   notes: list[str] | None = None) -> list[str]:
    """Generated continuation of each prompt (greedy when temperature is 0; seeded sampling otherwise).

    The prompts' shared start (chat header, instruction, shared demonstrations) runs once and its KV cache is
    expanded over each left-padded batch, as in verbalizer scoring. Generation of a row stops at the first newline
    after some text (``stop_at_newline``) and, with ``stop_words`` (a verbalizer), as soon as a label word is
    written. On a GPU that runs out of memory the batch is halved and generation goes on.
    """
    import torch

    if not 1 <= int(max_new_tokens) <= 512:
        raise UserError("Max new tokens must be between 1 and 512.")
    if temperature < 0:
        raise UserError("Temperature cannot be negative.")
    if not prompts:
        return []
    tok = loaded.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    device = loaded.device.torch_device if loaded.device else torch.device("cpu")
    encoded = [list(tok(p, add_special_tokens=not (tok.bos_token and p.startswith(tok.bos_token)))["input_ids"])
               for p in prompts]
    if batch_size is None:
        batch_size = 64 if device.type == "cuda" else 8
    out: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths pad little
    halved = False
    with loaded.lock, torch.inference_mode():
        prefix, cache = shared_prefix(loaded, encoded, share=share_prefix, hint=prefix_hint, store=prefix_store)
        p = len(prefix)
        start, done = 0, 0
        while start < len(order):
            chunk = order[start:start + batch_size]
            rest = [encoded[i][p:] for i in chunk]
            width = max(len(e) for e in rest)
            ids = torch.full((len(chunk), p + width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), p + width), dtype=torch.long)
            for r, e in enumerate(rest):  # left padding after the shared prefix: generation continues from the end
                ids[r, :p] = torch.tensor(prefix, dtype=torch.long) if p else ids[r, :p]
                ids[r, p + width - len(e):] = torch.tensor(e)
                mask[r, :p] = 1
                mask[r, p + width - len(e):] = 1
            torch.manual_seed(seed + start)
            kwargs: dict[str, Any] = {"do_sample": temperature > 0, "max_new_tokens": int(max_new_tokens),
                                      "pad_token_id": pad_id}
            if temperature > 0:
                kwargs.update(temperature=float(temperature), top_k=0, top_p=1.0)
            else:
                kwargs.update(temperature=None, top_k=None, top_p=None)
            if stop_at_newline or stop_words:
                from transformers import StoppingCriteriaList

                kwargs["stopping_criteria"] = StoppingCriteriaList([_stop_criteria(tok, p + width, stop_words)])
            if cache is not None:
                kwargs["past_key_values"] = derive_cache(cache, repeat=len(chunk))
            try:
                gen = loaded.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
            except (RuntimeError, MemoryError) as exc:
                if not is_oom(exc):
                    raise
                batch_size, halved = halve_on_oom(batch_size), True
                continue
            for r, i in enumerate(chunk):
                text = tok.decode(gen[r, p + width:], skip_special_tokens=True).strip()
                out[i] = text.split("\n", 1)[0].strip() if stop_at_newline else text
            start += len(chunk)
            done += len(chunk)
            report(progress, done, len(prompts))
    if halved and notes is not None:
        notes.append(f"The GPU ran out of memory: halved the generation batch (to {batch_size} rows) and went on.")
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
