"""``vecleak scan --jobs N``: records scanned in worker processes, everything else here, in order.

**What runs where.** Workers run :meth:`Pipeline.scan` (prefilter, detectors, classifier,
fingerprint) on records they read themselves: that is where a scan spends its CPU. The main process
keeps everything with state or order: the source pool, rules, dedup, baseline, noise control,
inversion sampling, sinks, progress and summary. It replays each worker's results through
:meth:`Engine.feed_scanned` in input order, record by record, so the output is the one ``--jobs 1``
gives: same alerts in the same order, same lines, same diagnostics and counts. Workers also hash
each finding's vector and summarise it (:class:`~scanner.model.VectorSummary`), and send the values
only when the main process reads them (``--invert``; :class:`~scanner.engine.Needs`): of a 384-d
finding's 2 KB, 1.5 KB are its values, and an array costs more to pickle and rebuild than the rest.

**Tasks.** A large plain file is cut into ranges of about ``range_size`` bytes, at cuts the serial
reader makes anyway (:func:`~scanner.sources.files.split_points`), and a worker reads its range
from the file itself (:func:`~scanner.sources.files.read_range`): no file bytes cross a pipe, only
results, which are a small fraction of them. A range counts its lines from 1 and returns its
newline count; the lines of the earlier ranges are added here. Every other file is one task, read
whole by a worker: a small file, a compressed one (a gzip, bz2 or xz stream cannot be entered in
the middle), a trace export (decoded as one document). Stdin is read here, in the main process: it
can be read only once and in order, and a worker could only get its bytes through a pipe.

A file's ranges are smaller than ``range_size`` when it has fewer than ``SHARES`` of them per
worker (down to one block): the results are replayed in order, so the worker still busy with the
last range holds the scan back by that range's length (a 168 MB file in 16 MB ranges over two
workers left one idle for up to a tenth of the scan).

**Memory** stays bounded: at most ``DEPTH`` tasks per worker are in flight (more when they are
small files, up to ``DEPTH`` ranges' worth of bytes and ``MAX_TASKS``, so that tiny files do not
leave workers waiting for the next one); a task's results come as one message per ``range_size``
bytes read, and no more than ``AHEAD`` messages of a task that is
not yet being replayed are taken from its worker (which then waits on its pipe).

**Processes** are forked (Linux; ``fork`` is the default there): a worker inherits the rules,
detectors, fingerprint catalogue and compiled Hyperscan database already loaded in the main process
and loads nothing per task. The pool is started before the progress bar and the inversion thread
exist, and stdout is flushed first, so that no half-written output is copied. A worker that dies ends the scan with a
:class:`WorkerError` rather than a hang; Ctrl-C stops the main process, which terminates the workers
(they ignore SIGINT, so that only the main process decides).
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing
import os
import signal
import sys
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from scanner import prefilter
from scanner.engine import Engine, Needs
from scanner.model import Diagnostic, Record
from scanner.pipeline import Pipeline, ScanResult
from scanner.sources.files import MARK_BYTES, FileSource, Mark, Started, read_range, split_points
from scanner.sources.scanstate import FilePlan, ScanState, Tracker

RANGE_SIZE = 16 * 1024 * 1024  # four 4 MB blocks, ~40 ms of work: enough tasks to even out workers
SHARES = 8  # ranges per worker a file is cut into at least, down to one block a range
DEPTH = 2  # tasks in flight per worker: one running, one queued, so no worker waits for the next
MAX_TASKS = 64  # per worker, however small the files
AHEAD = 2  # result messages taken ahead from a worker before its task's turn
ALL = Needs()  # everything a finding holds is sent: for callers that do not say what they read


class WorkerError(RuntimeError):
    """A worker process died or failed; the scan cannot go on with its results missing."""


def available_cpus(cgroup_root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> int:
    """The CPUs ``--jobs auto`` uses: those this process may run on (``taskset``, cpusets), and no
    more than its CPU quota (a Kubernetes ``limits.cpu``, ``docker --cpus``) rounded up.

    A pod limited to 2 CPUs on a 64-core node sees 64 CPUs in its affinity mask; 64 workers there
    would only be throttled.
    """
    # No affinity masks on some platforms: all CPUs, then.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(cgroup_root, proc_cgroup)
    return max(1, min(cpus, math.ceil(quota))) if quota is not None else cpus


def cpu_quota(cgroup_root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> float | None:
    """CPUs' worth of time this process's cgroups allow (CFS quota / period), or None when unlimited.

    cgroup v2 keeps ``cpu.max`` (``"200000 100000"`` or ``"max 100000"``); v1 keeps
    ``cpu.cfs_quota_us`` (-1: none) and ``cpu.cfs_period_us``. Every level from the process's own
    cgroup up to the root can set one; the smallest applies. Inside a container the path listed in
    ``/proc/self/cgroup`` may not exist under the container's mount, whose root is then its own cgroup.
    """
    try:
        with open(proc_cgroup, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            mounts = [cgroup_root, os.path.join(cgroup_root, "unified")]
            read = _cpu_max_v2
        elif "cpu" in controllers.split(","):
            mounts = [os.path.join(cgroup_root, name) for name in (controllers, "cpu", "cpu,cpuacct")]
            read = _cfs_quota_v1
        else:
            continue
        steps = [step for step in path.split("/") if step]
        for mount in dict.fromkeys(mounts):
            for depth in range(len(steps), -1, -1):
                limit = read(os.path.join(mount, *steps[:depth]))
                if limit is not None:
                    limits.append(limit)
    return min(limits) if limits else None


def _cpu_max_v2(folder: str) -> float | None:
    try:
        with open(os.path.join(folder, "cpu.max"), encoding="ascii") as fh:
            quota, period = fh.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _cfs_quota_v1(folder: str) -> float | None:
    try:
        with open(os.path.join(folder, "cpu.cfs_quota_us"), encoding="ascii") as fh:
            quota = int(fh.read())
        with open(os.path.join(folder, "cpu.cfs_period_us"), encoding="ascii") as fh:
            period = int(fh.read())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Task:
    """One file, one range of a file, or stdin (``real == "-"``, read in the main process)."""

    display: str
    real: str
    size: int
    start: int = 0
    block_end: int = 0
    stop: int | None = None
    ranged: bool = False
    first: bool = True  # the first range of its file (or a whole file)
    line: int = 1  # the line at ``start`` of a first range (``scan --state`` resumes mid-file)
    plan: FilePlan | None = None  # ``scan --state``: the file's plan; its mark is tracked
    needs: Needs = ALL  # what the main process reads of the findings: the rest is not sent


def plan(
    source: FileSource,
    targets: Iterable[tuple[str, str]],
    range_size: int,
    state: ScanState | None = None,
    needs: Needs = ALL,
    jobs: int = 1,
) -> Iterator[Task]:
    """The tasks for ``targets`` (from :meth:`FileSource.targets`), in order, planned as they are needed.

    With ``state`` (``scan --state``), a file with nothing new has no task, and a resumed file's
    tasks start at its mark: the first range there, the others at the cuts a serial read from
    there makes.
    """
    for display, real in targets:
        size = 0
        if real != "-":
            with contextlib.suppress(OSError):
                size = os.path.getsize(real)
        fp = state.plan(display, real) if state is not None and real != "-" else None
        if fp is not None and fp.how == "unchanged":
            source.progress.done += size
            assert state is not None
            state.finish(fp, None, None, None)
            continue
        at = fp.resume.at if fp is not None and fp.resume is not None else None
        first, line = (at.offset, at.line) if at is not None else (0, 1)
        tracked = fp if fp is not None and fp.key is not None else None
        ranges = range_for(size - first, range_size, source.block_size, jobs)
        points = split_points(real, source.block_size, ranges, first) if real != "-" else None
        if points is None:
            yield Task(display, real, size - first, plan=tracked, needs=needs)
            continue
        for i, (start, block_end) in enumerate(points):
            stop = points[i + 1][0] if i + 1 < len(points) else None
            yield Task(
                display,
                real,
                (stop or size) - start,
                start,
                block_end,
                stop,
                True,
                i == 0,
                line,
                tracked,
                needs,
            )


Event = Diagnostic | tuple[int, ScanResult]  # an input problem, or a record's size and scan result


def range_for(size: int, range_size: int, block_size: int, jobs: int) -> int:
    """The range size for ``size`` bytes over ``jobs`` workers: ``range_size``, or less so that each
    worker gets ``SHARES`` ranges, but never under one block (a range is whole blocks)."""
    if jobs <= 1:
        return range_size
    share = size // (jobs * SHARES) // block_size * block_size
    return max(block_size, min(range_size, share))


def _scan_task(task: Task, pipeline: Pipeline, limits: FileSource, batch: int) -> Iterator[tuple]:
    """A task's messages: ``("batch", events)`` per ``batch`` bytes, then ``("done", events, newlines,
    files opened)``. Events are in the order the serial reader yields them."""
    if task.ranged:
        if task.first and task.plan is not None and task.plan.resume is not None:
            _check_still_at(task)
        items = read_range(task.display, task.real, task.start, task.block_end, task.stop, limits)
    else:
        opened = limits.progress.files
        items = limits.read_one(task.display, task.real, task.plan.resume if task.plan else None)
    tracker = Tracker() if task.plan is not None else None
    if tracker is not None:
        items = tracker.watch(items)
    events: list[Event] = []
    size = 0
    while True:
        try:
            item = next(items)
        except StopIteration as end:
            returned = end.value
            break
        if isinstance(item, Diagnostic):
            events.append(item)
            continue
        assert isinstance(item, Record)
        result = pipeline.scan(item)
        task.needs.trim(result)
        events.append((len(item.data), result))
        size += len(item.data)
        if size >= batch:
            yield ("batch", events)
            events, size = [], 0
    files = int(task.first) if task.ranged else limits.progress.files - opened
    newlines = (returned or 0) if task.ranged else 0
    yield ("done", events, newlines, files, _tracked(task, tracker, None if task.ranged else returned))


def _check_still_at(task: Task) -> None:
    """``scan --state``: the ranges of a resumed file were planned from its mark; if the path names
    another file by now (a rotation in between), scanning them would skip that file's start. The
    scan stops instead (exit 1, the file keeps its old mark): the next run reads it right."""
    resume = task.plan.resume if task.plan is not None else None
    assert resume is not None and resume.at is not None
    want = len(resume.before)
    with open(task.real, "rb") as fh:
        fh.seek(resume.at.offset - want)
        if fh.read(want) != resume.before:
            raise OSError(f"{task.display}: replaced while being scanned (rotated?); run the scan again")


def _tracked(task: Task, tracker: Tracker | None, started: Started | None) -> tuple | None:
    """``scan --state``: where a whole file's read started, and the mark and end the task reached."""
    if tracker is None:
        return None
    if task.ranged:
        seed = b""
        if tracker.end is not None and task.start:
            with contextlib.suppress(OSError), open(task.real, "rb") as fh:
                fh.seek(max(0, task.start - MARK_BYTES))
                seed = fh.read(min(MARK_BYTES, task.start))
        return None, tracker.result(seed), tracker.end
    return started, tracker.result(started.before if started else b""), tracker.end


def _work(conn: Connection, pipeline: Pipeline, limits: FileSource, batch: int, others: list) -> None:
    """A worker's loop: tasks in, messages out, until told to stop or the main process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while the pool forked it
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the inherited stdout is the main process's
    for other in others:
        other.close()  # the main ends of earlier workers' pipes: they must see EOF when it exits
    # What the worker inherited (rules, catalogue, detectors) lives as long as it does: the garbage
    # collector need not walk it again each time a task's findings trigger a collection.
    gc.freeze()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        messages = _scan_task(task, pipeline, limits, batch)
        while True:
            try:
                msg = next(messages)
            except StopIteration:
                break
            except OSError as exc:  # the file went away or cannot be read: as the serial scan reports it
                msg = ("oserror", exc)
            except Exception:  # noqa: BLE001 - a bug; the main process reports it and stops the scan
                msg = ("crash", traceback.format_exc())
            try:
                conn.send(msg)
            except (OSError, EOFError):
                return  # the main process is gone
            if msg[0] in ("oserror", "crash"):
                break


@dataclass(eq=False, slots=True)
class _Worker:
    process: Any
    conn: Connection
    tasks: deque[int]  # sequence numbers of the tasks sent and not fully received, in order
    error: WorkerError | None = None  # it died: raised when its first unfinished task's turn comes


class Pool:
    """``jobs`` forked worker processes; :meth:`scan` runs a whole ``vecleak scan`` through them.

    Use as a context manager: leaving it stops the workers, and terminates them on an error or
    Ctrl-C.
    """

    def __init__(
        self, jobs: int, pipeline: Pipeline, limits: FileSource, range_size: int = RANGE_SIZE
    ) -> None:
        self.range_size = range_size
        self.workers: list[_Worker] = []
        ctx = multiprocessing.get_context("fork")
        prefilter.available()  # compiles the Hyperscan database once, here, for every worker to inherit
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        # Ctrl-C waits until every forked worker is recorded here: one that struck between a fork
        # and its record left that worker running after the main process had exited.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for _ in range(jobs):
                here, there = ctx.Pipe()
                others = [w.conn for w in self.workers]
                process = ctx.Process(
                    target=_work,
                    args=(there, pipeline, limits, range_size, others),
                    name="vecleak-scan",
                    daemon=True,  # never outlives the main process
                )
                process.start()
                there.close()
                self.workers.append(_Worker(process, here, deque()))
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C that came meanwhile: now
        except BaseException:
            self.terminate()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.terminate()

    def close(self) -> None:
        """Tell idle workers to stop and wait for them."""
        for w in self.workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        for w in self.workers:
            w.process.join(5)
        self.terminate()

    def terminate(self) -> None:
        for w in self.workers:
            if w.process.is_alive():
                w.process.terminate()
        for w in self.workers:
            w.process.join()
            w.conn.close()
        self.workers = []

    def scan(
        self,
        engine: Engine,
        source: FileSource,
        on_progress: Callable[[], None] | None = None,
        state: ScanState | None = None,
    ) -> None:
        """What ``engine.run(source.records())`` does, with the records scanned by the workers.

        With ``state``, what ``engine.run(scanstate.records(source, state))`` does.
        """
        items = source.targets()
        while True:
            try:
                engine.report(next(items))
            except StopIteration as end:
                targets = end.value
                break
        tasks = plan(source, targets, self.range_size, state, engine.needs, len(self.workers))
        self._run(engine, source, tasks, on_progress, state)

    def _run(
        self,
        engine: Engine,
        source: FileSource,
        tasks: Iterator[Task],
        on_progress: Callable[[], None] | None,
        state: ScanState | None = None,
    ) -> None:
        order: deque[tuple[int, Task]] = deque()
        inbox: dict[int, deque[tuple]] = {}
        owner: dict[int, _Worker] = {}
        capacity = len(self.workers) * DEPTH
        budget = capacity * self.range_size  # bytes in flight, for small files
        queued = 0  # bytes of the tasks in ``order``
        seq = 0
        shift = 0  # lines of a file's ranges before the one being replayed
        reached: tuple[Started | None, Mark | None, int | None] = (None, None, None)  # --state

        def refill() -> None:
            nonlocal seq, queued
            most = len(self.workers) * MAX_TASKS
            while len(order) < capacity or (queued < budget and len(order) < most):
                task = next(tasks, None)
                if task is None:
                    return
                seq += 1
                order.append((seq, task))
                queued += task.size
                if task.real != "-":
                    live = [w for w in self.workers if w.error is None] or self.workers
                    worker = min(live, key=lambda w: len(w.tasks))
                    worker.tasks.append(seq)
                    owner[seq] = worker
                    inbox[seq] = deque()
                    try:
                        worker.conn.send(task)
                    except OSError:  # it died: say so when this task's turn comes, not "broken pipe"
                        worker.error = worker.error or self._died(worker, dict(order))

        refill()
        while order:
            head, task = order[0]
            if task.real == "-":
                engine.run(source.read_one(task.display, task.real))
            else:
                box = inbox[head]
                while not box:
                    # The results before a failure are delivered, as a serial scan would have.
                    if owner[head].error is not None:
                        raise owner[head].error
                    self._receive(head, inbox, dict(order))
                msg = box.popleft()
                if msg[0] == "oserror":
                    raise msg[1]
                if msg[0] == "crash":
                    raise WorkerError(f"a scan worker failed on {task.display}:\n{msg[1].rstrip()}")
                if task.first:
                    shift = task.line - 1 if task.ranged else 0
                _replay(engine, msg[1], shift)
                if msg[0] == "batch":
                    continue
                if state is not None and task.plan is not None:
                    reached = _merge(task, reached if not task.first else (None, None, None), msg[4], shift)
                    if task.stop is None:  # its last task: the file is done
                        state.finish(task.plan, *reached)
                shift += msg[2]
                source.progress.files += msg[3]
                del inbox[head], owner[head]
            source.progress.done += task.size
            queued -= task.size
            order.popleft()
            refill()
            if on_progress is not None:
                on_progress()

    def _receive(self, head: int, inbox: dict[int, deque[tuple]], tasks: dict[int, Task]) -> None:
        """Wait for messages and file them under their tasks; the head task's worker is always read."""
        readable: dict[Any, _Worker] = {}
        for w in self.workers:
            if w.error is None and w.tasks and (w.tasks[0] == head or len(inbox[w.tasks[0]]) < AHEAD):
                readable[w.conn] = w
                readable[w.process.sentinel] = w
        for ready in wait(list(readable)):
            w = readable[ready]
            if w.error is not None or (ready is not w.conn and w.conn.poll(0)):
                continue  # it exited, but its last messages (or EOF) are read first
            try:
                if ready is not w.conn:
                    raise EOFError
                msg = w.conn.recv()
            except (EOFError, OSError):
                w.error = self._died(w, tasks)
                continue
            inbox[w.tasks[0]].append(msg)
            if msg[0] != "batch":
                w.tasks.popleft()

    def _died(self, w: _Worker, tasks: dict[int, Task]) -> WorkerError:
        w.process.join(5)
        code = w.process.exitcode
        how = (
            f"was killed by {signal.Signals(-code).name}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        where = tasks[w.tasks[0]].display if w.tasks and w.tasks[0] in tasks else "?"
        return WorkerError(
            f"scan worker {w.process.pid} {how} before it finished {where}"
            " (out of memory? see dmesg); the scan is incomplete"
        )


def _merge(
    task: Task,
    before: tuple[Started | None, Mark | None, int | None],
    tracked: tuple[Started | None, Mark | None, int | None],
    shift: int,
) -> tuple[Started | None, Mark | None, int | None]:
    """A file's mark so far, with one more of its tasks: ranges count lines from 1, so shift them."""
    started, mark, end = tracked
    if task.ranged:
        at = task.plan.resume.at if task.plan is not None and task.plan.resume is not None else None
        started = Started(at, task.plan.resume.before) if at is not None and task.first else before[0]  # type: ignore[union-attr]
        if mark is not None:
            mark = Mark(mark.offset, mark.line + shift, mark.tail, mark.end)
    return started, mark or before[1], end if end is not None else before[2]


def _replay(engine: Engine, events: list[Event], shift: int) -> None:
    """Feed a worker's events to the engine, with the lines of earlier ranges added."""
    for event in events:
        if isinstance(event, Diagnostic):
            if shift and event.line is not None:
                event.line += shift
            engine.report(event)
            continue
        size, result = event
        if shift:
            for finding in result.findings:
                finding.line += shift
            for diag in result.diagnostics:
                if diag.line is not None:
                    diag.line += shift
        engine.feed_scanned(size, result)


def open_pool(jobs: int, pipeline: Pipeline, limits: FileSource) -> contextlib.AbstractContextManager:
    """A :class:`Pool` for ``jobs`` > 1, else nothing (``--jobs 1`` is the serial scan, unchanged)."""
    if jobs <= 1:
        return contextlib.nullcontext()
    if "fork" not in multiprocessing.get_all_start_methods():
        raise WorkerError("--jobs needs processes started by fork (Linux); use --jobs 1 here")
    return Pool(jobs, pipeline, limits)
