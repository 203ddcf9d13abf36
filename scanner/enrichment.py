"""Sampled inversion for ``vecleak scan --invert``: worker threads, a bounded queue, off the hot path.

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
    seq: int = 0  # its place among the submitted: finished items are handed back in this order


def _runs_locally(model: str) -> bool:
    from scanner.inversion.models import resolve  # numpy + stdlib: no torch

    try:
        resolve(model)
    except (KeyError, ValueError, FileNotFoundError, OSError):
        return False
    return True


class SampledInversion:
    """Picks the sample, feeds the worker threads, and hands finished items back to the engine's thread.

    ``workers`` threads call the one enricher at once (``InversionEnricher(jobs=N)`` gives each
    its own worker process); one thread, the default, inverts one finding at a time.

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
        workers: int = 1,
    ) -> None:
        self._enricher = enricher
        self._made: Enricher | None = None
        self._making = threading.Lock()
        self.workers = workers
        self.sample = sample
        self._local = local
        self._local_cache: dict[str, bool] = {}
        self._picked: dict[tuple[str, str], set[str]] = {}
        self._todo: queue.Queue[Pending | None] = queue.Queue()
        self._done: queue.Queue[Pending] = queue.Queue()
        self._slots = threading.Semaphore(queue_size)
        self.outstanding = 0
        self.submitted = 0
        self._threads: list[threading.Thread] = []
        self._finished: dict[int, Pending] = {}  # done, waiting for an earlier item to be handed back
        self._handed = 0

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
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._work, name=f"vecleak-invert-{k}", daemon=True)
                for k in range(self.workers)
            ]
            for thread in self._threads:
                thread.start()
        item.seq = self.submitted
        self.outstanding += 1
        self.submitted += 1
        self._todo.put(item)
        return finished

    def completed(self) -> Iterator[Pending]:
        """Finished items, in the order they were submitted, without waiting: with several worker
        threads a later item can finish first, and it waits here for those before it, so the
        alerts come out as ``workers`` 1 gives them."""
        while True:
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                break
            self._finished[item.seq] = item
        while self._handed in self._finished:
            yield self._collect(self._finished.pop(self._handed))

    def wait(self, on_progress: Callable[[int, int], None] | None = None) -> Iterator[Pending]:
        """Every outstanding item, in submission order, as it finishes; ``on_progress(done,
        total)`` after each."""
        total, done = self.outstanding, 0
        while self.outstanding:
            while self._handed not in self._finished:
                item = self._done.get()
                self._finished[item.seq] = item
            done += 1
            yield self._collect(self._finished.pop(self._handed))
            if on_progress is not None:
                on_progress(done, total)

    def close(self) -> None:
        for _ in self._threads:
            self._todo.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        stop = getattr(self._made, "close", None)  # an enricher with worker processes stops them
        if stop is not None:
            stop()

    def _collect(self, item: Pending) -> Pending:
        self.outstanding -= 1
        self._handed += 1
        self._slots.release()
        return item

    def _enricher_once(self) -> Enricher:
        """The enricher, made on first use by whichever thread gets there first, then shared."""
        with self._making:
            if self._made is None:
                self._made = self._enricher() if callable(self._enricher) else self._enricher
            return self._made

    def _work(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                return
            try:
                item.fields = self._enricher_once().enrich(item.finding)
            except Exception as exc:  # a model that fails to load or run must not stop the scan
                # The type and message only: exceptions from the search never hold decoded text.
                item.error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self._done.put(item)
