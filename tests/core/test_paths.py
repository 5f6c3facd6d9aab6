"""User-typed paths stay inside the configured roots; messages never show the server's absolute paths."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llm_backend.core.errors import ModelError, UserError
from llm_backend.core.paths import (
    PathError,
    allowed_roots,
    has_absolute_path,
    redact,
    safe_model_folder,
    safe_path,
)


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    inside = tmp_path / "root"
    outside = tmp_path / "outside"
    (inside / "models" / "good").mkdir(parents=True)
    (outside / "secret").mkdir(parents=True)
    (inside / "notes.txt").write_text("x")
    return inside, outside


def test_inside_paths_resolve(roots):
    inside, _ = roots
    assert safe_path(str(inside / "models" / "good"), [inside]) == (inside / "models" / "good").resolve()
    assert safe_path("models/good", [inside]) == (inside / "models" / "good").resolve()  # relative to a root
    assert safe_path("models/./good/../good", [inside]) == (inside / "models" / "good").resolve()
    assert safe_path("models/new", [inside], must_exist=False) == (inside / "models" / "new").resolve()


@pytest.mark.parametrize("typed", ["../outside/secret", "models/../../outside/secret", "/etc", "~/../..", "/"])
def test_escapes_are_refused(roots, typed):
    inside, _ = roots
    with pytest.raises(PathError, match="outside the folders this app may read") as info:
        safe_path(typed, [inside])
    assert not has_absolute_path(str(info.value))


def test_symlink_escape_is_refused(roots):
    inside, outside = roots
    link = inside / "models" / "sneaky"
    link.symlink_to(outside / "secret", target_is_directory=True)
    with pytest.raises(PathError, match="outside"):
        safe_path("models/sneaky", [inside])
    loop = inside / "loop"
    loop.symlink_to(loop)
    with pytest.raises(PathError):
        safe_path("loop", [inside])


@pytest.mark.parametrize("typed, match", [("", "Type a"), ("   ", "Type a"), ("a\x00b", "NUL"),
                                          ("models/missing", "No such")])
def test_empty_nul_and_missing(roots, typed, match):
    with pytest.raises(PathError, match=match) as info:
        safe_path(typed, [roots[0]])
    assert not has_absolute_path(str(info.value))


def test_default_roots_follow_settings(monkeypatch, tmp_path):
    data = Path(os.environ["ZSS_DATA_DIR"]).resolve()
    assert data in allowed_roots() and Path.home().resolve() in allowed_roots()
    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")
    assert Path.home().resolve() not in allowed_roots() and data in allowed_roots()
    monkeypatch.setenv("ZSS_PATH_ROOTS", f"{tmp_path}{os.pathsep}{tmp_path / 'x'}")
    assert allowed_roots() == [tmp_path.resolve(), (tmp_path / "x").resolve()]


def test_safe_model_folder_checks_root_then_folder(roots, embedder):
    inside, _ = roots
    with pytest.raises(PathError, match="is a file"):
        safe_model_folder("notes.txt", roots=[inside])
    with pytest.raises(ModelError, match="not a model folder") as info:
        safe_model_folder("models/good", roots=[inside])
    assert not has_absolute_path(str(info.value))
    (inside / "models" / "good" / "config.json").write_text("{broken")
    with pytest.raises(ModelError, match="cannot be read"):
        safe_model_folder("models/good", roots=[inside])
    # a real model folder (the bundled MiniLM) inside an allowed root is accepted
    from llm_backend.models.registry import resolve_location

    real = Path(resolve_location(embedder.spec))
    spec = safe_model_folder(str(real), roots=[real.parent])
    assert spec.role == "embedder" and spec.source == "folder"


def test_redact():
    home = str(Path.home())
    msg = redact(f"No such folder: {home}/models/x; also /srv/app/data/secret.csv and C:\\Users\\bob\\m.bin")
    assert home not in msg and "/srv" not in msg and "Users" not in msg
    assert "~/models/x" in msg and "secret.csv" in msg and "m.bin" in msg
    keep = "Labels Sci/Tech and org/model at https://huggingface.co/org/model are fine"
    assert redact(keep) == keep
    tb = 'boom\nTraceback (most recent call last):\n  File "/usr/lib/x.py", line 1, in f\nValueError: x'
    assert "Traceback" not in redact(tb) and "/usr/lib" not in redact(tb)
    assert not has_absolute_path(redact(json.dumps({"p": "/var/lib/x"})))


def test_path_error_is_a_user_error():
    assert issubclass(PathError, UserError)
