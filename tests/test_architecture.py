"""The backend's shape, checked: no UI import, no import circles, no flat modules left beside the packages.

These guard issue 11's redesign: a circle or a streamlit import creeping back fails here, with the offending path.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

from tests.conftest import ROOT

PKG = ROOT / "llm_backend"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at module level or inside functions (a lazy import still makes a circle)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_backend_never_imports_streamlit():
    offenders = [str(f.relative_to(ROOT)) for f in PKG.rglob("*.py")
                 if any(m == "streamlit" or m.startswith("streamlit.") for m in _imports(f))]
    assert offenders == [], f"llm_backend must stay UI-free; these import streamlit: {offenders}"


def test_no_import_circles_in_backend():
    mods = _modules()
    graph = nx.DiGraph()
    for name, path in mods.items():
        if path.name == "__init__.py":
            continue  # package docstrings only; importing a submodule runs them but they import nothing back
        for target in _imports(path):
            if target in mods and target != name and mods[target].name != "__init__.py":
                graph.add_edge(name, target)
    cycles = [" -> ".join(c) for c in nx.simple_cycles(graph)]
    assert cycles == [], "import circles in llm_backend:\n" + "\n".join(cycles)


def test_backend_is_grouped_in_packages():
    """Only the entry points stay at the top; every job lives in its package (see docs/architecture.md)."""
    top = sorted(f.name for f in PKG.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py"]
    packages = sorted(d.name for d in PKG.iterdir() if (d / "__init__.py").is_file())
    for expected in ("core", "models", "data", "scorers", "prompts", "maps", "training", "evaluation", "store",
                     "commands"):
        assert expected in packages


# Test folders that are not backend packages: the UI side and the whole-app checks.
UI_TEST_FOLDERS = {"pages", "browser", "commands", "bad_inputs"}


def test_tests_mirror_the_packages():
    """A reader looking for the tests of ``llm_backend/<pkg>/`` finds them in ``tests/<pkg>/``; a new test folder must
    name a backend package or one of the UI-side folders, so the layouts cannot drift apart silently."""
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    tests = ROOT / "tests"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    assert folders - packages - UI_TEST_FOLDERS == set(), "test folders that match no backend package"
    flat = sorted(p.name for p in tests.glob("test_*.py"))
    # Only the cross-cutting checks stay at the top: the backend's shape and the bad-input corpus over every page.
    assert flat == ["test_architecture.py", "test_bad_input_corpus.py"], flat
    for pkg in ("core", "models", "data", "scorers", "prompts", "maps", "training", "batch", "explain", "ner"):
        assert list((tests / pkg).glob("test_*.py")), f"tests/{pkg}/ has no tests"
