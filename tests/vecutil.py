"""Shared test helpers: scanning bytes through the real pipeline, and realistic synthetic vectors."""

from __future__ import annotations

import numpy as np

from scanner.model import Record, SourceRef
from scanner.pipeline import Pipeline, ScanResult
from scanner.sources.files import open_text_stream


def unit_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """MiniLM-like vectors: Gaussian components, L2-normalised, float32."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def scan_bytes(data: bytes, pipeline: Pipeline | None = None) -> ScanResult:
    """Scan ``data`` as a file would be scanned: cut into records by the real block reader."""
    pipeline = pipeline or Pipeline()
    total = ScanResult()
    for item in open_text_stream(data):
        if isinstance(item, Record):
            result = pipeline.scan(item)
            total.findings.extend(result.findings)
            total.diagnostics.extend(result.diagnostics)
            total.rejected += result.rejected
        else:
            total.diagnostics.append(item)
    return total


def scan_record(data: bytes) -> ScanResult:
    """Scan ``data`` as one record (no block cutting)."""
    return Pipeline().scan(Record(data, SourceRef("memory", "t", "memory:t")))
