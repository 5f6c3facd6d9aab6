"""What ``python -m llm_backend score`` and the zero-shot page use when the user does not choose: method and embedder.

Both were chosen on *dev* slices (AG News, Banking77, THUCNews, ECDT) and reported on held-out slices plus the
product-reviews sample (bench/zero_shot_options.py, docs/zero-shot.md):

* **method: self-training** (:mod:`llm_backend.scorers.self_training`). On every dev slice it beat the embedding
  defaults (refinement + centering) or tied; it falls back to those scores, with a note, on corpora too small to
  learn from (:func:`~llm_backend.scorers.self_training.enough_rows`).
* **embedder by language and corpus size.** Non-English texts get the multilingual embedder
  (:func:`llm_backend.data.language.recommended_embedder`). English texts get all-mpnet-base-v2 when the whole
  corpus is small enough to embed in seconds, otherwise MiniLM: mpnet took 5.7-6.5x MiniLM's time on the same texts
  (bench/results/zero_shot_embedder_speed.md, 480-670 characters per second on 2 shared CPU cores) and gained on intents and sentiment, lost a little on news topics.
  The rule is in characters (rows x mean length), which is what encoding time grows with; on a GPU the limit is
  far higher because encoding is no longer the slow part of a run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from llm_backend.core.errors import ModelError

#: The method used when none is chosen (CLI ``--method`` default, the page's preselected method).
DEFAULT_METHOD = "self-training"
#: The larger English embedder preferred for small corpora (when its part wheels are installed).
LARGE_EMBEDDER = "all-mpnet-base-v2"
#: Corpora up to this many characters get :data:`LARGE_EMBEDDER` on a CPU: about half a minute of mpnet encoding
#: on 2 shared CPU cores (5 s with MiniLM), e.g. 300 short requests or 80 news stories.
LARGE_EMBEDDER_MAX_CHARS_CPU = 20_000
#: ... and on a GPU, where mpnet encodes thousands of texts per second.
LARGE_EMBEDDER_MAX_CHARS_GPU = 5_000_000


@dataclass(frozen=True)
class EmbedderChoice:
    """The embedder the defaults pick for one corpus, and the reason shown to the user."""

    name: str
    reason: str


def corpus_chars(texts: Iterable[Any]) -> int:
    """Total characters of the texts (what encoding time grows with)."""
    return sum(len(t) if isinstance(t, str) else len(str(t)) for t in texts if t is not None)


def large_embedder_limit(device_kind: str | None = None) -> int:
    """Characters up to which :data:`LARGE_EMBEDDER` is the default on this device ("cuda" or anything else)."""
    if device_kind is None:
        from llm_backend.core.device import pick_device

        device_kind = pick_device().kind
    return LARGE_EMBEDDER_MAX_CHARS_GPU if device_kind == "cuda" else LARGE_EMBEDDER_MAX_CHARS_CPU


def zero_shot_embedder(n_chars: int, report: Any, registry: Any, device_kind: str | None = None) -> EmbedderChoice:
    """The default embedder for a zero-shot run over a corpus of ``n_chars`` characters in ``report``'s language.

    ``report`` is a :class:`llm_backend.data.language.LanguageReport`; ``registry`` a model registry (the large
    embedder is only chosen when it is registered and its weights are installed).
    """
    from llm_backend.data.language import recommended_embedder
    from llm_backend.models.registry import is_available_offline

    if report is not None and report.needs_multilingual:
        return EmbedderChoice(recommended_embedder(report), "the texts are not English")
    small = registry.default("embedder").name
    limit = large_embedder_limit(device_kind)
    if n_chars > limit:
        return EmbedderChoice(small, f"the corpus ({n_chars:,} characters) is above {limit:,} characters, where "
                                     f"{LARGE_EMBEDDER} would take much longer to embed")
    try:
        spec = registry.get(LARGE_EMBEDDER)
    except ModelError:  # not registered in this build
        return EmbedderChoice(small, f"{LARGE_EMBEDDER} is not registered")
    if not is_available_offline(spec):
        return EmbedderChoice(small, f"{LARGE_EMBEDDER} is not installed")
    return EmbedderChoice(spec.name, f"the corpus is small ({n_chars:,} characters, up to {limit:,}): the larger "
                                     "embedder is affordable and scored better on intents and sentiment")
