"""Tag sentences with a trained model and evaluate it: the calls the page, the CLI and the bench share."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from llm_backend.core.errors import DataError, ModelError
from llm_backend.core.progress import Progress

from .conll import TaggedData, spans, to_conll
from .evaluate import check_tag_sets, evaluate_tags
from .model import NerModel, load_ner


@dataclass
class TaggingResult:
    tokens: list[list[str]]
    tags: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def entities(self) -> pd.DataFrame:
        """One row per predicted entity: sentence, type, text, first and last token (1-based)."""
        rows = [{"sentence": i + 1, "type": kind, "text": " ".join(toks[s:e]), "start": s + 1, "end": e}
                for i, (toks, tags) in enumerate(zip(self.tokens, self.tags)) for kind, s, e in spans(tags)]
        return pd.DataFrame(rows, columns=["sentence", "type", "text", "start", "end"])

    def to_conll(self) -> str:
        return to_conll(self.tokens, self.tags)

    def to_jsonl(self) -> str:
        import json

        return "".join(json.dumps({"tokens": t, "tags": g}, ensure_ascii=False) + "\n"
                       for t, g in zip(self.tokens, self.tags))


def _split_note(n_split: int, model: NerModel) -> list[str]:
    if not n_split:
        return []
    return [f"{n_split} sentence(s) were longer than the model's limit of {model.max_length} sub-word pieces: each "
            "was split into consecutive pieces at word boundaries and tagged piece by piece (every token keeps a "
            "tag; an entity cut by a split may be tagged as two)."]


def tag_sentences(model: NerModel, data: TaggedData | Sequence[Sequence[str]], progress: Progress = None,
                  should_stop: Any = None) -> TaggingResult:
    sentences = [list(s.tokens) for s in data.sentences] if isinstance(data, TaggedData) else [list(s) for s in data]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise DataError("There are no tokens to tag.")
    tags, n_split = model.tag(sentences, progress=progress, should_stop=should_stop)
    notes = list(data.notes) if isinstance(data, TaggedData) else []
    return TaggingResult(sentences, tags, notes + _split_note(n_split, model))


def evaluate_model(model: NerModel, data: TaggedData, progress: Progress = None,
                   error_limit: int = 200) -> dict[str, Any]:
    """Tag ``data`` and score it against its gold tags (see :func:`llm_backend.ner.evaluate.evaluate_tags`)."""
    if not data.tagged:
        raise DataError(f"{data.source or 'The data'} has no gold tags to evaluate against (one 'token TAG' per line).")
    notes = check_tag_sets(data.entity_types(), model.entity_types())
    tagged = tag_sentences(model, data, progress)
    gold = [s.tags for s in data.sentences if s.tokens]
    metrics = evaluate_tags(gold, tagged.tags, tagged.tokens, error_limit)
    metrics["notes"] = notes + tagged.notes
    metrics["pred"] = tagged.tags
    return metrics


def load_ner_model(name_or_path: str) -> NerModel:
    """A saved tagger by registry name or folder (what the CLI's --model means); cached by the model cache."""
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry

    registry = ModelRegistry()
    try:
        spec = registry.get(name_or_path)
    except ModelError:
        if not Path(name_or_path).expanduser().is_dir():
            raise ModelError(f"'{name_or_path}' is neither a saved named-entity model nor a folder.") from None
        return load_ner(Path(name_or_path).expanduser())
    if spec.role != "ner":
        raise ModelError(f"'{spec.name}' is a {spec.role}, not a named-entity model.")
    return get_model(spec).model
