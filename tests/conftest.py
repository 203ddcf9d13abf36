"""Shared test helpers: run the real CLI, make real-looking vectors, find the real fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from scanner.model import Diagnostic, Finding, Record
from scanner.pipeline import Pipeline
from scanner.sources.files import FileSource

REPO = Path(__file__).resolve().parent.parent


def _fixtures_dir() -> Path:
    """``$VECLEAK_FIXTURES``, else ``shared/fixtures/real`` beside the checkout, else beside the
    repository it was cloned from (a clean clone in a temporary folder still runs the real-data tests)."""
    if "VECLEAK_FIXTURES" in os.environ:
        return Path(os.environ["VECLEAK_FIXTURES"])
    bases = [REPO]
    origin = subprocess.run(
        ["git", "-C", str(REPO), "remote", "get-url", "origin"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if origin and Path(origin).is_dir():
        bases.append(Path(origin).resolve())
    for base in bases:
        candidate = base.parent / "shared" / "fixtures" / "real"
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "fixtures" / "real"


FIXTURES = _fixtures_dir()


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Gaussian unit vectors: the shape of a normalised embedding, from no model at all."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def scan_paths(*paths: Path | str) -> tuple[list[Finding], list[Diagnostic]]:
    """Scan files or folders through a default Pipeline: the findings, and every problem (the
    source's and the pipeline's) as a Diagnostic. One helper, so the file tests read files one way."""
    pipeline = Pipeline()
    findings: list[Finding] = []
    diagnostics: list[Diagnostic] = []
    for item in FileSource([str(p) for p in paths]).records():
        if isinstance(item, Record):
            result = pipeline.scan(item)
            findings.extend(result.findings)
            diagnostics.extend(result.diagnostics)
        else:
            diagnostics.append(item)
    return findings, diagnostics


def run_cli(
    *args: str, stdin: bytes | None = None, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=full_env,
        timeout=timeout,
    )


def jsonl(stdout: bytes) -> list[dict]:
    return [orjson.loads(line) for line in stdout.splitlines() if line.strip()]


def alerts(stdout: bytes) -> list[dict]:
    return [d for d in jsonl(stdout) if d.get("event", {}).get("kind") == "alert"]


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"real fixtures not found at {FIXTURES} (set VECLEAK_FIXTURES)")
    return FIXTURES


def pool_workers(parent: int) -> list[int]:
    """Pids of the spawned workers whose parent is ``parent`` (not its resource tracker)."""
    out = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in cmdline:
            out.append(int(entry))
    return out


def gone(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` has exited (or is a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.2)
    return False


def default_sigint() -> None:
    """``preexec_fn`` for a child that must get Ctrl-C: a shell without job control starts its
    background jobs with SIGINT ignored, their children inherit that, and Python then raises no
    KeyboardInterrupt (CI runs the tests so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
