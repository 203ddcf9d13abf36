"""Record → detectors → classifier → fingerprint → Findings. The same path for every entry point.

The pipeline knows nothing about where records come from or where alerts go; sources and sinks do.
It never raises on bad input: anything a detector chokes on becomes a Diagnostic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import detectors as detector_registry
from detectors import Detector
from scanner import prefilter
from scanner.classify import classify
from scanner.fingerprint import Fingerprinter
from scanner.fingerprint.scoring import EVIDENCE_MEMO, Evidence
from scanner.model import Candidate, Diagnostic, Finding, Record, newlines_before

MAX_DEPTH = 4


@dataclass(slots=True)
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    rejected: int = 0
    ignored: int = 0


@dataclass(slots=True)
class _Located:
    candidate: Candidate
    record: Record
    priority: int


class Pipeline:
    """Turns Records into Findings. Thread-compatible: holds no per-record state."""

    def __init__(
        self,
        detectors: Sequence[Detector] | None = None,
        fingerprinter: Fingerprinter | None = None,
        max_depth: int = MAX_DEPTH,
        use_prefilter: bool = True,
    ) -> None:
        self.detectors = tuple(detectors if detectors is not None else detector_registry.REGISTRY)
        self.fingerprinter = fingerprinter if fingerprinter is not None else Fingerprinter()
        self.max_depth = max_depth
        self.use_prefilter = use_prefilter

    def scan(self, record: Record) -> ScanResult:
        result = ScanResult()
        located: list[_Located] = []
        markers = self._detect_windows(record, located, result.diagnostics)
        self._judge(located, [record] * len(located), result, {id(record): markers})
        return result

    def scan_batch(
        self, records: Sequence[Record], decoded: Sequence[tuple[Record, Candidate]] = ()
    ) -> ScanResult:
        """Many records (and arrays a source already decoded) judged together.

        Classification and fingerprinting cost about the same for one vector as for a hundred (one
        matrix product), so a source that holds many small records at once (an OTLP request: one
        record per span attribute) scans them here rather than one :meth:`scan` each. ``decoded``
        skips the detectors: a protobuf array of doubles is already the vector, and rendering it as
        text only for a detector to parse it back would cost more than everything else.
        """
        result = ScanResult()
        located: list[_Located] = []
        tops: list[Record] = []  # the record each candidate came from (``vecleak:ignore`` is per record)
        markers: dict[int, list[int] | None] = {}
        for record in records:
            markers[id(record)] = self._detect_windows(record, located, result.diagnostics)
            tops.extend([record] * (len(located) - len(tops)))
        for record, cand in decoded:
            located.append(_Located(cand, record, -1))
            tops.append(record)
        self._judge(located, tops, result, markers)
        return result

    def _judge(
        self,
        located: list[_Located],
        tops: list[Record],
        result: ScanResult,
        markers: dict[int, list[int] | None],
    ) -> None:
        """Classify and fingerprint what the detectors found, in one batch, into ``result``.

        ``markers`` holds, per top record (by id), where the prefilter saw ``vecleak:ignore``
        markers, or None when it did not look.
        """
        if not located:
            return
        verdicts = classify([item.candidate for item in located])
        accepted = [
            (item, v, top) for item, v, top in zip(located, verdicts, tops, strict=True) if v.is_embedding
        ]
        result.rejected += len(located) - len(accepted)
        for item, verdict in zip(located, verdicts, strict=True):
            if verdict.non_finite:
                line, offset = _position(item.record, item.candidate.start)
                result.diagnostics.append(
                    Diagnostic(
                        "non-finite",
                        f"{verdict.non_finite} NaN/Inf values in a {item.candidate.dim}-d {item.candidate.encoding} array",
                        item.record.source.display,
                        line,
                        offset,
                    )
                )
        if not accepted:
            return
        for item, _, _ in accepted:
            hints = item.record.context.get("hints")
            if hints:  # evidence the source recorded beside the vector (a span's model name)
                item.candidate.hints.update(hints)
        evidence: list[Evidence | None] = []
        guesses = self.fingerprinter.guess_candidates([item.candidate for item, _, _ in accepted], evidence)
        positions = _positions([item for item, _, _ in accepted])
        ignored: dict[int, frozenset[int]] = {}
        for (item, verdict, top), guess, ev, (line, offset) in zip(
            accepted, guesses, evidence, positions, strict=True
        ):
            key = id(top)
            if key not in ignored:
                ignored[key] = _ignored_lines(top, markers.get(key))
            if line in ignored[key]:
                result.ignored += 1
                continue
            result.findings.append(
                Finding(
                    candidate=item.candidate,
                    source=item.record.source,
                    line=line,
                    offset=offset,
                    score=verdict.score,
                    reasons=verdict.reasons,
                    fingerprint=guess,
                    record_context=item.record.context,
                )
            )
            if ev is not None:
                result.findings[-1]._memo[EVIDENCE_MEMO] = ev
            beside = item.record.context.get("plaintext")
            if beside:
                result.findings.append(_plaintext_finding(result.findings[-1], beside))

    def candidates(self, record: Record) -> tuple[list[Candidate], list[Diagnostic]]:
        """Every array the detectors decode, judged or not (``vecleak invert`` and tests use this)."""
        located: list[_Located] = []
        diagnostics: list[Diagnostic] = []
        self._detect_windows(record, located, diagnostics)
        return [item.candidate for item in located], diagnostics

    def _detect_windows(
        self, record: Record, out: list[_Located], diagnostics: list[Diagnostic]
    ) -> list[int] | None:
        """Run the detectors on the prefilter's windows of the record, or on all of it without one.

        Returns the offsets of the record's ``vecleak:ignore`` markers, or None without a prefilter.
        """
        hits = None
        if self.use_prefilter and record.data:
            try:
                hits = prefilter.scan(record.data)
            except Exception as exc:  # noqa: BLE001 - a library fault costs speed, never the scan
                diagnostics.append(
                    Diagnostic(
                        "prefilter-error",
                        f"{type(exc).__name__}: {exc}; scanned the whole record instead",
                        record.source.display,
                        record.line,
                        record.offset,
                    )
                )
        if hits is None:  # no prefilter, or no bytes (a record of candidates a source decoded itself)
            self._detect(record, out, diagnostics)
            return None
        data = record.data
        tail = int(record.context.get("overlap_tail", 0)) if not record.nested else 0
        limit = len(data) - tail if tail else None
        for lo, hi, kinds in hits.windows:
            if limit is not None and lo >= limit:
                break  # the next window of this long line reports it whole
            context = record.context
            if limit is not None and hi > limit:
                context = {**record.context, "overlap_tail": hi - limit}
            elif tail:
                context = {k: v for k, v in record.context.items() if k != "overlap_tail"}
            window = Record(
                data=data[lo:hi],
                source=record.source,
                offset=record.offset + lo if not record.nested else record.offset,
                line=record.line_at(lo),
                nested=record.nested,
                depth=record.depth,
                path=record.path,
                context=context,
                windowed=True,
            )
            self._detect(window, out, diagnostics, kinds)
        return hits.markers

    def _detect(
        self,
        record: Record,
        out: list[_Located],
        diagnostics: list[Diagnostic],
        kinds: frozenset[str] | None = None,
    ) -> None:
        found: list[_Located] = []
        for priority, detector in enumerate(self.detectors):
            if kinds is not None and not detector.openers & kinds:
                continue  # the prefilter saw nothing this format starts with in this window
            try:
                # The prefilter's kinds already gate the window; the detector's own block-wide gate
                # is for scans without it.
                if kinds is None and not detector.may_contain(record.data):
                    continue
                for item in detector.find(record):
                    if isinstance(item, Candidate):
                        found.append(_Located(item, record, priority))
                    elif isinstance(item, Record):
                        if item.depth > self.max_depth:
                            diagnostics.append(
                                Diagnostic(
                                    "too-deep",
                                    f"nesting deeper than {self.max_depth}; not opened",
                                    record.source.display,
                                    *_position(record, 0),
                                )
                            )
                        else:
                            self._detect_windows(item, out, diagnostics)
                    else:
                        diagnostics.append(item)
            except (
                RecursionError,
                MemoryError,
                ValueError,
                TypeError,
                KeyError,
                IndexError,
                OverflowError,
            ) as exc:
                # A detector bug or a pathological payload must cost one record, not the scan.
                diagnostics.append(
                    Diagnostic(
                        "detector-error",
                        f"{detector.name}: {type(exc).__name__}: {exc}",
                        record.source.display,
                        *_position(record, 0),
                    )
                )
        out.extend(_resolve_overlaps(found, record))


def _plaintext_finding(vector: Finding, beside: dict) -> Finding:
    """The input text recorded next to an embedding (a trace attribute): a leak in its own right.

    It is located at the text's key, so its finding id differs from the vector's, and it keeps the
    vector's hash so both can be tied together.
    """
    key = str(beside.get("attribute", ""))
    context = dict(vector.record_context)
    span = context.get("span")
    if isinstance(span, dict):
        context["span"] = {**span, "attribute": key, "vector_attribute": span.get("attribute")}
    return dataclasses.replace(
        vector,
        candidate=dataclasses.replace(vector.candidate, key=key, json_path=key),
        record_context=context,
        kind="plaintext-beside-vector",
        _memo={},  # its own ids and ECS fields (its key is the text's), not the vector's
    )


def _resolve_overlaps(found: list[_Located], record: Record) -> list[_Located]:
    """Where two detectors claim the same bytes, keep the more specific (earlier) one, then the longer."""
    tail = int(record.context.get("overlap_tail", 0)) if not record.nested else 0
    limit = len(record.data) - tail if tail else None
    found.sort(key=lambda x: (x.candidate.start, -x.candidate.end))
    kept: list[_Located] = []
    for item in found:
        if limit is not None and item.candidate.start >= limit:
            continue  # the next window of this long line reports it whole
        if kept and item.candidate.start < kept[-1].candidate.end:
            last = kept[-1]
            if (item.priority, -(item.candidate.end - item.candidate.start)) < (
                last.priority,
                -(last.candidate.end - last.candidate.start),
            ):
                kept[-1] = item
            continue
        kept.append(item)
    return kept


IGNORE_MARKER = prefilter.IGNORE_MARKER


def _ignored_lines(record: Record, markers: list[int] | None = None) -> frozenset[int]:
    """Lines a ``vecleak:ignore`` marker covers: its own line and the next (like ``# nosec``).

    ``markers`` are the offsets the prefilter found; without them, one substring search of the
    record. Newlines are only counted when a marker exists.
    """
    data = record.data
    if markers is None:
        markers = []
        at = data.find(IGNORE_MARKER)
        while at >= 0:
            markers.append(at)
            at = data.find(IGNORE_MARKER, at + len(IGNORE_MARKER))
    lines: set[int] = set()
    for at in markers:
        line = record.line + data.count(b"\n", 0, at)
        lines.update((line, line + 1))
    return frozenset(lines)


def _position(record: Record, start: int) -> tuple[int, int]:
    if record.nested:
        return record.line, record.offset
    return record.line + record.data.count(b"\n", 0, start), record.offset + start


def _positions(items: Iterable[_Located]) -> list[tuple[int, int]]:
    """Source line and offset of each candidate, counting newlines once per record, not once per hit."""
    items = list(items)
    out: list[tuple[int, int]] = [(0, 0)] * len(items)
    by_record: dict[int, list[int]] = {}
    for i, item in enumerate(items):
        rec = item.record
        if rec.nested:
            out[i] = (rec.line, rec.offset)
        else:
            by_record.setdefault(id(rec), []).append(i)
    for idx in by_record.values():
        rec = items[idx[0]].record
        starts = [items[i].candidate.start for i in idx]
        for i, start, before in zip(idx, starts, newlines_before(rec.data, starts), strict=True):
            out[i] = (rec.line + before, rec.offset + start)
    return out
