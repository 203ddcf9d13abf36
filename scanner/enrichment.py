"""Sampled inversion for ``vecleak scan --invert``: one worker thread, a bounded queue, off the hot path.

Inversion costs seconds per vector on a CPU, detection microseconds, so only a sample is inverted:
the first ``sample`` distinct vectors of each (source, top model guess) pair, and only when that
model is one vecleak runs locally. A sampled finding's alerts are *held* (already admitted by dedup
and baseline, so repeats of the vector count as duplicates) until its inversion finishes; the engine
then evaluates the rules again with ``finding.inversion`` set and delivers one alert per id:
the held ones, carrying ``vecleak.inversion``, plus any new ones (``pii:``/``text_regex:`` rules).
Every other alert streams at once. Sinks are only called from the engine's thread; this worker
computes and never delivers.

This module imports no torch: the enricher (``scanner.inversion``) loads the model on first use,
inside the worker thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from scanner.model import Alert, Finding


class Enricher(Protocol):
    """``scanner.inversion.InversionEnricher`` or anything with the same hook (see scanner.daemon)."""

    def enrich(self, finding: Finding) -> dict[str, Any] | None: ...


@dataclass(slots=True)
class Pending:
    """A sampled finding and the alerts held for it until its inversion is done."""

    finding: Finding
    held: list[Alert] = field(default_factory=list)
    fields: dict[str, Any] | None = None
    error: str | None = None


def _runs_locally(model: str) -> bool:
    from scanner.inversion.models import resolve  # numpy + stdlib: no torch

    try:
        resolve(model)
    except (KeyError, ValueError, FileNotFoundError, OSError):
        return False
    return True


class SampledInversion:
    """Picks the sample, feeds the worker, and hands finished items back to the engine's thread.

    At most ``queue_size`` sampled findings are outstanding (queued, being inverted, or finished but
    not yet collected): :meth:`submit` waits for a slot, yielding what finished meanwhile, so memory
    stays bounded on a scan with many sources while nothing is skipped.
    """

    def __init__(
        self,
        enricher: Enricher | Callable[[], Enricher],
        sample: int = 3,
        queue_size: int = 8,
        local: Callable[[str], bool] = _runs_locally,
    ) -> None:
        self._enricher = enricher
        self.sample = sample
        self._local = local
        self._local_cache: dict[str, bool] = {}
        self._picked: dict[tuple[str, str], set[str]] = {}
        self._todo: queue.Queue[Pending | None] = queue.Queue()
        self._done: queue.Queue[Pending] = queue.Queue()
        self._slots = threading.Semaphore(queue_size)
        self.outstanding = 0
        self.submitted = 0
        self._worker: threading.Thread | None = None

    def wants(self, finding: Finding) -> bool:
        """True for the first ``sample`` distinct vectors per (source, local top model) pair."""
        top = finding.model
        if top is None or finding.candidate.truncated or self.sample <= 0:
            return False
        local = self._local_cache.get(top.model)
        if local is None:
            local = self._local_cache[top.model] = self._local(top.model)
        if not local:
            return False
        picked = self._picked.setdefault((finding.source.identity, top.model), set())
        sha = finding.sha256
        if sha in picked or len(picked) >= self.sample:
            return False
        picked.add(sha)
        return True

    def submit(self, item: Pending) -> list[Pending]:
        """Queue one sampled finding; returns the items that finished while it waited for a slot."""
        finished: list[Pending] = []
        while not self._slots.acquire(timeout=0.05):
            finished += self.completed()
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="vecleak-invert", daemon=True)
            self._worker.start()
        self.outstanding += 1
        self.submitted += 1
        self._todo.put(item)
        return finished

    def completed(self) -> Iterator[Pending]:
        """Finished items, without waiting."""
        while True:
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                return
            yield self._collect(item)

    def wait(self, on_progress: Callable[[int, int], None] | None = None) -> Iterator[Pending]:
        """Every outstanding item as it finishes; ``on_progress(done, total)`` after each."""
        total, done = self.outstanding, 0
        while self.outstanding:
            item = self._done.get()
            done += 1
            yield self._collect(item)
            if on_progress is not None:
                on_progress(done, total)

    def close(self) -> None:
        if self._worker is not None:
            self._todo.put(None)
            self._worker.join(timeout=5)
            self._worker = None

    def _collect(self, item: Pending) -> Pending:
        self.outstanding -= 1
        self._slots.release()
        return item

    def _work(self) -> None:
        enricher: Enricher | None = None
        while True:
            item = self._todo.get()
            if item is None:
                return
            try:
                if enricher is None:
                    enricher = self._enricher() if callable(self._enricher) else self._enricher
                item.fields = enricher.enrich(item.finding)
            except Exception as exc:  # a model that fails to load or run must not stop the scan
                # The type and message only: exceptions from the search never hold decoded text.
                item.error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self._done.put(item)
