"""The nouns that flow through vecleak: Record → Candidate → Finding → Alert.

Every entry point (``scan``, ``watch``, ``es scan``, ``serve --otlp``) produces Records and consumes
Alerts; everything in between is the same pipeline. The types are small and mostly immutable so that
they can cross threads and queues without surprises.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

SCHEMA_VERSION = 1


def _pickled_by_constructor(cls: type) -> type:
    """Pickle instances as one call of the constructor with the fields in order.

    Findings cross a pipe one per vector (``scan --jobs``); the default for a slotted dataclass (a
    dict of its slots, set back one by one, or a Python-level state function when frozen) costs
    about a third more each way.
    """
    state = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        return cls, state(self)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


@_pickled_by_constructor
@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where bytes came from.

    ``display`` is what users see (``log.file.path`` for files, ``index`` for Elasticsearch).
    ``identity`` is what finding fingerprints hash: stable across restarts and rotations, so that the
    same vector in the same source is the same finding tomorrow.
    """

    kind: str
    display: str
    identity: str
    labels: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Record:
    """A run of bytes to scan, plus where it sits in its source.

    ``offset`` and ``line`` locate ``data[0]`` in the source. A nested record (a gunzipped body, a
    JSON string decoded from inside JSON) has ``nested=True``: its own offsets do not map to source
    lines, so findings in it report the line and offset where the container started.
    """

    data: bytes
    source: SourceRef
    offset: int = 0
    line: int = 1
    nested: bool = False
    depth: int = 0
    path: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    windowed: bool = False
    """Cut by the prefilter around its hits: payload-dense, so detectors need no gate of their own."""
    _cursor: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    def line_at(self, pos: int) -> int:
        """The source line of ``data[pos]``.

        Newlines are counted from the last position asked for, so asking in increasing order (the
        pipeline for its windows, then the reader for the next block's first line) counts each byte
        once: a second full pass over every block cost a third of a second per gigabyte.
        """
        if self.nested:
            return self.line
        at, line = self._cursor if self._cursor is not None and self._cursor[0] <= pos else (0, self.line)
        line += count_newlines(self.data, at, pos)
        self._cursor = (pos, line)
        return line


_NEWLINE_CHUNK = 1 << 20


def count_newlines(data: bytes, start: int = 0, end: int | None = None) -> int:
    """``data.count(b"\\n", start, end)``, about four times faster over long spans.

    CPython counts one byte at a time; numpy's compare and count are vectorised. Every byte of a scan
    is counted once for line numbers, so this is a fifth of a second per gigabyte. Chunks of a
    megabyte keep the temporary mask small.
    """
    end = len(data) if end is None else min(end, len(data))
    size = end - start
    if size < 1 << 13:  # below 8 KB a numpy call costs more than it saves
        return data.count(b"\n", start, end)
    view = np.frombuffer(data, np.uint8, size, start)
    if size <= _NEWLINE_CHUNK:
        return int(np.count_nonzero(view == 10))
    return sum(
        int(np.count_nonzero(view[i : i + _NEWLINE_CHUNK] == 10)) for i in range(0, size, _NEWLINE_CHUNK)
    )


def newlines_before(data: bytes, positions: Sequence[int]) -> list[int]:
    """``[data.count(b"\\n", 0, p) for p in positions]``, each byte looked at once.

    A block of vector lines has a candidate every few kilobytes: one ``bytes.count`` per candidate
    cost 2.5 µs each (CPython counts one byte at a time); numpy finds every newline of the span at
    once, and a binary search places each candidate among them.
    """
    end = max(positions, default=0)
    if len(positions) < 4 or end < 1 << 13:  # a few counts, or a short span: not worth numpy's calls
        counted: dict[int, int] = {}
        at = count = 0
        for pos in sorted(positions):
            count += count_newlines(data, at, pos)
            counted[pos] = count
            at = pos
        return [counted[pos] for pos in positions]
    view = np.frombuffer(data, np.uint8, end)
    found = [np.flatnonzero(view[i : i + _NEWLINE_CHUNK] == 10) + i for i in range(0, end, _NEWLINE_CHUNK)]
    newlines = found[0] if len(found) == 1 else np.concatenate(found)
    return np.searchsorted(newlines, np.asarray(positions)).tolist()


@_pickled_by_constructor
@dataclass(slots=True)
class VectorSummary:
    """What is said of a judged vector after the pipeline: its hash, size, finiteness, norm and
    masked preview.

    Rules, dedup, the source pool and every output read these, never the values themselves, so a
    scan worker (:mod:`scanner.parallel`) computes them and ships this instead of the values: a
    fifth of the bytes, and no array to pickle and rebuild per vector.
    """

    sha256: str  # of the values as little-endian float32 (:func:`vector_sha256`)
    length: int  # values.shape[0]
    flat: bool  # a 1-D array
    finite: bool  # no NaN or Inf
    norm: float | None  # L2, NaN/Inf counted as zero, 6 significant digits; None for a truncated print
    preview: str  # :func:`masked_preview`

    @classmethod
    def of(cls, values: np.ndarray, dim: int, truncated: bool) -> VectorSummary:
        norm = math.sqrt(float(np.dot(values, values))) if values.ndim == 1 else math.nan
        finite = math.isfinite(norm) or bool(np.isfinite(values).all())  # a finite norm: all finite
        return cls(
            sha256=vector_sha256(values),
            length=int(values.shape[0]),
            flat=values.ndim == 1,
            finite=finite,
            norm=None if truncated else vector_norm(values, norm),
            preview=masked_preview(values, dim),
        )


@_pickled_by_constructor
@dataclass(slots=True)
class Candidate:
    """A numeric array a detector pulled out of a record. Not yet judged to be an embedding.

    ``values`` is None only after :meth:`drop_values` (a scan worker's finding that nothing in the
    main process will read the values of); ``summary`` then says all that is needed of them.
    """

    values: np.ndarray | None
    encoding: str
    start: int
    end: int
    json_path: str | None = None
    key: str | None = None
    truncated: bool = False
    declared_dim: int | None = None
    precision: str | None = None
    hints: dict[str, Any] = field(default_factory=dict)
    summary: VectorSummary | None = field(default=None, repr=False, compare=False)

    @property
    def dim(self) -> int:
        if self.declared_dim is not None:
            return self.declared_dim
        return int(self.values.shape[0]) if self.values is not None else self.summarize().length

    def summarize(self) -> VectorSummary:
        """The summary of the values, computed on first use."""
        if self.summary is None:
            assert self.values is not None
            self.summary = VectorSummary.of(self.values, self.dim, self.truncated)
        return self.summary

    def drop_values(self) -> None:
        """Keep only the summary: for a finding whose values nobody will read again."""
        self.summarize()
        self.values = None


class Level(IntEnum):
    """Sigma's levels; the integer order is what ``--fail-on`` compares."""

    informational = 0
    low = 1
    medium = 2
    high = 3
    critical = 4

    @property
    def severity(self) -> int:
        """ECS ``event.severity`` (0–100)."""
        return {0: 10, 1: 25, 2: 50, 3: 75, 4: 95}[int(self)]

    @classmethod
    def parse(cls, text: str) -> Level:
        try:
            return cls[text.strip().lower()]
        except KeyError:
            names = ", ".join(level.name for level in cls)
            raise ValueError(f"unknown level {text!r} (expected one of: {names})") from None


@_pickled_by_constructor
@dataclass(frozen=True, slots=True)
class ModelGuess:
    """One ranked answer of the fingerprinter."""

    model: str
    confidence: float
    reasons: tuple[str, ...] = ()
    truncated_from: int | None = None
    confirmed: bool = False


@_pickled_by_constructor
@dataclass(slots=True)
class Finding:
    """A Candidate the classifier accepted as an embedding, located in its source."""

    candidate: Candidate
    source: SourceRef
    line: int
    offset: int
    score: float
    reasons: tuple[str, ...]
    fingerprint: list[ModelGuess]
    record_context: dict[str, Any] = field(default_factory=dict)
    kind: str = "embedding"
    inversion: dict[str, Any] | None = None
    # Finding ids are asked for by every rule, dedup key and output format; compute each once.
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return self.candidate.summarize().sha256

    @property
    def model(self) -> ModelGuess | None:
        return self.fingerprint[0] if self.fingerprint else None

    @property
    def finding_id(self) -> str:
        """Source identity + vector hash + JSON path: stable across line shifts."""
        path = self.candidate.json_path or ""
        found = self._memo.get(("id", path))
        if found is None:
            key = "\x1f".join([self.source.identity, self.sha256, path])
            found = self._memo[("id", path)] = hashlib.sha256(
                key.encode("utf-8", "surrogateescape")
            ).hexdigest()
        return found


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """What a roll-up alert summarises: one source × model × rule over one window (scanner.noise).

    ``alerts`` are the alerts folded into this roll-up (not sent one by one), so summing
    ``Alert.count`` over every event a sink received gives the number of distinct alerts.
    """

    source: str
    model: str
    rule_id: str
    start: float
    end: float
    alerts: int
    distinct_vectors: int
    rate_limited: int
    first_event_id: str | None
    sample_sha256: tuple[str, ...] = ()

    @property
    def event_id(self) -> str:
        """Stable per (group key, window start): a replayed roll-up keeps its id."""
        key = "\x1f".join(["group", self.source, self.model, self.rule_id, f"{self.start:.3f}"])
        return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass(slots=True)
class Alert:
    """A Finding after a rule fired. Sinks format and deliver these; they never decide sensitivity."""

    finding: Finding
    rule_id: str
    rule_title: str
    level: Level
    tags: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    count: int = 1
    group: AlertGroup | None = None  # set on a roll-up only
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """The finding fingerprint with the rule added: the dedup and baseline key."""
        if self._fingerprint is None:
            self._fingerprint = hashlib.sha256(
                f"{self.finding.finding_id}\x1f{self.rule_id}".encode()
            ).hexdigest()
        return self._fingerprint

    @property
    def event_id(self) -> str:
        """Stable alert id: a replay after a crash yields the same id, so downstream can dedupe."""
        return self.group.event_id if self.group is not None else self.fingerprint[:32]


@dataclass(slots=True)
class Diagnostic:
    """A problem with the input that did not stop the scan. Counted, reported, never fatal."""

    kind: str
    message: str
    source: str
    line: int | None = None
    offset: int | None = None


def vector_sha256(values: np.ndarray) -> str:
    """SHA-256 of the values as little-endian float32: the same whatever encoding carried them."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f4")).hexdigest()  # its buffer: no copy


def vector_norm(values: np.ndarray, norm: float | None = None) -> float:
    """L2 norm to 6 significant digits, NaN/Inf counted as zero (as ``nan_to_num`` would); ``norm``
    is the plain one when already computed, and the finite case skips the copy."""
    if norm is None:
        norm = math.sqrt(float(np.dot(values, values)))
    if not math.isfinite(norm):
        with np.errstate(over="ignore"):  # Inf became the largest float: its square overflows
            norm = float(np.linalg.norm(np.nan_to_num(values)))
    return float(f"{norm:.6g}")


def masked_preview(values: np.ndarray, dim: int) -> str:
    """Sign and order of magnitude of the first values only: enough to recognise, too little to invert."""
    head = []
    # Python floats: numpy's scalar maths costs microseconds a call. Flattened, so that an array of
    # another shape (no detector makes one) cannot stop a worker that summarises every finding.
    for v in values.ravel()[:3].tolist():
        if not math.isfinite(v):
            head.append("nan")
            continue
        exp = math.floor(math.log10(abs(v))) if v != 0 else 0
        head.append(f"{'-' if v < 0 else ''}{'0.' + '0' * (-exp - 1) if exp < 0 else ''}#")
    return f"[{', '.join(head)}, … {dim} values]"
