"""Shared test helpers: run the real CLI, make real-looking vectors, find the real fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("VECLEAK_FIXTURES", REPO.parent / "shared" / "fixtures" / "real"))


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Gaussian unit vectors: the shape of a normalised embedding, from no model at all."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


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
