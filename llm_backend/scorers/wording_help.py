"""Label wording help: suggestions from the corpus and the LM, a check before proposing them, and what accepting changes.

One backend function (:func:`wording_help`) for the zero-shot page and ``python -m llm_backend suggest-labels``:

1. **Suggestions** for short or cryptic label names (:func:`~llm_backend.scorers.label_suggestions.is_cryptic`):
   the distinctive words of each label's most confident rows (c-TF-IDF,
   :mod:`llm_backend.scorers.label_suggestions`) and, on request, one sentence from the bundled instruct LM
   (:mod:`llm_backend.scorers.label_descriptions`), kept for a label only when it moves the label's vector closer to
   the label's own rows than to any other label's rows (:func:`gate`: SmolLM2-135M described "体育", sports, as
   food). On non-English texts the corpus words are shown, not offered: on the Chinese dev slices adding them
   lowered macro-F1 (THUCNews −3.1, ECDT −3.7 points with the default method).
1b. **Cut-short names are spelled out from the corpus** (``expand``, on by default): each word of a cryptic name
   that is the start of a corpus word is completed with the completion most common in the label's confident rows,
   then in the corpus (:func:`~llm_backend.scorers.label_suggestions.expand_abbreviation`: "car_arr" -> "card
   arrived", "Sci/Tec" -> "scientists and technologies"). Accepting makes the spelled-out phrase what the model
   reads instead of the name (the label's ``display``; predictions keep the name) and the words join it. On names
   cut to three letters a word (bench/label_wording_cryptic.py, new dev slices) the defaults fell from 0.632 to
   0.223 mean macro-F1; the proposal with spelling out and words brought them back to 0.463 (AG News 0.357 ->
   0.752, Banking77 0.160 -> 0.485; ECDT, Chinese texts with nothing to complete, unchanged), against 0.223 for the
   wording help without it; held-out, run once after the choice: 0.245 -> 0.452 (AG News +32.2, Banking77 +29.8
   points; readable names 0.689). On readable names the check proposed nothing that changed macro-F1. SmolLM2
   asked to spell out what the corpus could not was tried and dropped ("cal" -> "calorimetry"; ECDT dev −1.5).
2. **Accepting keeps the name.** The additions go into the label's description, averaged with the name's template
   sentence; a label the user described is left alone. Keeping them apart instead, as extra prototypes of the
   label (max of the cosines), extra self-training anchors or a second teacher, was tried in 24 variants
   (bench/label_prototypes.py): the one chosen on the dev slices gained +0.23 macro-F1 points on the held-out
   mean, within noise, so merging (the simpler way) stays.
3. **A label-free check decides whether to propose them** (no gold labels read): the run's method is run with the
   names and with the additions, and the additions are proposed only when *both* the silhouette of the predicted
   classes over the text embeddings (the classes become tighter clusters) and the mean top probability (the run
   is surer) rise (:func:`partition_signals`). Accepting every suggestion, as this project did before, lowered
   macro-F1 on most slices. On the dev slices (AG News, Banking77, THUCNews, ECDT; corpus words and LM sentences
   each added on their own: 8 cases, 1 that helped) "both rise" together with the language rule above held back
   every addition that lowered macro-F1 and let through the one that raised it (Banking77's words, +1.4). The
   silhouette alone would have let Banking77's LM sentences through (−2.0), the confidence alone (or "both rise"
   without the language rule) THUCNews's Chinese words (−3.1).
   Figures: bench/label_wording.py, bench/results/label_wording.md, docs/zero-shot.md.
4. **The effect of accepting**, measured on the user's own rows: how many rows change label (with examples), both
   signals before and after, and macro-F1 before and after only when the user has a gold column. The user may
   accept the additions even when the check does not advise it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from llm_backend.core.progress import Progress, report
from llm_backend.data.labels import Label
from llm_backend.scorers.label_suggestions import LabelSuggestion, suggest_label_wording

#: Weight of the suggestion's vector added to the name's vector before the gate compares margins.
SUGGESTION_WEIGHT = 1.0


@dataclass
class SuggestionCheck:
    """One label's suggestions and the gate's verdict on each."""

    name: str
    cryptic: bool
    phrases: list[str] = field(default_factory=list)  # from the corpus (c-TF-IDF of its confident rows)
    lm_description: str = ""  # from the LM ("" when not asked or it wrote nothing)
    accept_phrases: bool = False  # the words are offered: a short or cryptic name, English texts
    accept_lm: bool = False  # the LM sentence is offered: asked for, and it passed the margin gate
    margin_name: float = 0.0  # own-rows margin of the name alone ...
    margin_phrases: float = 0.0  # ... with the phrases added, and with the LM sentence added
    margin_lm: float = 0.0
    examples: list[str] = field(default_factory=list)
    expansion: str = ""  # the name's cut-short words spelled out from its rows ("" when nothing expands)
    accept_expansion: bool = False  # the expansion is offered: a cryptic name, asked for

    @property
    def phrase(self) -> str:
        """The label's phrase after accepting: the expansion when offered, else "" (the name's own phrase)."""
        return self.expansion if self.accept_expansion else ""

    @property
    def proposal(self) -> str:
        """The description that accepting would add ("" when nothing is offered for this label)."""
        parts = []
        if self.accept_phrases and self.phrases:
            parts.append(", ".join(self.phrases))
        if self.accept_lm and self.lm_description:
            parts.append(self.lm_description)
        return "; ".join(parts)


@dataclass
class WordingHelp:
    """Suggestions, the label set with the accepted ones, and the measured effect of accepting them."""

    checks: list[SuggestionCheck]
    candidate: list[Label]  # the label set with the suggestions added (names unchanged)
    n_rows: int
    changed_rows: int  # rows whose label changes when the candidate is accepted (the run's method)
    changed_examples: list[dict[str, Any]] = field(default_factory=list)  # a few of them: text, before, after
    macro_f1_before: float | None = None  # only with a gold column
    macro_f1_after: float | None = None
    notes: list[str] = field(default_factory=list)
    #: label-free signals of the predicted partition with the names and with the candidate: (silhouette of the
    #: predicted classes in embedding space, mean top probability); see :func:`partition_signals`
    signals_names: tuple[float, float] = (0.0, 0.0)
    signals_candidate: tuple[float, float] = (0.0, 0.0)
    names: list[Label] = field(default_factory=list)

    @property
    def recommended(self) -> bool:
        """Accepting is advised only when both label-free signals rise (no gold read): the classes the run
        predicts become tighter clusters of the texts *and* the run is surer of them. On the dev slices this
        separated the options that helped from those that hurt (docs/zero-shot.md)."""
        return bool(self.n_accepted) and all(a > b for a, b in zip(self.signals_candidate, self.signals_names))

    @property
    def proposed(self) -> list[Label]:
        """What the wording help proposes: the candidate when :attr:`recommended`, else the names unchanged."""
        return self.candidate if self.recommended else list(self.names)

    @property
    def n_accepted(self) -> int:
        return sum(1 for c in self.checks if c.proposal or c.phrase)

    def as_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able values (``suggest-labels --report-json``)."""
        from dataclasses import asdict

        return {"labels": [{**asdict(c), "proposal": c.proposal} for c in self.checks], "n_rows": self.n_rows,
                "changed_rows": self.changed_rows, "recommended": self.recommended,
                "signals_names": list(self.signals_names), "signals_candidate": list(self.signals_candidate),
                "changed_examples": self.changed_examples,
                "macro_f1_names": self.macro_f1_before, "macro_f1_accepted": self.macro_f1_after,
                "notes": self.notes}

    def table(self) -> list[dict[str, Any]]:
        """One row per label for display (plain strings; pages render them as text, never markdown)."""
        return [{"label": c.name, "spelled out": c.expansion, "words from its rows": ", ".join(c.phrases),
                 "LM description": c.lm_description,
                 "would add": "; ".join(p for p in (c.phrase and f"reads as {c.phrase!r}", c.proposal) if p)
                 or "(nothing)"} for c in self.checks]


def partition_signals(text_vecs: np.ndarray, pred: Sequence[str], probs: np.ndarray,
                      sample: int = 2000, seed: int = 0) -> tuple[float, float]:
    """(silhouette of the predicted classes over the text embeddings, cosine; mean top probability).

    Both need no gold labels. The silhouette (scikit-learn, on at most ``sample`` rows) is high when texts given the
    same label sit together and apart from the others; the mean top probability is how sure the run is.
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray([str(p) for p in pred])
    conf = float(np.mean(np.max(probs, axis=1))) if len(labels) else 0.0
    if len(set(labels.tolist())) < 2 or len(labels) < 3:
        return -1.0, conf
    n = min(sample, len(labels))
    sil = float(silhouette_score(np.asarray(text_vecs), labels, metric="cosine", sample_size=n, random_state=seed))
    return sil, conf


def own_rows_margin(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Per label: cosine to its own rows' centroid minus the largest cosine to another label's centroid."""
    sims = np.asarray(vectors) @ np.asarray(centroids).T
    k = sims.shape[0]
    own = sims[np.arange(k), np.arange(k)].copy()
    sims[np.arange(k), np.arange(k)] = -np.inf
    return own - (sims.max(axis=1) if k > 1 else 0.0)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)


def gate(names_vecs: np.ndarray, suggestion_vecs: np.ndarray, centroids: np.ndarray,
         weight: float = SUGGESTION_WEIGHT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accept, margin with the name alone, margin with the suggestion added) per label."""
    before = own_rows_margin(names_vecs, centroids)
    after = own_rows_margin(_unit(names_vecs + weight * suggestion_vecs), centroids)
    return after > before, before, after


def row_centroids(text_vecs: np.ndarray, label_vecs: np.ndarray) -> np.ndarray:
    """Unit centroid of the rows the refined, centred zero-shot pass assigns to each label (its vector if none)."""
    from llm_backend.scorers.embedding import refine_label_vectors

    refined = refine_label_vectors(text_vecs, label_vecs)
    s = text_vecs @ refined.T
    pred = (s - s.mean(axis=0, keepdims=True)).argmax(axis=1)
    cents = np.vstack([text_vecs[pred == j].mean(axis=0) if (pred == j).any() else label_vecs[j]
                       for j in range(label_vecs.shape[0])])
    return _unit(cents)


def with_accepted(labels: Sequence[Label], checks: Sequence[SuggestionCheck]) -> list[Label]:
    """The label set with each label's accepted suggestion added as its description (the name is kept; a label
    the user already described keeps the user's words)."""
    by = {c.name: c for c in checks}
    out = []
    for lab in labels:
        c = by.get(lab.name)
        if c and c.phrase and not lab.description.strip() and not lab.display.strip():
            lab = replace(lab, display=c.phrase)  # the spelled-out name replaces the cut-short one in templates
        if c and c.proposal and not lab.description.strip():
            lab = replace(lab, description=f"{lab.phrase}: {c.proposal}")
        out.append(lab)
    return out


def check_suggestions(text_vecs: np.ndarray, labels: Sequence[Label], label_vecs: np.ndarray,
                      suggestions: Sequence[LabelSuggestion], lm_text: dict[str, str], encode: Any,
                      *, only_cryptic: bool = True, propose_phrases: bool = True,
                      accept_lm: bool = False, expand: bool = True) -> list[SuggestionCheck]:
    """Decide per label what to propose (module docstring, point 1); the margins are computed for every
    suggestion so they can be shown. ``encode`` embeds a list of strings with the embedder of ``text_vecs``.
    With ``expand``, a cryptic name's spelled-out form (:func:`~llm_backend.scorers.label_suggestions.
    expand_abbreviation`) is offered and the other additions are worded around it."""
    cents = row_centroids(text_vecs, label_vecs)
    offered = [bool(expand and s.expansion and (s.cryptic or not only_cryptic) and not l.display.strip()
                    and not l.description.strip()) for l, s in zip(labels, suggestions)]
    phrases = [s.expansion if o else l.phrase for l, s, o in zip(labels, suggestions, offered)]
    phr = [f"{p}: {s.description}" if s.description else p for p, s in zip(phrases, suggestions)]
    lms = [lm_text.get(l.name) or p for l, p in zip(labels, phrases)]
    vecs = _unit(np.asarray(encode(phr + lms), dtype=np.float64))
    _, before, after_p = gate(label_vecs, vecs[:len(labels)], cents)
    ok_l, _, after_l = gate(label_vecs, vecs[len(labels):], cents)
    out = []
    for j, (lab, sug) in enumerate(zip(labels, suggestions)):
        allowed = sug.cryptic or not only_cryptic
        lm = lm_text.get(lab.name, "")
        out.append(SuggestionCheck(lab.name, sug.cryptic, list(sug.phrases), lm,
                                   bool(allowed and propose_phrases and sug.phrases),
                                   bool(allowed and accept_lm and lm and ok_l[j]),
                                   float(before[j]), float(after_p[j]), float(after_l[j]), list(sug.examples),
                                   sug.expansion, offered[j]))
    return out


def embedding_scorer_for(scorer: Any, registry: Any, get_model: Any) -> Any:
    """The run's scorer when it is embedding-based (its embedder, templates and method measure the effect), else
    the default method (self-training) on the registry's default embedder: the LM, NLI and trained scorers have no
    label vectors to add words to."""
    from llm_backend.scorers.embedding import EmbeddingScorer
    from llm_backend.scorers.self_training import SelfTrainingScorer

    if isinstance(scorer, EmbeddingScorer):
        return scorer
    return SelfTrainingScorer(get_model(registry.default("embedder")))


def wording_help(scorer: Any, texts: Sequence[str], labels: Sequence[Label], *, lm: Any = None,
                 gold: Sequence[object] | None = None, only_cryptic: bool = True, accept_lm: bool = False,
                 n_terms: int = 5, expand: bool = True, words: bool = True,
                 calibration: str | None = None, progress: Progress = None) -> WordingHelp:
    """Suggestions for ``labels`` from ``texts`` (and the LM ``lm`` when given), the gate, and the effect.

    ``scorer`` is the run's embedding scorer (:class:`~llm_backend.scorers.embedding.EmbeddingScorer` or
    :class:`~llm_backend.scorers.self_training.SelfTrainingScorer`): its embedder and templates make the label
    vectors, and the effect is measured by running it with the names and with the proposal.
    """
    from llm_backend.data.language import detect_language
    from llm_backend.models.embedding_cache import embed_texts
    from llm_backend.scorers.label_descriptions import lm_descriptions
    from llm_backend.scorers.zero_shot import DEFAULT_CALIBRATION, prepare_labels, run_scorer

    labels = prepare_labels(labels)
    texts = [str(t) for t in texts]
    notes: list[str] = []
    report(progress, 0, 4)
    text_vecs = scorer.text_embeddings(texts)
    label_vecs = scorer.label_embeddings(labels)
    suggestions = suggest_label_wording(texts, text_vecs, labels, label_vecs, n_terms=n_terms)
    report(progress, 1, 4)
    lm_text: dict[str, str] = {}
    if lm is not None:
        wanted = [replace(l, display=s.expansion) if expand and s.expansion and not l.display.strip() else l
                  for l, s in zip(labels, suggestions) if s.cryptic or not only_cryptic]  # described as spelled out
        lm_text = lm_descriptions(lm, wanted) if wanted else {}
    report(progress, 2, 4)
    english = not detect_language(texts).needs_multilingual
    if not english:
        notes.append("The texts are not English: the words from each label's rows are shown but not proposed (on "
                     "the Chinese dev sets adding them lowered macro-F1).")
    checks = check_suggestions(np.asarray(text_vecs), labels, np.asarray(label_vecs), suggestions, lm_text,
                               lambda sents: embed_texts(scorer.loaded, list(sents)), only_cryptic=only_cryptic,
                               propose_phrases=english and words, accept_lm=accept_lm, expand=expand)
    candidate = with_accepted(labels, checks)
    cal = calibration or DEFAULT_CALIBRATION
    before = run_scorer(scorer, texts, labels, calibration=cal)
    changed, after = 0, before
    if candidate != list(labels):
        after = run_scorer(scorer, texts, candidate, calibration=cal)
    report(progress, 3, 4)
    diff = [i for i, (a, b) in enumerate(zip(before.pred, after.pred)) if a != b]
    changed = len(diff)
    examples = [{"row": i, "text": texts[i][:200], "names": before.pred[i], "accepted": after.pred[i]}
                for i in diff[:20]]
    f1_b = f1_a = None
    if gold is not None:
        f1_b = float(before.evaluate(gold)["macro_f1"])
        f1_a = float(after.evaluate(gold)["macro_f1"])
    sig_b = partition_signals(text_vecs, before.pred, before.probs)
    sig_a = partition_signals(text_vecs, after.pred, after.probs) if after is not before else sig_b
    out = WordingHelp(checks, candidate, len(texts), changed, examples, f1_b, f1_a, notes, sig_b, sig_a, list(labels))
    if not out.n_accepted:
        notes.append("No suggestion to add: keeping the label names as they are.")
    elif not out.recommended:
        notes.append("Not proposed: with the suggestions added, the predicted classes would not be both tighter "
                     "clusters of the texts and predicted more surely, the check that separated helpful from "
                     "harmful suggestions on the benchmark's dev slices. You can still accept them.")
    report(progress, 4, 4)
    return out
