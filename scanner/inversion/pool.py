"""Many vectors at once: ``jobs`` worker processes, each with its own :class:`Inverter`, in input order.

Why processes, not more torch threads: a search scores batches of about a hundred short texts, and
torch's intra-op threads split each small matmul, which scales poorly. On the project's 2-core
machine one forward takes 6.4 ms a text on one thread and 4.1 ms on two (1.55x), while two
one-thread processes each keep about one core's rate. Independent vectors are the natural unit
of parallel work, and the search's Python between forwards runs in parallel too.

``jobs`` 1 inverts in this process, with no worker: the one code path for one vector and for many.
Workers are spawned, not forked: a parent that has already run torch holds OpenMP thread pools
that a forked child cannot use safely. They all start, and load their own model (seconds), when
the pool is made, so a pool pays off from a handful of vectors up.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from . import InversionInputError, InversionResult, Inverter

Item = TypeVar("Item")
# Vectors queued per worker beyond the one it is inverting: enough to keep it busy, few enough that
# a long input is read as it is consumed.
AHEAD = 2


@dataclass(slots=True)
class Inverted:
    """One vector's outcome: a result (with known-text matches when asked for), or the reason it
    could not be inverted. ``cpu_seconds`` is the worker's CPU time for it (threads summed)."""

    result: InversionResult | None = None
    known: list[dict[str, object]] | None = None
    error: str | None = None
    cpu_seconds: float = 0.0


def invert_one(inverter: Inverter, vector: np.ndarray, known: Any = None) -> Inverted:
    """Invert ``vector``; a vector that cannot be inverted becomes an ``error``, never an exception.

    ``known`` is a :class:`~scanner.inversion.match.KnownTextMatcher` (or None): matches other than
    ``none`` are kept, best first."""
    c0 = time.process_time()
    try:
        result = inverter.invert(vector)
    except InversionInputError as exc:
        return Inverted(error=str(exc), cpu_seconds=time.process_time() - c0)
    matches = None
    if known is not None:
        found = known.match(inverter.check(vector), inverted_text=result.text)
        matches = [m.to_dict() for m in found if m.relation != "none"]
    return Inverted(result=result, known=matches, cpu_seconds=time.process_time() - c0)


class InversionPool:
    """Inverts vectors with ``jobs`` workers; :meth:`map` yields the outcomes in input order.

    ``factory`` builds a worker's :class:`Inverter` (a picklable callable, such as a
    :func:`functools.partial` of the class, since spawned workers unpickle it); ``known`` are
    sensitive strings each worker matches every vector against."""

    def __init__(self, factory: Callable[[], Inverter], jobs: int = 1, known: Sequence[str] = ()) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self._local: tuple[Inverter, Any] | None = None
        self._executor: ProcessPoolExecutor | None = None
        if jobs == 1:
            self._local = _load(factory, list(known))
        else:
            with _registry:
                if _stopped:
                    raise RuntimeError("this process has stopped its inversion workers (stop_all)")
                self._executor = ProcessPoolExecutor(
                    max_workers=jobs,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start,
                    initargs=(factory, list(known), os.getpid()),
                )
                _open.add(self)
            try:
                self._wait_until_loaded()
            except BaseException:
                self.close(terminate=True)
                raise

    def _wait_until_loaded(self) -> None:
        """Start every worker and return once each has loaded its model: a model that cannot load
        fails here (``BrokenProcessPool``), not at the first vector, and the loads stay out of
        the time the vectors take. A worker answers only after its initializer, so a pid seen
        is a worker loaded; one that answers twice was quicker than the others, so ask again."""
        executor = self._executor
        if executor is None:  # ``stop_all`` got here first, from another thread
            raise RuntimeError("the pool was closed while its workers started")
        seen: set[int] = set()
        while len(seen) < self.jobs:
            asks = [executor.submit(_loaded) for _ in range(self.jobs - len(seen))]
            seen.update(ask.result() for ask in asks)

    def map(
        self, items: Iterable[Item], vector_of: Callable[[Item], np.ndarray | None]
    ) -> Iterator[tuple[Item, Inverted | None]]:
        """``(item, outcome)`` for every item, in order. An item whose ``vector_of`` is None (a line
        already known to be bad) gets None, in its place, without going to a worker.

        With workers, an outcome is yielded once the next item has been read or the input has
        ended, so a slow stream (a pipe) holds finished outcomes until its next line. (With
        ``jobs`` 1 each outcome is done when submitted, and yielded at once.)"""
        pending: deque[tuple[Item, Future[Inverted] | None]] = deque()
        for item in items:
            vector = vector_of(item)
            pending.append((item, None if vector is None else self.submit(vector)))
            while len(pending) > self.jobs * (1 + AHEAD) or (pending and _settled(pending[0][1])):
                yield _take(pending)
        while pending:
            yield _take(pending)

    def submit(self, vector: np.ndarray) -> Future[Inverted]:
        """One vector's outcome, to come; safe to call from several threads at once. With ``jobs``
        1 it is inverted here, in the calling thread, before this returns."""
        if self._executor is not None:
            return self._executor.submit(_invert, vector)
        assert self._local is not None, "submit() on a closed pool"
        done: Future[Inverted] = Future()
        done.set_result(invert_one(self._local[0], vector, self._local[1]))
        return done

    def close(self, terminate: bool = False) -> None:
        """Stop the workers: after the vectors they are inverting, or at once with ``terminate``
        (on Ctrl-C or an error, where a worker could otherwise run a minute more)."""
        executor, self._executor = self._executor, None
        _open.discard(self)
        if executor is None:
            return
        if terminate:
            # Python 3.14 has this; before it, the worker processes are the executor's own mapping.
            stop = getattr(executor, "terminate_workers", None)
            if stop is not None:
                stop()
            else:
                for process in list(getattr(executor, "_processes", {}).values()):
                    process.terminate()
        executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> InversionPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(terminate=kind is not None)


# Pools with workers, until closed: what ``stop_all`` stops.
_open: weakref.WeakSet[InversionPool] = weakref.WeakSet()
_stopped = False
_registry = threading.Lock()  # a pool is either in ``_open`` before ``stop_all`` looks, or refused


def stop_all() -> None:
    """Terminate the workers of every pool still open, and refuse new pools from then on: the
    last call of a process. The CLI makes it, so that a run cut short (Ctrl-C during ``scan
    --invert``) does not wait at exit for the vectors being inverted, nor for a pool that another
    inversion thread would start once the first one is gone."""
    global _stopped
    with _registry:
        _stopped = True
        pools = list(_open)
    for pool in pools:
        pool.close(terminate=True)


def _load(factory: Callable[[], Inverter], known: list[str]) -> tuple[Inverter, Any]:
    inverter = factory()
    if not known:
        return inverter, None
    from .match import KnownTextMatcher

    return inverter, KnownTextMatcher(inverter.encoder, known)


# A worker process's inverter and matcher, loaded once by the pool's initializer.
_in_worker: tuple[Inverter, Any] | None = None


def _start(factory: Callable[[], Inverter], known: list[str], parent: int) -> None:
    global _in_worker
    # Ctrl-C reaches the whole process group: the parent decides, and stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _in_worker = _load(factory, known)


def _exit_with_parent(parent: int) -> None:
    """A parent killed outright (SIGKILL, SIGTERM) cannot stop its workers, and a worker waiting
    for its next vector would wait forever, holding its model's memory: it goes too. ``parent``
    comes from the parent itself, in case it died before this worker got here."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _loaded() -> int:
    # A pause, so that a worker already loaded does not answer every ask while another loads.
    time.sleep(0.1)
    return os.getpid()


def _invert(vector: np.ndarray) -> Inverted:
    assert _in_worker is not None, "a pool worker runs _start first"
    inverter, known = _in_worker
    return invert_one(inverter, vector, known)


def _settled(future: Future[Inverted] | None) -> bool:
    return future is None or future.done()


def _take(pending: deque[tuple[Item, Future[Inverted] | None]]) -> tuple[Item, Inverted | None]:
    item, future = pending.popleft()
    return item, None if future is None else future.result()


__all__ = ["InversionPool", "Inverted", "invert_one", "stop_all"]
