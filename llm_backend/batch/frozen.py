"""Frozen classifiers: a label set, its fitted state and its model reference, saved so any row scores on its own.

A zero-shot run learns two things from the corpus it is given: prototype refinement moves the label vectors toward
the texts they claim, and prior centering subtracts each label's mean score over that corpus. Both make a row's
prediction depend on the other rows, so scoring an archive in slices with ``score`` gives different answers per
slice. Freezing a run stores the *results* of that fitting (final label vectors, per-label calibration offsets) next
to a reference to the model, the decision rule and the label set; scoring with the frozen classifier then applies
fixed arithmetic per row, so any split of the data gives the same predictions.

Folder layout (safe formats only, nothing is unpickled)::

    classifier.json        format, labels, decision rule, components (method, model reference, kind, calibration),
                           where it came from (source) and a content fingerprint
    tensors.safetensors    per component: label vectors (embedding method; with a bias for a self-training head),
                           calibration offsets, an encoder probe

:func:`load_classifier` treats the folder as hostile: sizes, types, shapes and finiteness are checked, and the
fingerprint must match the content, so a damaged or edited artifact fails with a message instead of scoring wrong.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from llm_backend.core.config import get_settings
from llm_backend.core.errors import ModelError, UserError
from llm_backend.core.model_folders import publish_folder
from llm_backend.core.progress import Progress, report
from llm_backend.data.labels import Label, make_labels
from llm_backend.models.registry import ROLES, ModelSpec, resolve_location

FORMAT = "zero-shot-studio/frozen-classifier"
#: Newest format this app reads and writes. Version 2 added prompt-template components ("prompt"); artifacts without
#: one are still written as version 1, so older apps keep reading them.
VERSION = 2
CONFIG_FILE = "classifier.json"
TENSORS_FILE = "tensors.safetensors"
#: Limits for loading an artifact someone sent you: a real one is a few KB of JSON and k x 384 floats.
MAX_CONFIG_BYTES = 2 * 1024 * 1024
MAX_TENSOR_BYTES = 256 * 1024 * 1024
MAX_LABELS = 2000
MAX_COMPONENTS = 8
MAX_DIM = 16384
METHODS = ("embedding", "lm", "nli", "trained", "prompt")
KINDS = ("similarity", "logprob", "logit", "nli_log_odds")
SOURCES = ("package", "folder", "hub", "trained")
#: A fixed sentence embedded at freeze time; a worker whose encoder gives a different vector has another model.
PROBE_TEXT = "A short sentence used to check that the same encoder is loaded."
#: Cosine below which the worker's encoder is called a different model. A quantised copy of the same model (an
#: int8 ONNX path) stays far above this; two different sentence encoders land far below.
PROBE_MIN_COSINE = 0.9
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class ClassifierError(UserError):
    """A frozen classifier cannot be found, read, trusted or used."""


@dataclass
class Component:
    """One scorer inside a frozen classifier, with its fitted state.

    ``raw`` scores are what the live scorer returns for a text; ``offsets`` are subtracted from them (calibration
    learnt on the prototyping corpus); ``kind`` says how calibrated scores become probabilities.
    """

    method: str
    model: dict[str, Any]
    kind: str
    calibration: str
    offsets: np.ndarray
    templates: list[str] = field(default_factory=list)
    use_descriptions: bool = True
    label_vectors: np.ndarray | None = None
    probe: np.ndarray | None = None
    #: Prompt-template components: template, verbalizer, demonstrations, answer scoring (see ``frozen_prompt``).
    prompt: dict[str, Any] | None = None
    #: Embedding components with a fitted linear head (self-training): raw scores are
    #: ``log(clip(softmax(embedding @ label_vectors.T + bias), 1e-9))`` instead of cosine similarities.
    bias: np.ndarray | None = None

    @property
    def spec(self) -> ModelSpec:
        m = self.model
        return ModelSpec(m["name"], m["role"], m["source"], m["location"], m.get("description", ""),
                         m.get("gguf_file"))


@dataclass
class FrozenClassifier:
    """Everything needed to label one text, with no reference to any other text."""

    labels: list[Label]
    components: list[Component]
    multi_label: bool = False
    threshold: float = 0.5
    none_below: float | None = None
    weights: list[float] | None = None  # ensemble weights (None = equal)
    max_chars: int = 4000
    source: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    created: str = ""
    fingerprint: str = ""

    @property
    def label_names(self) -> list[str]:
        return [l.name for l in self.labels]

    @property
    def is_ensemble(self) -> bool:
        return len(self.components) > 1

    def describe(self) -> str:
        methods = "+".join(c.method for c in self.components)
        models = ", ".join(c.model["name"] for c in self.components)
        mode = f"multi-label ≥{self.threshold:g}" if self.multi_label else "single-label"
        floor = f", '(none)' below {self.none_below:g}" if self.none_below and not self.multi_label else ""
        return f"{self.name or 'classifier'}: {methods} · {models} · {len(self.labels)} labels · {mode}{floor}"

    def to_config(self) -> dict[str, Any]:
        comps = []
        for i, c in enumerate(self.components):
            comps.append({"method": c.method, "model": dict(c.model), "kind": c.kind, "calibration": c.calibration,
                          "templates": list(c.templates), "use_descriptions": bool(c.use_descriptions),
                          "tensors": _tensor_names(i, c)})
            if c.prompt is not None:
                comps[-1]["prompt"] = c.prompt
        version = 2 if any(c.prompt is not None for c in self.components) else 1
        return {
            "format": FORMAT, "version": version, "name": self.name, "created": self.created,
            "labels": [{"name": l.name, "description": l.description, "phrasings": list(l.phrasings),
                        "display": l.display} for l in self.labels],
            "decision": {"multi_label": bool(self.multi_label), "threshold": float(self.threshold),
                         "none_below": None if self.none_below is None else float(self.none_below)},
            "weights": None if self.weights is None else [float(w) for w in self.weights],
            "max_chars": int(self.max_chars),
            "components": comps,
            "source": self.source,
        }

    def tensors(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i, c in enumerate(self.components):
            out[f"c{i}.offsets"] = np.ascontiguousarray(c.offsets, dtype=np.float64)
            if c.label_vectors is not None:
                out[f"c{i}.label_vectors"] = np.ascontiguousarray(c.label_vectors, dtype=np.float32)
            if c.probe is not None:
                out[f"c{i}.probe"] = np.ascontiguousarray(c.probe, dtype=np.float32)
            if c.bias is not None:
                out[f"c{i}.bias"] = np.ascontiguousarray(c.bias, dtype=np.float64)
        return out


def _tensor_names(i: int, c: Component) -> list[str]:
    names = [f"c{i}.offsets"]
    if c.label_vectors is not None:
        names.append(f"c{i}.label_vectors")
    if c.probe is not None:
        names.append(f"c{i}.probe")
    if c.bias is not None:
        names.append(f"c{i}.bias")
    return names


def content_fingerprint(config: dict[str, Any], tensors: dict[str, np.ndarray]) -> str:
    """sha256 over the canonical config (without its own fingerprint) and every tensor's name, dtype, shape, bytes."""
    h = hashlib.sha256()
    body = {k: v for k, v in config.items() if k != "fingerprint"}
    h.update(json.dumps(body, sort_keys=True, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def corpus_fingerprint(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(str(t).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------------- saving


def default_classifiers_dir() -> Path:
    """Where the pages put exported classifiers: ``<data dir>/classifiers``."""
    return get_settings().data_dir / "classifiers"


def check_classifier_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME_RE.match(name) or ".." in name:
        raise ClassifierError(f"'{name}' is not a usable classifier name: use letters, digits, '.', '_' or '-' "
                              "(up to 80 characters, starting with a letter or digit).")
    return name


def save_classifier(clf: FrozenClassifier, out: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write the artifact into ``out`` atomically (a temporary sibling folder renamed into place)."""
    from safetensors.numpy import save_file

    target = Path(out).expanduser()
    if target.exists() and not (target.is_dir() and (not any(target.iterdir()) or overwrite)):
        raise ClassifierError(f"'{target.name}' already exists and is not empty. Choose another --out folder.")
    if target.exists() and overwrite and any(target.iterdir()) and not (target / CONFIG_FILE).is_file():
        raise ClassifierError(f"'{target.name}' holds other files; refusing to overwrite a folder that is not a "
                              "frozen classifier.")
    if not clf.created:
        clf.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    clf.name = clf.name or target.name
    tensors = clf.tensors()
    config = clf.to_config()
    clf.fingerprint = content_fingerprint(config, tensors)
    config["fingerprint"] = clf.fingerprint
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=parent))
    except OSError as exc:
        raise ClassifierError(f"Cannot write into {parent.name} ({exc.strerror or exc}).") from None
    try:
        save_file(tensors, str(tmp / TENSORS_FILE), metadata={"format": FORMAT})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False, allow_nan=False),
                                       encoding="utf-8")
        publish_folder(tmp, target)  # an overwrite moves the old one aside first: a failure keeps one complete copy
    except OSError as exc:
        raise ClassifierError(f"Saving the classifier failed ({exc.strerror or exc}); nothing was left behind.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------------------------------------------------ loading


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise ClassifierError(f"The classifier file is not valid: {what}.")


def _str(value: Any, what: str, limit: int = 2000, allow_empty: bool = True) -> str:
    _need(isinstance(value, str) and len(value) <= limit and (allow_empty or bool(value.strip())),
          f"{what} must be a string of at most {limit} characters")
    return value


def _float(value: Any, what: str, lo: float, hi: float) -> float:
    _need(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
          and lo <= float(value) <= hi, f"{what} must be a number between {lo:g} and {hi:g}")
    return float(value)


def _parse_model(m: Any) -> dict[str, Any]:
    _need(isinstance(m, dict), "a component's model must be an object")
    out = {"name": _str(m.get("name"), "model name", 300, False), "role": m.get("role"),
           "source": m.get("source"), "location": _str(m.get("location"), "model location", 4096, False),
           "description": _str(m.get("description", ""), "model description"),
           "gguf_file": m.get("gguf_file")}
    _need(out["role"] in ROLES, f"model role must be one of {', '.join(ROLES)}")
    _need(out["source"] in SOURCES, f"model source must be one of {', '.join(SOURCES)}")
    _need(out["gguf_file"] is None or (isinstance(out["gguf_file"], str) and "/" not in out["gguf_file"]
                                       and len(out["gguf_file"]) < 300), "gguf_file must be a file name")
    for key in ("package_version",):
        if key in m:
            out[key] = _str(m[key], key, 100)
    return out


def _find_folder(ref: str | os.PathLike[str]) -> Path:
    text = str(ref).strip()
    if not text:
        raise ClassifierError("Name a classifier: a folder written by `freeze` (or the name of an exported one).")
    path = Path(text).expanduser()
    if not path.exists() and _NAME_RE.match(text):
        named = default_classifiers_dir() / text
        if named.exists():
            path = named
    if not path.exists():
        raise ClassifierError(f"Unknown classifier '{text}': no such folder, and no exported classifier of that "
                              f"name in {default_classifiers_dir().name}/. Create one with `freeze --out`.")
    if not path.is_dir() or not (path / CONFIG_FILE).is_file():
        raise ClassifierError(f"'{path.name}' is not a frozen classifier (no {CONFIG_FILE}). Create one with "
                              "`python -m llm_backend freeze --out DIR`.")
    return path


def load_classifier(ref: str | os.PathLike[str]) -> FrozenClassifier:
    """Read and validate a frozen classifier folder (or the name of one under ``<data dir>/classifiers``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = _find_folder(ref)
    cfg_path, ten_path = folder / CONFIG_FILE, folder / TENSORS_FILE
    for p, limit in ((cfg_path, MAX_CONFIG_BYTES), (ten_path, MAX_TENSOR_BYTES)):
        _need(p.is_file() and not p.is_symlink(), f"{p.name} is missing or is a link")
        _need(p.stat().st_size <= limit, f"{p.name} is larger than {limit // 1024**2} MB")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"),
                            parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"{c} is not allowed")))
    except (OSError, ValueError, RecursionError) as exc:
        raise ClassifierError(f"{CONFIG_FILE} of '{folder.name}' cannot be read: {str(exc)[:200]}") from None
    _need(isinstance(config, dict), "the top level must be an object")
    _need(config.get("format") == FORMAT, f"format must be '{FORMAT}'")
    version = config.get("version")
    _need(isinstance(version, int) and not isinstance(version, bool), "version must be an integer")
    if version > VERSION:
        raise ClassifierError(f"'{folder.name}' was written by a newer version of the app (format {version}, this "
                              f"app reads {VERSION}). Update the app.")
    try:
        tensors = load_file(str(ten_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ClassifierError(f"{TENSORS_FILE} of '{folder.name}' cannot be read: {str(exc)[:200]}") from None
    labels_raw = config.get("labels")
    _need(isinstance(labels_raw, list) and 1 <= len(labels_raw) <= MAX_LABELS, f"labels must be a list of 1 to "
          f"{MAX_LABELS} entries")
    items = []
    for lab in labels_raw:
        _need(isinstance(lab, dict), "each label must be an object")
        phr = lab.get("phrasings") or []
        _need(isinstance(phr, list) and len(phr) <= 50, "phrasings must be a list")
        items.append({"name": _str(lab.get("name"), "label name", 200, False),
                      "description": _str(lab.get("description", ""), "label description"),
                      "phrasings": [_str(p, "phrasing", 300) for p in phr],
                      "display": _str(lab.get("display", ""), "label display", 300)})
    try:
        labels = make_labels(items)
    except UserError as exc:
        raise ClassifierError(f"The classifier's labels are not valid: {exc}") from None
    k = len(labels)
    dec = config.get("decision")
    _need(isinstance(dec, dict), "decision must be an object")
    multi = dec.get("multi_label")
    _need(isinstance(multi, bool), "decision.multi_label must be true or false")
    threshold = _float(dec.get("threshold", 0.5), "decision.threshold", 0.0, 1.0)
    none_below = dec.get("none_below")
    none_below = None if none_below is None else _float(none_below, "decision.none_below", 0.0, 1.0)
    comps_raw = config.get("components")
    _need(isinstance(comps_raw, list) and 1 <= len(comps_raw) <= MAX_COMPONENTS,
          f"components must be a list of 1 to {MAX_COMPONENTS} entries")
    weights = config.get("weights")
    if weights is not None:
        _need(isinstance(weights, list) and len(weights) == len(comps_raw), "weights must be one number per component")
        weights = [_float(w, "weight", 0.0, 1e6) for w in weights]
        _need(sum(weights) > 0, "weights must not all be zero")
    expected: set[str] = set()
    comps: list[Component] = []
    for i, c in enumerate(comps_raw):
        _need(isinstance(c, dict), "each component must be an object")
        method, kind = c.get("method"), c.get("kind")
        _need(method in METHODS, f"component method must be one of {', '.join(METHODS)}")
        _need(kind in KINDS, f"component kind must be one of {', '.join(KINDS)}")
        _need(kind != "nli_log_odds" or method == "nli", "nli_log_odds is only for the nli method")
        cal = _str(c.get("calibration", "none"), "calibration", 40)
        templates = c.get("templates") or []
        _need(isinstance(templates, list) and len(templates) <= 50, "templates must be a list")
        templates = [_str(t, "template", 1000) for t in templates]
        use_desc = c.get("use_descriptions", True)
        _need(isinstance(use_desc, bool), "use_descriptions must be true or false")
        offsets = tensors.get(f"c{i}.offsets")
        _need(offsets is not None and offsets.shape == (k,) and offsets.dtype in (np.float32, np.float64),
              f"c{i}.offsets must be {k} floats")
        expected.add(f"c{i}.offsets")
        vecs = tensors.get(f"c{i}.label_vectors")
        probe = tensors.get(f"c{i}.probe")
        bias = tensors.get(f"c{i}.bias")
        if method == "embedding":
            _need(vecs is not None and vecs.ndim == 2 and vecs.shape[0] == k and 1 <= vecs.shape[1] <= MAX_DIM
                  and vecs.dtype == np.float32, f"c{i}.label_vectors must be a float32 matrix with {k} rows")
            expected.add(f"c{i}.label_vectors")
            if probe is not None:
                _need(probe.shape == (vecs.shape[1],) and probe.dtype == np.float32,
                      f"c{i}.probe must match the label vectors' width")
                expected.add(f"c{i}.probe")
            # A fitted head (self-training) has a bias and log-probability scores; plain label vectors have neither.
            _need((bias is not None) == (kind == "logprob") and kind in ("similarity", "logprob"),
                  f"component {i}: an embedding component is 'similarity' without a bias or 'logprob' with one")
            if bias is not None:
                _need(bias.shape == (k,) and bias.dtype == np.float64, f"c{i}.bias must be {k} float64 values")
                expected.add(f"c{i}.bias")
        else:
            _need(vecs is None and probe is None and bias is None,
                  f"only embedding components carry vectors (component {i})")
        for arr in (offsets, vecs, probe, bias):
            _need(arr is None or bool(np.isfinite(arr).all()), f"component {i} holds NaN or infinite values")
        model = _parse_model(c.get("model"))
        prompt = None
        if method == "prompt":
            from llm_backend.batch.frozen_prompt import parse_prompt

            _need(kind == "logprob" and model["role"] == "causal_lm", "a prompt component scores with a causal LM")
            try:
                prompt = parse_prompt(c.get("prompt"), [l.name for l in labels])
            except UserError as exc:
                raise ClassifierError(str(exc)) from None
        else:
            _need("prompt" not in c, f"only prompt components carry a prompt (component {i})")
        comps.append(Component(method, model, kind, cal, offsets.astype(np.float64),
                               templates, use_desc, vecs, probe, prompt, bias))
    _need(set(tensors) == expected, f"{TENSORS_FILE} holds unexpected tensors: "
          f"{', '.join(sorted(set(tensors) - expected))[:200]}")
    source = config.get("source") or {}
    _need(isinstance(source, dict), "source must be an object")
    max_chars = config.get("max_chars", 4000)
    _need(isinstance(max_chars, int) and not isinstance(max_chars, bool) and 0 <= max_chars <= 10_000_000,
          "max_chars must be a non-negative integer")
    fp = config.get("fingerprint")
    _need(isinstance(fp, str) and re.fullmatch(r"[0-9a-f]{64}", fp or "") is not None, "fingerprint is missing")
    if content_fingerprint(config, tensors) != fp:
        raise ClassifierError(f"'{folder.name}' was modified after it was frozen (its fingerprint does not match "
                              "its content). Freeze it again.")
    return FrozenClassifier(labels, comps, multi, threshold, none_below, weights, max_chars, source,
                            _str(config.get("name", ""), "name", 200), _str(config.get("created", ""), "created", 64),
                            fp)


# ------------------------------------------------------------------------------------------------------ scoring


def check_models(clf: FrozenClassifier) -> None:
    """A clear error now, naming the classifier, when one of its models is not on this machine."""
    for c in clf.components:
        try:
            resolve_location(c.spec)
        except ModelError as exc:
            raise ClassifierError(f"Classifier '{clf.name}' needs the model '{c.model['name']}', which is missing on "
                                  f"this machine: {exc}") from None


class ClassifierRunner:
    """A frozen classifier with its models loaded: what each batch worker holds once.

    ``cache_entries`` bounds a private embedding cache per runner: archives repeat texts (templates, "N/A"), and a
    bounded cache keeps memory flat however many rows pass through (0 = no cache, -1 = the process-wide cache the
    pages and ``score`` fill).
    """

    def __init__(self, clf: FrozenClassifier, cache_entries: int = 0, check_probe: bool = True,
                 loaded: Sequence[Any] | None = None) -> None:
        from llm_backend.models.embedding_cache import CACHE, EmbeddingCache
        from llm_backend.models.loading import get_model
        from llm_backend.scorers.factory import make_scorer

        self.clf = clf
        if loaded is None:
            check_models(clf)
        self.cache = CACHE if cache_entries < 0 else EmbeddingCache(max_entries=max(0, int(cache_entries)))
        self.loaded = []
        self.scorers: list[Any] = []
        for ci, c in enumerate(clf.components):
            if loaded is not None:  # models the caller holds already (the freeze's own check)
                model = loaded[ci]
            else:
                try:
                    model = get_model(c.spec)
                except ModelError as exc:
                    raise ClassifierError(f"Classifier '{clf.name}' cannot load its model '{c.model['name']}': "
                                          f"{exc}") from None
            self.loaded.append(model)
            loaded_model = model
            if c.method == "prompt":
                from llm_backend.batch.frozen_prompt import PromptScorer

                self.scorers.append(PromptScorer(loaded_model, c.prompt or {}))
            elif c.method == "embedding":
                self.scorers.append(None)
                if check_probe and c.probe is not None:
                    self._check_probe(c, loaded_model)
            else:
                self.scorers.append(make_scorer(c.method, loaded_model, templates=c.templates or None))

    def _check_probe(self, c: Component, loaded: Any) -> None:
        vec = self._embed(loaded, [PROBE_TEXT])[0]
        cos = float(np.dot(vec, c.probe) / max(np.linalg.norm(vec) * np.linalg.norm(c.probe), 1e-12))
        if cos < PROBE_MIN_COSINE:
            raise ClassifierError(f"The encoder '{c.model['name']}' on this machine is not the one the classifier "
                                  f"'{self.clf.name}' was frozen with (probe cosine {cos:.3f}). Install the same "
                                  "model or freeze again here.")

    def _embed(self, loaded: Any, texts: list[str]) -> np.ndarray:
        from llm_backend.models.embedding_cache import embed_texts

        return embed_texts(loaded, texts, cache=self.cache)

    def raw_scores(self, texts: list[str], progress: Progress = None) -> list[np.ndarray]:
        """Per component, the uncalibrated scores exactly as the live scorer computes them."""
        from llm_backend.scorers.self_training import floored_log_probs

        out = []
        k = len(self.clf.labels)
        for c, loaded, scorer in zip(self.clf.components, self.loaded, self.scorers):
            if not texts:
                out.append(np.zeros((0, k)))
            elif c.method == "embedding":
                sims = np.asarray(self._embed(loaded, texts) @ c.label_vectors.T, dtype=np.float64)
                out.append(sims if c.bias is None else floored_log_probs(sims + c.bias))
            elif c.method == "prompt":
                out.append(np.asarray(scorer.score(texts), dtype=np.float64))
            elif c.kind == "nli_log_odds":
                pair = scorer.pair_logits(texts, self.clf.labels)
                out.append(pair[..., scorer.entail_id] - pair[..., scorer.contra_id])
            else:
                out.append(np.asarray(scorer.score(texts, self.clf.labels), dtype=np.float64))
        report(progress, len(texts), len(texts))
        return out

    def probabilities(self, raws: list[np.ndarray]) -> np.ndarray:
        """The same arithmetic as :func:`llm_backend.scorers.zero_shot.run_scorer` after its scorer returned."""
        from llm_backend.scorers.base import to_probabilities
        from llm_backend.scorers.ensemble import _EPS, average_probabilities
        from llm_backend.scorers.zero_shot import independent_probabilities

        clf = self.clf
        if clf.is_ensemble:
            members = [to_probabilities(r - c.offsets, c.kind) for r, c in zip(raws, clf.components)]
            scores = np.log(np.clip(average_probabilities(members, clf.weights), _EPS, None))
            probs = to_probabilities(scores, "logprob")
            return independent_probabilities(probs) if clf.multi_label else probs
        c = clf.components[0]
        scores = raws[0] - c.offsets
        if c.kind == "nli_log_odds":
            return 1.0 / (1.0 + np.exp(-scores))
        probs = to_probabilities(scores, c.kind)
        return independent_probabilities(probs) if clf.multi_label else probs

    def clean(self, values: Sequence[Any]) -> tuple[list[str], np.ndarray]:
        """Texts cleaned as ``score`` cleans them (control characters, length cut), and which rows are empty."""
        from llm_backend.data.files import text_column_report
        from llm_backend.scorers.zero_shot import prepare_texts

        texts, _ = text_column_report(pd.Series(list(values), dtype=object))
        texts, _ = prepare_texts(texts, self.clf.max_chars)
        empty = np.fromiter((not t.strip() for t in texts), dtype=bool, count=len(texts))
        return texts, empty

    def predict(self, values: Sequence[Any], skip_empty: bool = True) -> pd.DataFrame:
        """label, score (probability of the top label), margin (to the runner-up) per row; empty texts get nulls
        when ``skip_empty`` (the batch job counts them) instead of a meaningless label."""
        from llm_backend.scorers.base import decide

        texts, empty = self.clean(values)
        keep = np.flatnonzero(~empty) if skip_empty else np.arange(len(texts))
        probs = self.probabilities(self.raw_scores([texts[i] for i in keep]))
        clf = self.clf
        d = decide(probs, clf.label_names, multi_label=clf.multi_label, threshold=clf.threshold,
                   none_below=clf.none_below if (clf.none_below and not clf.multi_label) else None)
        labels = np.full(len(texts), None, dtype=object)
        score = np.full(len(texts), np.nan)
        margin = np.full(len(texts), np.nan)
        labels[keep] = d.labels
        score[keep] = d.top_score
        margin[keep] = d.margin
        return pd.DataFrame({"label": labels, "score": score, "margin": margin})


# ------------------------------------------------------------------------------------------------------ freezing


def _model_ref(spec: ModelSpec) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": spec.name, "role": spec.role, "source": spec.source, "location": spec.location,
                           "description": spec.description[:2000], "gguf_file": spec.gguf_file}
    if spec.location.startswith("memory:"):
        raise ClassifierError("This model lives only in memory (a run that was not saved). Save the model on the "
                              "fine-tune page first, then freeze it by its folder.")
    if spec.source == "package":
        try:
            from importlib.metadata import version

            ref["package_version"] = version(spec.location.replace("_", "-"))
        except Exception:  # noqa: BLE001 - the version is informative only
            pass
    elif spec.source in ("folder", "trained"):
        ref["location"] = str(Path(spec.location).resolve())
    return ref


def _leaf_component(scorer: Any, labels: Sequence[Label], calibration: str, offsets: np.ndarray,
                    texts: Sequence[str], multi_label: bool) -> Component:
    """State of one live scorer after it ran on ``texts``: the method's own public pieces, nothing private."""
    from llm_backend.scorers.embedding import EmbeddingScorer, refine_label_vectors
    from llm_backend.scorers.nli import NLIScorer
    from llm_backend.training.trained_models import TrainedScorer

    loaded = scorer.loaded
    spec = loaded.spec
    if getattr(scorer, "name", "") == "self-training":
        # The head fitted on the corpus is linear in the embedding: keep it as label vectors plus a bias.
        from llm_backend.models.embedding_cache import embed_texts

        weights, bias = scorer.linear_head(list(texts), labels)
        probe = embed_texts(loaded, [PROBE_TEXT])[0]
        return Component("embedding", _model_ref(spec), "logprob", calibration, offsets, list(scorer.templates),
                         bool(scorer.use_descriptions), np.asarray(weights, dtype=np.float32),
                         np.asarray(probe, dtype=np.float32), bias=np.asarray(bias, dtype=np.float64))
    if isinstance(scorer, EmbeddingScorer):
        # Same three steps as EmbeddingScorer.score; the embeddings come from the cache the run just filled.
        text_vecs = scorer.text_embeddings(list(texts))
        label_vecs = refine_label_vectors(text_vecs, scorer.label_embeddings(labels), scorer.refine)
        from llm_backend.models.embedding_cache import embed_texts

        probe = embed_texts(loaded, [PROBE_TEXT])[0]
        return Component("embedding", _model_ref(spec), "similarity", calibration, offsets, list(scorer.templates),
                         bool(scorer.use_descriptions), np.asarray(label_vecs, dtype=np.float32),
                         np.asarray(probe, dtype=np.float32))
    if isinstance(scorer, NLIScorer):
        kind = "nli_log_odds" if multi_label else "logit"
        return Component("nli", _model_ref(spec), kind, calibration, offsets, list(scorer.templates))
    if isinstance(scorer, TrainedScorer):
        return Component("trained", _model_ref(spec), "logit", calibration, offsets)
    if getattr(scorer, "name", "") == "lm":
        return Component("lm", _model_ref(spec), scorer.kind, calibration, offsets)
    raise ClassifierError(f"Runs of the '{getattr(scorer, 'name', type(scorer).__name__)}' method cannot be frozen.")


def freeze_run(scorer: Any, texts: Sequence[str], labels: Sequence[Label], result: Any, *,
               source: dict[str, Any] | None = None, name: str = "", check_rows: int | None = None,
               progress: Progress = None) -> FrozenClassifier:
    """A frozen classifier from a finished :func:`llm_backend.scorers.zero_shot.run_scorer` run on ``texts``.

    ``result`` is that run's ZeroShotResult. Single methods take their calibration offsets from the result; an
    ensemble's members are re-scored once to learn theirs (cheap for embeddings, whose vectors are cached). The
    frozen classifier is then checked against the run on ``check_rows`` rows (all rows for embeddings, 32 for the
    slower methods): any disagreement is a bug and fails the freeze rather than producing a classifier that does
    not reproduce what the analyst saw.
    """
    from llm_backend.scorers.calibration import calibrate
    from llm_backend.scorers.ensemble import EnsembleScorer
    from llm_backend.scorers.zero_shot import prepare_texts

    labels = list(labels)
    texts, _ = prepare_texts(texts)  # what run_scorer scored
    calibration = result.calibration.requested
    if isinstance(scorer, EnsembleScorer):
        comps = []
        for i, member in enumerate(scorer.members):
            raw = np.asarray(member.score(texts, labels), dtype=np.float64)
            _, info = calibrate(raw, calibration, scorer=member, labels=labels)
            comps.append(_leaf_component(member, labels, info.applied, np.asarray(info.offsets, dtype=np.float64),
                                         texts, False))
            report(progress, i + 1, len(scorer.members) + 1)
        weights = list(scorer.weights) if scorer.weights is not None else None
    else:
        offsets = np.asarray(result.calibration.offsets, dtype=np.float64)
        if offsets.shape != (len(labels),):
            offsets = np.zeros(len(labels))
        comps = [_leaf_component(scorer, labels, result.calibration.applied, offsets, texts, result.multi_label)]
        weights = None
    src = {"method": result.method, "model": result.model, "calibration": calibration,
           "calibration_applied": result.calibration.applied, "templates": list(result.templates),
           "corpus": {"n_texts": len(texts), "fingerprint": corpus_fingerprint(texts)}}
    src.update(source or {})
    clf = FrozenClassifier(labels, comps, bool(result.multi_label), float(result.threshold),
                           None if result.none_below is None else float(result.none_below), weights,
                           get_settings().max_text_chars, src, name)
    _self_check(clf, texts, result, check_rows)
    report(progress, 1, 1)
    return clf


def _self_check(clf: FrozenClassifier, texts: list[str], result: Any, check_rows: int | None) -> None:
    if check_rows is None:
        check_rows = len(texts) if all(c.method == "embedding" for c in clf.components) else 32
    n = min(len(texts), max(0, check_rows))
    if n == 0:
        return
    runner = ClassifierRunner(clf, cache_entries=-1, check_probe=False)  # the shared cache: the run filled it
    probs = runner.probabilities(runner.raw_scores(texts[:n]))
    want = np.asarray(result.probs[:n], dtype=np.float64)
    if probs.shape != want.shape or not np.allclose(probs, want, atol=1e-4):
        worst = float(np.max(np.abs(probs - want))) if probs.shape == want.shape else float("nan")
        raise ClassifierError(f"The frozen classifier does not reproduce the run's probabilities on {n} rows (max "
                              f"difference {worst:.2e}). If the method's settings changed since the run, run again "
                              "and then freeze.")


def freeze_trained_folder(folder: str | os.PathLike[str], *, name: str = "", labels: Sequence[str] | None = None,
                          threshold: float = 0.5, none_below: float | None = None) -> FrozenClassifier:
    """A frozen classifier that refers to a saved fine-tuned model folder (no calibration: a trained model's
    probabilities are used as they are), with the model's own classes as labels unless ``labels`` is given."""
    from llm_backend.models.registry import spec_from_folder
    from llm_backend.training.trained_models import read_meta

    meta = read_meta(folder)
    spec = spec_from_folder(folder)
    if spec.role != "classifier":
        raise ClassifierError(f"'{Path(folder).name}' is not a trained classifier folder.")
    names = list(labels) if labels else [str(c) for c in meta.get("labels") or []]
    labs = make_labels(names)
    comp = Component("trained", _model_ref(spec), "logit", "none", np.zeros(len(labs)))
    src = {"method": f"trained:{spec.name}", "model": spec.name, "calibration": "none",
           "trained": {"method": meta.get("method"), "uid": meta.get("uid"), "created": meta.get("created")}}
    return FrozenClassifier(labs, [comp], False, threshold, none_below, None, get_settings().max_text_chars, src, name)


def with_source(clf: FrozenClassifier, **source: Any) -> FrozenClassifier:
    return replace(clf, source={**clf.source, **source})
