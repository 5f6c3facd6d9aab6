"""Paths typed by users, kept inside the folders the operator allows, and error messages without our paths.

The app runs as a server: a text box that accepts "a model folder" would otherwise read any directory the server
account can see (``../../etc``, a symlink into someone's home). :func:`safe_path` resolves what the user typed —
symlinks included — and refuses anything outside the configured roots. :func:`redact` removes absolute paths and the
home folder from messages, because error text reaches the browser and should not map the server's disk.

Roots: ``ZSS_PATH_ROOTS`` (separated by ``os.pathsep``); by default the data folder, the models folder, the project
folder and the server user's home. In workshop mode the default shrinks to the data and models folders.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from llm_backend.core.config import PROJECT_ROOT, get_settings
from llm_backend.core.errors import ModelError, UserError


class PathError(UserError):
    """A path the user typed is empty, missing, or outside the folders the app may read."""


def allowed_roots() -> list[Path]:
    """The folders user paths may point into, resolved (symlinks followed) so comparisons are honest."""
    env = os.environ.get("ZSS_PATH_ROOTS", "").strip()
    settings = get_settings()
    if env:
        roots = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    elif settings.workshop_mode:
        roots = [settings.data_dir, settings.models_dir]
    else:
        roots = [settings.data_dir, settings.models_dir, PROJECT_ROOT, Path.home()]
    out: list[Path] = []
    for root in roots:
        resolved = root.resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def _describe_roots(roots: Sequence[Path]) -> str:
    return ", ".join(display_path(r) for r in roots) or "none configured"


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as it may be shown to users: relative to the home or app folder, else just its last part."""
    p = Path(path)
    for base, label in ((PROJECT_ROOT, "<app>"), (get_settings().data_dir.resolve(), "<data>"), (Path.home(), "~")):
        try:
            rel = p.resolve().relative_to(base.resolve()) if p.is_absolute() else None
        except (ValueError, OSError):
            continue
        if rel is not None:
            return label if str(rel) == "." else f"{label}/{rel.as_posix()}"
    return p.name if p.is_absolute() else p.as_posix()


def safe_path(
    user_path: str | os.PathLike[str],
    roots: Iterable[str | os.PathLike[str]] | None = None,
    *,
    must_exist: bool = True,
    kind: str = "folder",
) -> Path:
    """The resolved path for what a user typed, or :class:`PathError` when it is empty, missing or escapes the roots.

    Relative paths are taken relative to each root in turn (first match wins), so a user can type ``my-model`` for
    a folder in the models folder. Symlinks are resolved before the check: a link inside a root that points outside
    is refused like a ``..`` escape.
    """
    text = str(user_path).strip() if user_path is not None else ""
    if not text:
        raise PathError(f"Type a {kind} path first.")
    if "\x00" in text:
        raise PathError(f"The {kind} path contains a NUL character.")
    root_list = [Path(r).expanduser().resolve() for r in roots] if roots is not None else allowed_roots()
    if not root_list:
        raise PathError("No folders are configured for user paths (set ZSS_PATH_ROOTS).")
    raw = Path(text).expanduser()
    candidates = [raw] if raw.is_absolute() else [root / raw for root in root_list]
    shown = redact(text)
    resolved_any: Path | None = None
    for cand in candidates:
        try:
            resolved = cand.resolve(strict=False)
        except (OSError, RuntimeError):  # symlink loops
            raise PathError(f"The {kind} path '{shown}' cannot be resolved (a symlink loop?).") from None
        inside = any(resolved == root or resolved.is_relative_to(root) for root in root_list)
        if not inside:
            continue
        if resolved.exists() or not must_exist:
            return resolved
        resolved_any = resolved_any or resolved
    if resolved_any is None:
        raise PathError(
            f"The {kind} '{shown}' is outside the folders this app may read ({_describe_roots(root_list)}). "
            "Move it into one of them, or ask the operator to add its folder to ZSS_PATH_ROOTS."
        )
    raise PathError(f"No such {kind}: '{shown}'. Check the spelling; relative paths are looked up in "
                    f"{_describe_roots(root_list)}.")


def writable_roots() -> list[Path]:
    """Where the server may write for a user: the data folder and the models folder (both set by the operator).

    Reads may reach wider (``ZSS_PATH_ROOTS`` includes the home and app folders outside workshop mode), but nothing a
    browser user does writes or deletes files outside these two.
    """
    settings = get_settings()
    out: list[Path] = []
    for root in (settings.data_dir, settings.models_dir):
        resolved = Path(root).expanduser().resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def check_writable(path: str | os.PathLike[str], *, kind: str = "folder") -> Path:
    """``path`` resolved, or :class:`PathError` when a write there would leave the data/models folders."""
    resolved = Path(path).expanduser().resolve()
    roots = writable_roots()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise PathError(f"The {kind} '{display_path(resolved)}' is read-only here: the app writes only inside "
                        f"{_describe_roots(roots)}. Choose a folder there (the default is <data>/templates).")
    return resolved


def safe_model_folder(user_path: str | os.PathLike[str], role: str | None = None,
                      roots: Iterable[str | os.PathLike[str]] | None = None):
    """A :class:`~llm_backend.models.registry.ModelSpec` for a user's model folder, checked against the roots first.

    The registry's own messages may name the full folder; here they are redacted, so the page can show them.
    """
    from llm_backend.models.registry import spec_from_folder

    folder = safe_path(user_path, roots, kind="model folder")
    if not folder.is_dir():
        raise PathError(f"'{folder.name}' is a file, not a model folder. Choose the folder that holds config.json.")
    try:
        return spec_from_folder(folder, role=role)  # type: ignore[arg-type]
    except ModelError as exc:
        raise ModelError(redact(str(exc))) from None


# ------------------------------------------------------------------------------------------------------ redact
# An absolute POSIX path: starts at a boundary with '/', at least one segment; not part of a URL ("https://x/y")
# nor a relative path or label ("Sci/Tech", "org/model").
_POSIX_PATH = re.compile(r"(?<![\w:/.~>…\-])/(?:[^\s'\"`:,;()\[\]{}<>|]+/?)+")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\s'\"`:,;()\[\]{}<>|\\]+\\?)*")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):.*", re.S)
_FILE_LINE = re.compile(r'File "[^"]+", line \d+[^\n]*')


def _last_part(match: re.Match[str]) -> str:
    text = match.group(0).rstrip("/\\")
    name = re.split(r"[/\\]", text)[-1] if text else ""
    return f"…/{name}" if name else "…"


def redact(message: str) -> str:
    """The message with home folders shown as ``~``, the app folder as ``<app>``, other absolute paths cut to
    their last part, and any pasted traceback removed."""
    text = str(message)
    text = _TRACEBACK.sub("(details in the server log)", text)
    text = _FILE_LINE.sub("", text)
    replacements = [(str(PROJECT_ROOT), "<app>"), (str(get_settings().data_dir), "<data>"), (str(Path.home()), "~")]
    for real, label in sorted(replacements, key=lambda kv: -len(kv[0])):
        if real and real not in ("/", "."):
            text = re.sub(re.escape(real) + r"(?=[/\\]|\b|$)", label, text)
    text = _POSIX_PATH.sub(_last_part, text)
    text = _WINDOWS_PATH.sub(_last_part, text)
    return text


def has_absolute_path(message: str) -> bool:
    """True when a message still shows an absolute path (tests and the bad-input corpus use it)."""
    return bool(_POSIX_PATH.search(message) or _WINDOWS_PATH.search(message))
