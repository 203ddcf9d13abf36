"""Drives one run: records in, alerts out. Rules, dedup, baselines and counting live here.

Sources only produce records and sinks only deliver, so ``scan``, ``watch``, ``es scan`` and
``serve --otlp`` share this loop and differ only in what they feed it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from scanner.enrichment import Pending, SampledInversion
from scanner.fingerprint import SourcePool
from scanner.fingerprint.aggregate import poolable
from scanner.fingerprint.scoring import EVIDENCE_MEMO
from scanner.model import Alert, Candidate, Diagnostic, Finding, Level, Record
from scanner.noise import GROUPED, RATE_LIMITED, NoiseControl
from scanner.pipeline import Pipeline, ScanResult
from scanner.rules import RuleSet
from scanner.sinks import Sink

BASELINE_VERSION = 1


@dataclass
class Stats:
    records: int = 0
    bytes: int = 0
    findings: int = 0
    alerts: int = 0
    duplicates: int = 0
    baselined: int = 0
    ignored: int = 0
    rejected: int = 0
    grouped: int = 0
    rate_limited: int = 0
    rollups: int = 0
    inverted: int = 0
    diagnostics: Counter[str] = field(default_factory=Counter)
    levels: Counter[str] = field(default_factory=Counter)
    highest: Level | None = None
    started: float = field(default_factory=time.monotonic)

    def as_dict(self, files: int = 0) -> dict[str, Any]:
        return {
            "files": files,
            "records": self.records,
            "bytes": self.bytes,
            "findings": self.findings,
            "alerts": self.alerts,
            "duplicates": self.duplicates,
            "baselined": self.baselined,
            "ignored": self.ignored,
            "rejected": self.rejected,
            "grouped": self.grouped,
            "rate_limited": self.rate_limited,
            "rollups": self.rollups,
            "inverted": self.inverted,
            "diagnostics": sum(self.diagnostics.values()),
            "diagnostics_by_kind": dict(self.diagnostics),
            "alerts_by_level": dict(self.levels),
            "seconds": time.monotonic() - self.started,
        }


@dataclass(frozen=True, slots=True)
class Needs:
    """What :meth:`Engine.feed_scanned` reads of a finding beyond its vector summary (hash, size,
    norm, preview): the raw values (``--invert`` inverts them) and the fingerprint evidence the
    pipeline left on it (the source pool reuses it rather than computing it from the values again).

    A scan worker (:mod:`scanner.parallel`) trims its results to this (:meth:`trim`) before sending them.
    """

    values: bool = True
    evidence: bool = True

    def trim(self, result: ScanResult) -> None:
        """Drop from ``result``'s findings what the engine will not read: the values (1.5 KB of a 2 KB
        384-d finding, and an array to pickle and rebuild) and the evidence."""
        if self.values:
            return
        if not self.evidence:
            for f in result.findings:
                f._memo.pop(EVIDENCE_MEMO, None)
                if f.candidate.values is not None:
                    f.candidate.drop_values()
            return
        # The pool reuses the pipeline's evidence for a group (source, size) of one record only when
        # every finding of the group has it; otherwise it computes the group's from all their values
        # (a packed binary vector has none: its size is not its dimension). Those values are kept.
        recompute = {_group(f) for f in result.findings if EVIDENCE_MEMO not in f._memo and poolable(f)}
        for f in result.findings:
            if f.candidate.values is not None and not (recompute and poolable(f) and _group(f) in recompute):
                f.candidate.drop_values()


def _group(f: Finding) -> tuple[str, int]:
    """A finding's group in the source pool."""
    return f.source.identity, f.candidate.summarize().length


class Engine:
    """One scan's state: which alert fingerprints were already sent, and what was counted.

    ``stats.alerts`` counts distinct alerts (after dedup and baseline), whether each was sent on its
    own or folded into a roll-up by :mod:`scanner.noise`; ``grouped``/``rate_limited`` say how many
    were folded and ``rollups`` how many summary events were sent. ``sent`` holds the events sinks got.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        rules: RuleSet,
        sinks: Sequence[Sink],
        baseline: frozenset[str] = frozenset(),
        enrich: Callable[[list[Finding]], None] | None = None,
        noise: NoiseControl | None = None,
        pool: SourcePool | bool = True,
        inversion: SampledInversion | None = None,
    ) -> None:
        self.pipeline = pipeline
        # One source, one model: the evidence of a source's earlier vectors upgrades its weak ones,
        # per record and before the rules, so no alert waits for later records.
        self.pool = SourcePool(pipeline.fingerprinter) if pool is True else pool or None
        self.rules = rules
        self.sinks = list(sinks)
        self.baseline = baseline
        self.enrich = enrich
        self.noise = noise if noise is not None and noise.enabled else None
        self.inversion = inversion
        self.stats = Stats()
        self.seen: set[str] = set()
        self.sent: list[Alert] = []

    @property
    def needs(self) -> Needs:
        """What :meth:`feed_scanned` will read of the findings it is given."""
        return Needs(values=self.inversion is not None, evidence=self.pool is not None)

    def run(
        self, items: Iterable[Record | Diagnostic], on_record: Callable[[Record], None] | None = None
    ) -> Stats:
        for item in items:
            if isinstance(item, Diagnostic):
                self.report(item)
                continue
            self.feed(item)
            if on_record is not None:
                on_record(item)
        return self.stats

    def feed(self, record: Record) -> list[Alert]:
        """Scan one record and deliver its new alerts; returns them (the daemon checkpoints after)."""
        return self.feed_scanned(len(record.data), self.pipeline.scan(record))

    def feed_scanned(self, size: int, result: ScanResult) -> list[Alert]:
        """:meth:`feed` for a record of ``size`` bytes that was scanned elsewhere (a worker process
        of :mod:`scanner.parallel`): everything stateful happens here, in the order records come."""
        self.stats.records += 1
        self.stats.bytes += size
        return self._consume(result)

    def feed_batch(
        self, records: Sequence[Record], decoded: Sequence[tuple[Record, Candidate]] = ()
    ) -> list[Alert]:
        """:meth:`feed` for many records at once (and arrays already decoded), judged in one batch."""
        self.stats.records += len(records) + len(decoded)
        self.stats.bytes += sum(len(r.data) for r in records) + sum(c.values.nbytes for _, c in decoded)
        return self._consume(self.pipeline.scan_batch(records, decoded))

    def _consume(self, result: ScanResult) -> list[Alert]:
        self.stats.rejected += result.rejected
        self.stats.ignored += result.ignored
        for diag in result.diagnostics:
            self.report(diag)
        if result.findings and self.pool is not None:
            self.pool.apply(result.findings)
        if result.findings and self.enrich is not None:
            self.enrich(result.findings)
        delivered = []
        for finding in result.findings:
            self.stats.findings += 1
            admitted = [alert for alert in self.rules.evaluate(finding) if self._admit(alert)]
            if self.inversion is not None and self.inversion.wants(finding):
                # Held, not sent: delivered once, with its inversion, by _enriched.
                for item in self.inversion.submit(Pending(finding, admitted)):
                    delivered += self._enriched(item)
                continue
            for alert in admitted:
                delivered += self.deliver(alert)
        if self.inversion is not None:
            for item in self.inversion.completed():
                delivered += self._enriched(item)
        if delivered:
            for sink in self.sinks:
                end_record = getattr(sink, "end_record", None)
                if end_record is not None:
                    end_record()  # a buffered sink writes once per record, and nothing waits past it
        return delivered

    def _enriched(self, item: Pending) -> list[Alert]:
        """Deliver a sampled finding once its inversion is done: held alerts, then newly firing rules.

        The held alerts are sent even if a rule stopped matching (inversion may confirm the model):
        they were detections before the inversion and must not be lost.
        """
        finding = item.finding
        if item.error is not None:
            self.report(
                Diagnostic(
                    "inversion_failed", item.error, finding.source.display, finding.line, finding.offset
                )
            )
        if item.fields:
            finding.inversion = dict(item.fields)
            self.stats.inverted += 1
        out: list[Alert] = []
        for alert in item.held:
            out += self.deliver(alert)
        if finding.inversion:
            held = {alert.fingerprint for alert in item.held}
            for alert in self.rules.evaluate(finding):
                if alert.fingerprint not in held and self._admit(alert):
                    out += self.deliver(alert)
        return out

    def wait_inversions(self, on_progress: Callable[[int, int], None] | None = None) -> list[Alert]:
        """Finish every queued inversion and deliver its alerts; scans call this before close."""
        out: list[Alert] = []
        if self.inversion is not None:
            for item in self.inversion.wait(on_progress):
                out += self._enriched(item)
                for sink in self.sinks:
                    end_record = getattr(sink, "end_record", None)
                    if end_record is not None:
                        end_record()  # each result shows up as it lands, not at close
            self.inversion.close()
        return out

    def _admit(self, alert: Alert) -> bool:
        key = alert.fingerprint
        if key in self.baseline:
            self.stats.baselined += 1
            return False
        if key in self.seen:
            self.stats.duplicates += 1
            return False
        self.seen.add(key)
        return True

    def deliver(self, alert: Alert) -> list[Alert]:
        """Count a new alert, then send it or fold it into a roll-up; returns the events sent."""
        self.stats.alerts += 1
        self.stats.levels[alert.level.name] += 1
        if self.stats.highest is None or alert.level > self.stats.highest:
            self.stats.highest = alert.level
        if self.noise is None:
            self._send(alert)
            return [alert]
        out, verdict = self.noise.admit(alert)
        if verdict == GROUPED:
            self.stats.grouped += 1
        elif verdict == RATE_LIMITED:
            self.stats.rate_limited += 1
        for event in out:
            self._send(event)
        return out

    def tick(self) -> list[Alert]:
        """Send the roll-ups of windows that have closed; long-running callers call it when idle."""
        out = self.noise.expire() if self.noise is not None else []
        for event in out:
            self._send(event)
        return out

    def _send(self, alert: Alert) -> None:
        if alert.group is not None:
            self.stats.rollups += 1
        self.sent.append(alert)
        for sink in self.sinks:
            if alert.outputs and getattr(sink, "routed", False) and sink.name not in alert.outputs:
                continue  # the rule names its outputs; stdout formats (not routed) always get it
            sink.send(alert)

    def report(self, diag: Diagnostic) -> None:
        self.stats.diagnostics[diag.kind] += 1
        for sink in self.sinks:
            sink.diagnostic(diag)

    def close(self, files: int = 0) -> dict[str, Any]:
        self.wait_inversions()  # a no-op when the caller already waited (with its progress message)
        if self.noise is not None:
            for event in self.noise.flush():
                self._send(event)
        summary = self.stats.as_dict(files)
        for sink in self.sinks:
            sink.close(summary)
        return summary


def load_baseline(path: str) -> frozenset[str]:
    """Alert fingerprints to suppress. The file holds hashes only, never vectors or text."""
    with open(path, "rb") as fh:
        doc = orjson.loads(fh.read())
    if (
        not isinstance(doc, dict)
        or doc.get("version") != BASELINE_VERSION
        or not isinstance(doc.get("fingerprints"), list)
    ):
        raise ValueError(
            f"{path}: not a vecleak baseline (expected version {BASELINE_VERSION} with a fingerprints list)"
        )
    return frozenset(str(x) for x in doc["fingerprints"])


def write_baseline(path: str, alerts: Iterable[Alert], previous: frozenset[str] = frozenset()) -> int:
    fingerprints = sorted(previous | {a.fingerprint for a in alerts})
    doc = {"version": BASELINE_VERSION, "tool": "vecleak", "fingerprints": fingerprints}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return len(fingerprints)
