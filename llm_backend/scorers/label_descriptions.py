"""LM-written label descriptions: one short sentence per label from the bundled instruct LM, cached on disk.

A label name such as "Sci/Tech" or "pin blocked" tells an embedder little; a sentence about what such texts say
gives it more words to match. The prompt is generic (it names only the label, never a data set or a domain) and
the answer is greedy, so the same label always gets the same sentence; answers are kept under
``<cache>/label_descriptions/`` per model and prompt version, so a label set is described once.

SmolLM2-135M is small: its sentences are often vague or wrong ("体育" came back as a food). That is why they are
offered as *suggestions* the wording help weighs against the corpus (:mod:`llm_backend.scorers.wording_help`),
never written into a label silently.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Sequence

from llm_backend.core.progress import Progress
from llm_backend.data.labels import Label
from llm_backend.models.loaded import LoadedModel

#: Bump when the prompt changes, so cached answers of the old prompt are not reused.
PROMPT_VERSION = "v1"
PROMPT = 'In one short sentence, describe what a text labelled "{label}" is usually about.'
#: The start of the answer, written for the model: it keeps the answer a description instead of an echo of the label
#: ("A text labelled X is ...") and is dropped from the suggestion.
ANSWER_START = "Such a text is usually about"
MAX_NEW_TOKENS = 24


def _cache_file(loaded: LoadedModel) -> Path:
    from llm_backend.core.config import get_settings

    key = hashlib.sha1(f"{loaded.spec.key}|{PROMPT_VERSION}|{PROMPT}|{ANSWER_START}".encode()).hexdigest()[:16]
    return get_settings().cache_dir / "label_descriptions" / f"{key}.json"


def _prompt(loaded: LoadedModel, phrase: str) -> str:
    tok = loaded.tokenizer
    user = PROMPT.format(label=phrase)
    if getattr(tok, "chat_template", None):
        head = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
    else:
        head = f"{user}\n"
    return f"{head}{ANSWER_START}"


def _clean(answer: str) -> str:
    """The generated continuation as a phrase: one sentence, trimmed, an unfinished last clause dropped."""
    text = re.split(r"(?<=[.!?])\s", answer.strip(), maxsplit=1)[0].strip()
    if not text.endswith((".", "!", "?")) and "," in text:  # cut off by the token limit: keep whole clauses
        text = text.rsplit(",", 1)[0]
    return text.strip(" .,;:")


def lm_descriptions(loaded: LoadedModel, labels: Sequence[Label], progress: Progress = None) -> dict[str, str]:
    """``{label name: description}`` for every label, from the cache or written by ``loaded`` (a causal LM)."""
    from llm_backend.prompts.generation import generate_texts

    path = _cache_file(loaded)
    try:
        cached: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        cached = {}
    todo = list(dict.fromkeys(l.phrase for l in labels if l.phrase not in cached))
    if todo:
        answers = generate_texts(loaded, [_prompt(loaded, p) for p in todo], max_new_tokens=MAX_NEW_TOKENS,
                                 batch_size=16, progress=progress)
        cached.update({p: _clean(a) for p, a in zip(todo, answers)})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached, ensure_ascii=False, indent=1), encoding="utf-8")
            tmp.replace(path)
        except OSError:  # a read-only cache only costs the next run the generation
            pass
    return {l.name: cached.get(l.phrase, "") for l in labels}
