"""``batch --engine ray --address``: join a real, separately started Ray cluster (``ray start --head``) and write the
same rows as the in-process engine.

The head node runs as ``ray start --head --block`` in its own process session, so the test stops exactly the
processes it started (its session, then any process whose command line names its private temp dir), never
``ray stop``, which would stop every Ray on a shared machine.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from llm_backend.batch.engines import make_job, run_batch
from llm_backend.batch.frozen import freeze_run, save_classifier
from llm_backend.data.labels import make_labels
from llm_backend.scorers.factory import make_scorer
from llm_backend.scorers.zero_shot import run_scorer
from tests.conftest import ROOT, stratified

pytest.importorskip("ray")
RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError("the Ray head did not open its port")


def _stop_cluster(proc: subprocess.Popen, marker: str) -> None:
    """Stop the head we started: SIGTERM to its session (``ray start --block`` stops its children on it), then
    SIGKILL to anything of ours still alive (found by the private temp dir on its command line)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for _ in range(20):
        left = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                left.append(int(pid))
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


@pytest.mark.slow
def test_batch_joins_an_existing_cluster_by_address(ag_news, embedder, tmp_path):
    df = stratified(ag_news, 5, seed=9).reset_index(drop=True)
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"])
    scorer = make_scorer("embedding", embedder)
    result = run_scorer(scorer, df["text"].tolist(), labels, model_name=embedder.spec.name)
    save_classifier(freeze_run(scorer, df["text"].tolist(), labels, result, name="addr"), tmp_path / "clf")
    df.to_csv(tmp_path / "in.csv", index=False)
    run_batch(make_job(tmp_path / "clf", str(tmp_path / "in.csv"), "text", tmp_path / "local", rows_per_partition=8),
              engine="local", progress=False)

    port = _free_port()
    temp = tempfile.mkdtemp(prefix="zss-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    # Ray >= 2.59 authenticates clients of the clusters it starts: the head and the job share a token, as a real
    # deployment would (RAY_AUTH_MODE / RAY_AUTH_TOKEN, see docs/batch-scoring.md).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    head = subprocess.Popen([str(RAY), "start", "--head", "--port", str(port), "--num-cpus", "2",
                             "--disable-usage-stats", "--include-dashboard", "false", "--node-ip-address", "127.0.0.1",
                             "--temp-dir", temp, "--block"],
                            cwd=temp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait_for_port(port, head)
        p = subprocess.run([sys.executable, "-m", "llm_backend", "batch", "--classifier", str(tmp_path / "clf"),
                            "--input", str(tmp_path / "in.csv"), "--text-column", "text", "--output",
                            str(tmp_path / "remote"), "--rows-per-partition", "8", "--engine", "ray", "--address",
                            f"127.0.0.1:{port}", "--workers", "1"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert p.returncode == 0, p.stderr[-2000:]
        assert '"engine": "ray (1 actor(s)' in p.stderr
    finally:
        _stop_cluster(head, temp)
    a = pd.read_parquet(tmp_path / "local").sort_values("row").reset_index(drop=True)
    b = pd.read_parquet(tmp_path / "remote").sort_values("row").reset_index(drop=True)
    assert sorted(x.name for x in (tmp_path / "remote").glob("part-*")) == \
        sorted(x.name for x in (tmp_path / "local").glob("part-*"))
    pd.testing.assert_frame_equal(a[["row", "label"]], b[["row", "label"]])
    pd.testing.assert_series_equal(a["score"], b["score"], atol=1e-5)
