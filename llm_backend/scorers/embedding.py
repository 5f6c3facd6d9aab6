"""Embedding similarity: the cheapest zero-shot method, and the default.

A text is scored against a label by the cosine between the text's sentence embedding and the label's embedding. A
bare label name ("Sports") embeds differently from a sentence about sports, so each label is first written into one
or more *hypothesis templates* ("This text is about {label}.") and the resulting vectors are averaged with the
label's description and extra phrasings. Averaging several generic phrasings smooths out the quirks of any single
wording without tuning to a data set.

Text embeddings come from :func:`llm_backend.models.embedding_cache.embed_texts`, so editing the label set re-encodes only
the handful of label sentences, never the corpus.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from llm_backend.core.errors import TemplateError
from llm_backend.core.progress import Progress, report
from llm_backend.data.labels import Label
from llm_backend.models.embedding_cache import embed_texts
from llm_backend.models.loaded import LoadedModel

DEFAULT_TEMPLATE = "This text is about {label}."
#: Generic wordings averaged by the "several templates" setting; none mentions a domain or a data set.
GENERIC_TEMPLATES: tuple[str, ...] = (
    "This text is about {label}.",
    "{label}",
    "This is an example of {label}.",
    "The topic of this text is {label}.",
)


def check_template(template: str) -> str:
    """A template must place the label somewhere; anything else would score every label identically."""
    if not isinstance(template, str) or not template.strip():
        raise TemplateError("The hypothesis template is empty. Write a sentence containing {label}, e.g. "
                            f"'{DEFAULT_TEMPLATE}'.")
    if "{label}" not in template:
        raise TemplateError(f"The template '{template}' has no {{label}} placeholder, so every label would get the "
                            f"same sentence. Write it like '{DEFAULT_TEMPLATE}'.")
    try:
        template.format(label="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(f"The template '{template}' has a placeholder other than {{label}} ({exc}). Use only "
                            "{label}; write literal braces as {{ and }}.") from None
    return template


def normalise_templates(templates: str | Sequence[str] | None) -> list[str]:
    """One template, several (one per line or a list), or None for the default; each checked."""
    if templates is None:
        return [DEFAULT_TEMPLATE]
    if isinstance(templates, str):
        templates = [t for t in templates.splitlines() if t.strip()] or [templates]
    out = [check_template(t.strip()) for t in templates if t is not None]
    if not out:
        raise TemplateError(f"No hypothesis template given. Use e.g. '{DEFAULT_TEMPLATE}'.")
    return list(dict.fromkeys(out))


def label_sentences(label: Label, templates: Sequence[str], use_description: bool = True) -> list[str]:
    """Every sentence whose embedding stands for ``label``: each phrasing in each template, plus the description."""
    sentences = [t.format(label=phrase) for phrase in label.texts() for t in templates]
    if use_description and label.description.strip():
        sentences.append(label.description.strip())
    return list(dict.fromkeys(sentences))


#: Default number of prototype-refinement passes (see :func:`refine_label_vectors`).
DEFAULT_REFINE = 1


def refine_label_vectors(text_vecs: np.ndarray, label_vecs: np.ndarray, iterations: int = DEFAULT_REFINE,
                         top_fraction: float = 0.2, weight: float = 0.5) -> np.ndarray:
    """Pull each label vector toward the texts it most confidently claims (transductive prototype refinement).

    A label phrase ("Business") sits in a different part of embedding space than the texts that belong to it (news
    stories about companies). Each pass assigns texts with corpus-centred scores, takes the ``top_fraction`` of each
    label's texts with the largest margin over the runner-up, and mixes their centroid into the label vector with
    ``1 - weight``. Only the most confident texts move a label, so a wrong early assignment has little pull. Measured
    on five data sets with one setting (see docs/zero-shot.md), it helped on every one; it makes a text's scores
    depend on the rest of the corpus, which is why it is an option and is skipped on tiny inputs.
    """
    n, k = text_vecs.shape[0], label_vecs.shape[0]
    if iterations <= 0 or n < 2 * k or k < 2:
        return label_vecs
    labels = label_vecs.astype(np.float32, copy=True)
    for _ in range(iterations):
        scores = text_vecs @ labels.T
        scores = scores - scores.mean(axis=0, keepdims=True)
        pred = scores.argmax(axis=1)
        runner_up = np.partition(scores, -2, axis=1)[:, -2]
        margin = scores[np.arange(n), pred] - runner_up
        updated = labels.copy()
        for j in range(k):
            idx = np.flatnonzero(pred == j)
            if idx.size == 0:
                continue
            top = idx[np.argsort(-margin[idx])[: max(1, int(np.ceil(top_fraction * idx.size)))]]
            centroid = text_vecs[top].mean(axis=0)
            mixed = weight * labels[j] + (1 - weight) * centroid / max(float(np.linalg.norm(centroid)), 1e-12)
            updated[j] = mixed / max(float(np.linalg.norm(mixed)), 1e-12)
        labels = updated
    return labels


def label_vectors(labels: Sequence[Label], templates: Sequence[str], encode: Callable[[list[str]], np.ndarray],
                  use_descriptions: bool = True) -> np.ndarray:
    """(n_labels, dim) unit vectors: the normalised mean of each label's sentence embeddings.

    ``encode`` is passed in so callers choose the cache policy: the scorer goes through the embedding cache, while a
    body being fine-tuned must encode afresh (its weights change under the same name).
    """
    per_label = [label_sentences(lab, templates, use_descriptions) for lab in labels]
    vecs = encode([s for sents in per_label for s in sents])
    out = np.zeros((len(labels), vecs.shape[1] if vecs.ndim == 2 else 0), dtype=np.float32)
    start = 0
    for i, sents in enumerate(per_label):
        mean = vecs[start : start + len(sents)].mean(axis=0)
        start += len(sents)
        norm = float(np.linalg.norm(mean))
        out[i] = mean / norm if norm > 0 else mean
    return out


class EmbeddingScorer:
    """Cosine between text and label embeddings (kind "similarity")."""

    name = "embedding"
    kind = "similarity"

    def __init__(self, loaded: LoadedModel, templates: str | Sequence[str] | None = None,
                 use_descriptions: bool = True, refine: int = DEFAULT_REFINE) -> None:
        self.loaded = loaded
        self.templates = normalise_templates(templates)
        self.use_descriptions = use_descriptions
        self.refine = max(0, int(refine))

    def label_embeddings(self, labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        """(n_labels, dim) unit vectors from the cached embedder (see :func:`label_vectors`)."""
        return label_vectors(labels, self.templates, lambda sents: embed_texts(self.loaded, sents, progress=progress),
                             self.use_descriptions)

    def text_embeddings(self, texts: Sequence[str], progress: Progress = None) -> np.ndarray:
        return embed_texts(self.loaded, list(texts), progress=progress)

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(labels)), dtype=np.float32)
        # The corpus dominates the work; label sentences are a few dozen encodes (hundreds for 500 labels).
        n_label_sents = sum(len(label_sentences(l, self.templates, self.use_descriptions)) for l in labels)
        total = len(texts) + n_label_sents

        def _texts(done: int, _t: int) -> None:
            report(progress, done, total)

        def _labels(done: int, _t: int) -> None:
            report(progress, len(texts) + done, total)

        text_vecs = self.text_embeddings(texts, progress=_texts)
        label_vecs = self.label_embeddings(labels, progress=_labels)
        label_vecs = refine_label_vectors(text_vecs, label_vecs, self.refine)
        report(progress, total, total)
        return text_vecs @ label_vecs.T
