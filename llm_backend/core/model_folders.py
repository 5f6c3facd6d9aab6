"""Model folders on disk: which entries of the models folder are models, and recovery from killed saves.

Kept free of model-library imports so the registry can list (and clean) the models folder without importing the
training code. The save itself is :func:`llm_backend.training.trained_models.save_model`.
"""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from llm_backend.core.config import get_settings

#: Written last by a save: a folder that has it is a complete model.
META_FILE = "zss_model.json"
log = logging.getLogger(__name__)


_TMP_RE = re.compile(r"^\.tmp-(?P<name>.+)-[A-Za-z0-9_]{8}$")
_OLD_RE = re.compile(r"^\.old-(?P<name>.+)-[0-9a-f]{8}$")
_RECOVERED: set[str] = set()


def is_model_folder_name(name: str) -> bool:
    """Hidden folders (``.tmp-…`` being written, ``.old-…`` being replaced) are never models."""
    return not name.startswith(".")


def recover_models_folder(models_dir: Path | None = None, *, min_age_s: float = 60.0) -> list[str]:
    """Finish or undo saves that a killed process left half done; return what was done (for logs and tests).

    :func:`save_model` writes ``.tmp-NAME-xxxx`` (its ``zss_model.json`` last) and, when overwriting, renames the
    old model to ``.old-NAME-xxxxxxxx`` before renaming the new one into place. A kill can leave:

    * ``NAME`` missing with an ``.old-NAME-…``: the model would vanish from the list. The complete new copy (a
      ``.tmp-NAME-…`` that has its ``zss_model.json``) is put in place if there is one, else the old model is restored.
    * ``.tmp-…`` or ``.old-…`` next to an intact ``NAME``: deleted.

    Only leftovers older than ``min_age_s`` are touched, so a save running in another process right now is safe.
    """
    import time

    root = Path(models_dir) if models_dir is not None else get_settings().models_dir
    done: list[str] = []
    if not root.is_dir():
        return done
    now = time.time()

    def old_enough(p: Path) -> bool:
        try:
            return now - p.stat().st_mtime >= min_age_s
        except OSError:
            return False

    hidden = [p for p in root.iterdir() if p.is_dir() and p.name.startswith((".tmp-", ".old-")) and old_enough(p)]
    olds = [p for p in hidden if _OLD_RE.match(p.name)]
    tmps = [p for p in hidden if _TMP_RE.match(p.name)]
    for old in olds:
        name = _OLD_RE.match(old.name)["name"]  # type: ignore[index]
        target = root / name
        if not target.exists():
            complete = [t for t in tmps if _TMP_RE.match(t.name)["name"] == name and (t / META_FILE).is_file()]  # type: ignore[index]
            source = max(complete, key=lambda t: t.stat().st_mtime) if complete else old
            try:
                source.rename(target)
                done.append(f"restored '{name}' from {'its new copy' if source is not old else 'the previous version'}")
                if source is not old:
                    tmps.remove(source)
            except OSError:
                continue
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
            done.append(f"removed {old.name}")
    for tmp in tmps:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            done.append(f"removed {tmp.name}")
    return done


def recover_once(models_dir: Path | None = None) -> None:
    """:func:`recover_models_folder` the first time this process lists a models folder ("cleaned at start")."""
    root = Path(models_dir) if models_dir is not None else get_settings().models_dir
    key = str(root.resolve()) if root.exists() else str(root)
    if key in _RECOVERED:
        return
    _RECOVERED.add(key)
    try:
        for line in recover_models_folder(root):
            import logging

            logging.getLogger(__name__).warning("models folder: %s", line)
    except OSError:
        pass


def publish_folder(tmp: Path, target: Path) -> None:
    """Move a completely written ``.tmp-…`` folder into place; an existing ``target`` is replaced, never half-lost.

    The old folder is first renamed to ``.old-…`` (hidden from listings), so a kill between the two renames leaves
    one complete copy that :func:`recover_models_folder` puts back. Trained models and frozen classifiers both save
    through here. Raises ``OSError``; the caller turns it into its own error and removes ``tmp``.
    """
    import shutil
    import uuid

    if target.exists():
        old = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


@contextmanager
def write_once(target: Path, is_complete: Callable[[Path], bool], prefix: str = ".tmp-") -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``target``; when the block ends without error it becomes ``target``.

    For derived files written once into the cache (dequantised LMs, ONNX exports, rebuilt or unpacked models): a
    killed process leaves only a hidden ``.tmp-`` folder, never a half-written ``target``; an incomplete ``target``
    left by an older version is replaced; and when two processes build the same folder at once, the one that loses
    the rename accepts the winner's copy if ``is_complete`` says it is whole.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        yield tmp
        if target.exists() and not is_complete(target):
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if not is_complete(target):  # no other process won the race: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

