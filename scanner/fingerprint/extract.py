"""Pull candidate vectors out of a file with the registered detectors (used by the signature build, the
``vecleak fingerprint`` command and the tests).

This is a minimal scan loop, not the pipeline: no classifier, no rules. Nested records (a gunzipped
VCR body) are re-scanned with every detector, as the pipeline does. Insta/YAML block lists
(``- - 0.02``, the TEI snapshot) are read here until a yaml-list detector lands on main.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import yaml

import detectors
from scanner.model import Candidate, Diagnostic, Record, SourceRef, vector_sha256

MAX_DEPTH = 4


@dataclass(slots=True)
class Found:
    """One distinct vector in a file, with the record line where it sits."""

    candidate: Candidate
    line: int
    sha256: str
    hints: dict[str, str]


def scan_bytes(
    data: bytes, display: str = "<bytes>", min_dim: int = 32
) -> tuple[list[Found], list[Diagnostic]]:
    """Distinct vectors (by value hash) in ``data`` and the diagnostics met on the way; never raises on bad input."""
    found: dict[str, Found] = {}
    diagnostics: list[Diagnostic] = []
    root = Record(data=data, source=SourceRef("file", display, display))
    for item, line, hints in _walk(root, diagnostics):
        if item.dim < min_dim or item.values.ndim != 1 or not np.all(np.isfinite(item.values)):
            continue
        digest = vector_sha256(item.values)
        found.setdefault(digest, Found(item, line, digest, {**hints, **item.hints}))
    if not found and b"- - " in data:
        for cand in _yaml_block_lists(data, diagnostics, display):
            if cand.dim >= min_dim:
                digest = vector_sha256(cand.values)
                found.setdefault(digest, Found(cand, 1, digest, {}))
    return list(found.values()), diagnostics


def _walk(record: Record, diagnostics: list[Diagnostic]) -> Iterator[tuple[Candidate, int, dict[str, str]]]:
    for detector in detectors.REGISTRY:
        if not detector.may_contain(record.data):
            continue
        try:
            items = list(detector.find(record))
        except Exception as exc:  # a detector bug must not stop the scan; report it
            diagnostics.append(
                Diagnostic("detector-error", f"{detector.name}: {exc!r}", record.source.display)
            )
            continue
        for item in items:
            if isinstance(item, Candidate):
                line = record.line if record.nested else record.line + record.data.count(b"\n", 0, item.start)
                yield item, line, context_hints(record.data, item.start, item.end)
            elif isinstance(item, Record):
                if item.depth <= MAX_DEPTH:
                    yield from _walk(item, diagnostics)
            elif isinstance(item, Diagnostic):
                diagnostics.append(item)


def _yaml_block_lists(data: bytes, diagnostics: list[Diagnostic], display: str) -> Iterator[Candidate]:
    """``- - 0.1`` lists of lists (insta snapshots), possibly after a ``---`` front matter."""
    text = data.decode("utf-8", "replace")
    parts = text.split("\n---\n")
    for part in parts[-1:]:
        try:
            doc = yaml.safe_load(part)
        except yaml.YAMLError as exc:
            diagnostics.append(Diagnostic("bad-yaml", f"YAML list: {exc}", display))
            return
        if not isinstance(doc, list):
            return
        for row in doc:
            if isinstance(row, list) and row and all(isinstance(x, int | float) for x in row):
                values = np.asarray(row, dtype=np.float32)
                yield Candidate(values=values, encoding="yaml-list", start=0, end=len(data), precision="f32")


# ``"model": "text-embedding-3-small"`` (also escaped inside JSON strings), ``model_name=…``,
# OpenInference ``embedding.model_name``: a model name printed next to the vector.
_MODEL_NAME = re.compile(
    rb"""(?:model(?:_name|Version)?|embedding\.model_name)\\?["']?\s*[:=]\s*\\?["']([A-Za-z0-9][\w.:/\-]{1,80})"""
)
HINT_WINDOW = 800


def context_hints(data: bytes, start: int, end: int) -> dict[str, str]:
    """A model name within HINT_WINDOW bytes before or after the payload, nearest first."""
    best: tuple[int, str] | None = None
    for lo, hi, anchor in (
        (max(0, start - HINT_WINDOW), start, start),
        (end, min(len(data), end + HINT_WINDOW), end),
    ):
        for m in _MODEL_NAME.finditer(data, lo, hi):
            distance = abs(m.start() - anchor)
            if best is None or distance < best[0]:
                best = (distance, m.group(1).decode("utf-8", "replace"))
    return {"model": best[1]} if best else {}
