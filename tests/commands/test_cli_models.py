"""The command-line entry: help, the models listing, and error exits."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_backend", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0 and "models" in r.stdout


def test_models_json_lists_offline_defaults():
    r = run_cli("models", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["all-MiniLM-L6-v2"]["offline"] is True
    assert by_name["SmolLM2-135M-Instruct"]["role"] == "causal_lm"


def test_models_table():
    r = run_cli("models")
    assert r.returncode == 0 and "all-MiniLM-L6-v2" in r.stdout and "offline" in r.stdout.splitlines()[0]
