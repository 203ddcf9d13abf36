"""``vecleak scan --state FILE``: a scheduled scan of log folders reads only what is new since the last.

Marks live in the shared :class:`~scanner.state.StateStore` (SQLite, 0600), namespace
``scan.files``: key ``"<head length>:<head SHA-256>"``, value a list of marks (offset, line, tail
digest, end, when last met, the path for people to read, and for a compressed file its size and
last KiB's digest).

**A file is its content, not its path.** logrotate renames ``app.log`` to ``app.log.1`` and later
compresses it to ``app.log.1.gz``: the path and the inode change, the text does not. So a file is
looked up by the digest of its first ``HEAD_BYTES`` of text (decompressed) and their length —
:func:`~scanner.sources.tail.head_digest`'s, how the tail daemon tells files apart. The head alone is
not enough: every day's ``app.log`` of a service that starts with the same banner has the same one.
So a head holds a list of marks, and a mark counts only when the ``MARK_BYTES`` before its offset
hash the same: then the file *is* the text scanned up to there (and a copy of it is the same file).
A file shorter than ``HEAD_BYTES`` when it was scanned has a short head; once it has grown it is
found by hashing its head cut to that length (the state has few short lengths to try).

**Where a run starts.** A plain file whose mark matches: at the mark, with its line number, so
``vecleak.location.line`` stays right; not at all when its size is the mark's ``end`` (unchanged:
two reads of a KiB). A compressed file the first time it is met: decompressed, the bytes before the
mark skipped and checked on the way (no detection work, no duplicate alerts); after that it is known
by its compressed bytes (size, last KiB) and not even decompressed. No matching mark — a new file,
one rewritten with another head, a copytruncate that shrank it below the mark, changed bytes
before the mark — the whole file, from line 1.

**Where the mark goes** (:class:`Tracker`): at the end of the last whole line read. Not after a line
that holds ``vecleak:ignore`` (the marker covers the next line, which the writer may not have
written yet), nor after a line that could be part of an unfinished multi-line payload (one that
starts like a continuation line: indented, a closing bracket): there the mark goes back to the
reader's own last safe cut (:func:`~scanner.sources.files._last_safe_newline`), and the next run
reads those lines again, with what follows them.

**An unfinished last line** (a writer in the middle of it) is scanned now, as a one-shot scan
would, and ``end`` records that it was read. While the file does not change it is not read again,
so a vector on it is not alerted night after night. Once the file grows, the next run starts at
that line's start, so the completed line is scanned whole (a vector cut by the writer's flush is
seen complete); a complete vector that was already on it may alert that once more.

**Commit after delivery.** Marks are gathered as files are finished (all their records through the
engine) and written in one transaction after every sink closed without error: a crash or a failed
delivery re-scans, it never skips (at least once). A run that fails (exit 1) commits the marks of
the files it finished before the failure if its sinks still close; the file it was in and those
after it keep their old marks. Marks not met for ``--state-ttl`` (30 days) are pruned, so the state
does not grow as rotated files are deleted. Stdin is never stateful. A trace export is one JSON
document with no line to resume at: a plain one is skipped while unchanged and read whole once it
changes; a compressed one is read every run.

**``--jobs N``**: :meth:`ScanState.plan` runs in the main process; a resumed large file is cut by
:func:`~scanner.sources.files.split_points` from its mark (the cuts a serial read from there makes),
workers track the marks of what they read, and the main process merges them in order: the marks,
like the output, are those of ``--jobs 1``.

A path can name another file between the plan and the read (a rotation; ``--jobs`` may put
seconds between them), so the read checks the bytes before the mark again: a whole file is then
read from its start; a file cut into ranges stops the scan (exit 1; the next run reads it right).
Not handled: two runs at once on one state file (the last to commit wins; the CronJob forbids
overlapping runs).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from scanner import traces
from scanner.model import Diagnostic, Record
from scanner.prefilter import IGNORE_MARKER
from scanner.sources.files import (
    _CONTINUATION,
    _MAGIC,
    LOOKBACK,
    MARK_BYTES,
    FileSource,
    Mark,
    Resume,
    Started,
    _last_safe_newline,
    _maybe_decompress,
    _read_block,
    mark_digest,
)
from scanner.sources.tail import HEAD_BYTES, digest_head
from scanner.state import StateStore

NAMESPACE = "scan.files"
DEFAULT_TTL_S = 30 * 86400.0
# Per head: the banner case, one mark per rotated file still on disk. Only the newest are kept, so a
# retention longer than this many files would have the oldest read again; each costs a KiB read.
MAX_MARKS = 1000
_EMPTY = mark_digest(b"")


@dataclass(slots=True)
class FilePlan:
    """What a run does with one file: skip it, resume it at a mark, or read it from the start."""

    display: str
    real: str
    key: str | None = None  # "<head length>:<head sha>"; None: not tracked (stdin, unreadable, …)
    how: str = "full"  # "unchanged" | "resumed" | "full" | "untracked"
    resume: Resume | None = None
    matched: Mark | None = None  # the mark this run starts from (plain files; compressed: found)
    size: int = 0
    trace: bool = False
    raw: list[Any] | None = None  # a compressed file's size and last KiB's digest, as read


@dataclass(slots=True)
class Tracker:
    """Follows the records read from a file and keeps where the next run is to start: its mark.

    That is the end of the last whole line read, moved back to the start of the last line that
    begins a record when the last line could be part of an unfinished multi-line payload (it
    starts like a continuation line) or holds ``vecleak:ignore`` (which covers the line after it):
    the reader's own idea of a safe cut (:func:`~scanner.sources.files._last_safe_newline`).
    Records may overlap (long lines are scanned in windows); only bytes past ``end`` count. Lines
    are in the records' numbering (a ``--jobs`` range counts from 1: the caller shifts them).
    """

    end: int | None = None
    _recent: bytes = b""  # the last MARK_BYTES read, before ``end``
    _pending: tuple[Record, int, bytes] | None = None  # the mark's record, its cut, the bytes before
    _mark: tuple[int, int, bytes] | None = None  # offset, line, the bytes before (maybe fewer)

    def watch(
        self, items: Generator[Record | Diagnostic, None, Any]
    ) -> Generator[Record | Diagnostic, None, Any]:
        """Yield ``items`` on, observing each Record; return what they return."""
        while True:
            try:
                item = next(items)
            except StopIteration as stop:
                return stop.value
            if isinstance(item, Record) and not item.nested:
                self.observe(item)
            yield item

    def observe(self, record: Record) -> None:
        data = record.data
        if self.end is None:
            self.end = record.offset
        skip = self.end - record.offset
        if skip >= len(data):
            return
        cut = _mark_cut(data, skip)
        if cut > skip:
            self._resolve()
            window = data[max(0, cut - MARK_BYTES) : cut]
            if len(window) < MARK_BYTES and skip == 0:
                window = self._recent[max(0, len(self._recent) - (MARK_BYTES - len(window))) :] + window
            self._pending = (record, cut, window)
        tail = data[max(skip, len(data) - MARK_BYTES) :]
        self._recent = tail if len(tail) >= MARK_BYTES else (self._recent + tail)[-MARK_BYTES:]
        self.end = record.offset + len(data)

    def _resolve(self) -> None:
        # The line is asked for once the reader has asked for the block's end: usually the same
        # place (blocks end with a newline), so no newline is counted twice.
        if self._pending is not None:
            record, cut, window = self._pending
            self._mark = (record.offset + cut, record.line_at(cut), window)
            self._pending = None

    def result(self, seed: bytes = b"") -> Mark | None:
        """The mark reached, or None when no line ended. ``seed``: the bytes before the first record
        (for a mark less than MARK_BYTES into what was read)."""
        self._resolve()
        if self._mark is None:
            return None
        offset, line, window = self._mark
        want = min(MARK_BYTES, offset)
        if len(window) < want:
            window = (seed + window)[-want:]
        return Mark(offset, line, mark_digest(window[max(0, len(window) - want) :]), self.end or offset)


def _mark_cut(data: bytes, floor: int) -> int:
    """Where in ``data`` the next run may start (after ``floor``), or -1: see :class:`Tracker`."""
    nl = data.rfind(b"\n", floor)
    if nl < 0:
        return -1
    start = data.rfind(b"\n", 0, nl) + 1
    if start == nl or (data[start] not in _CONTINUATION and data.find(IGNORE_MARKER, start, nl) < 0):
        return nl + 1
    base = max(0, nl + 1 - LOOKBACK)  # all that _last_safe_newline looks at
    safe = _last_safe_newline(data[base : nl + 1])
    return base + safe + 1 if safe >= 0 and base + safe >= floor else -1


class ScanState:
    """The marks of one state file, in memory for a run; :meth:`commit` writes them at its end."""

    def __init__(self, path: str, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.store = StateStore(path)
        self.ttl_s = ttl_s
        self.now = time.time()
        self.marks: dict[str, list[dict[str, Any]]] = {}
        for key, value in self.store.items(NAMESPACE).items():
            if isinstance(value, list):
                self.marks[key] = value
        self.short = sorted(
            {int(k.split(":", 1)[0]) for k in self.marks if int(k.split(":", 1)[0]) < HEAD_BYTES}
        )
        self.done: list[tuple[FilePlan, Mark]] = []  # finished files and their new marks
        self.counts = {"unchanged": 0, "resumed": 0, "full": 0}
        self.skipped_bytes = 0

    # -- planning -----------------------------------------------------------------------------------

    def plan(self, display: str, real: str) -> FilePlan:
        """Look the file up by its head; for a plain file, check the mark against its bytes now.

        An unchanged plain file costs two reads of a KiB; a compressed one the inflation of its
        first 64 KiB, and nothing more when its compressed bytes are those of the last run (same
        size, same last KiB).
        """
        plan = FilePlan(display, real, how="untracked")
        if real == "-":
            return plan
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return plan  # read_one reports it
        try:
            st = os.fstat(fd)
            if not _regular(st.st_mode):
                return plan
            plan.size = st.st_size
            compressed = any(os.pread(fd, 6, 0).startswith(magic) for magic, _ in _MAGIC)
            head = (_decompressed_head(fd) or b"") if compressed else os.pread(fd, HEAD_BYTES, 0)
            if not head:
                return plan  # empty: nothing to remember
            plan.key = "{}:{}".format(*digest_head(head[:HEAD_BYTES]))
            plan.how = "full"
            marks = self._candidates(head[:HEAD_BYTES])
            if compressed:
                return self._plan_compressed(plan, fd, head, marks)
            found = None
            for entry in sorted(marks, key=lambda m: -int(m["end"])):
                mark = _mark(entry)
                if plan.size < mark.end:
                    continue
                want = min(MARK_BYTES, mark.offset)
                before = os.pread(fd, want, mark.offset - want)
                if mark_digest(before) != mark.tail:
                    continue
                if plan.size == mark.end:
                    plan.how, plan.matched = "unchanged", mark
                    return plan
                found = mark, before
                break
            plan.trace = traces.may_be_trace(os.pread(fd, 65536, 0))
            if found is not None and not plan.trace:  # a trace export is one document: read whole
                plan.how, plan.matched = "resumed", found[0]
                plan.resume = Resume(at=found[0], before=found[1])
            return plan
        finally:
            os.close(fd)

    def _plan_compressed(self, plan: FilePlan, fd: int, head: bytes, marks: list[dict[str, Any]]) -> FilePlan:
        plan.raw = [plan.size, mark_digest(os.pread(fd, MARK_BYTES, max(0, plan.size - MARK_BYTES)))]
        for entry in marks:
            if entry.get("raw") == plan.raw:  # the very bytes read last time: not even inflated
                plan.how, plan.matched = "unchanged", _mark(entry)
                return plan
        if traces.may_be_trace(head):  # one document, of a size unknown before it is inflated
            plan.key, plan.how = None, "untracked"
            return plan
        if marks:
            plan.resume = Resume(marks=tuple(_mark(m) for m in marks))
        return plan

    def _candidates(self, head: bytes) -> list[dict[str, Any]]:
        found = list(self.marks.get("{}:{}".format(*digest_head(head)), ()))
        for n in self.short:
            if n < len(head):
                found += self.marks.get("{}:{}".format(*digest_head(head[:n])), ())
        return found

    # -- results ------------------------------------------------------------------------------------

    def finish(self, plan: FilePlan, started: Started | None, mark: Mark | None, end: int | None) -> None:
        """A file's records all went through the engine: note its new mark (committed at the end).

        ``started``: where the read began (None: at the start, or not read: unchanged plain file);
        ``mark``/``end``: what the :class:`Tracker` saw (None: no whole line, nothing read).
        """
        if plan.key is None or (
            plan.how != "unchanged" and not plan.trace and started is None and end is None
        ):
            return  # not tracked, or not read after all (it went away, or lost its permissions)
        if plan.how == "unchanged" or (started is not None and started.unchanged):
            kept = plan.matched if plan.how == "unchanged" else started.mark  # type: ignore[union-attr]
            assert kept is not None
            plan.matched = kept
            self.counts["unchanged"] += 1
            self.skipped_bytes += kept.end
            self.done.append((plan, kept))
            return
        base = started.mark if started is not None else None
        plan.matched = base
        self.counts["resumed" if base is not None else "full"] += 1
        if base is not None:
            self.skipped_bytes += base.offset
        if plan.trace:
            self.done.append((plan, Mark(plan.size, 1, _tail_of(plan.real, plan.size), plan.size)))
            return
        if mark is None:
            mark = base or Mark(0, 1, _EMPTY, 0)
        reached = max(end if end is not None else mark.offset, mark.offset)
        self.done.append((plan, Mark(mark.offset, mark.line, mark.tail, reached)))

    def summary(self) -> str:
        c = self.counts
        return (
            f"state: {c['unchanged']} file(s) unchanged, {c['resumed']} resumed, {c['full']} from the start;"
            f" {self.skipped_bytes:,} bytes skipped"
        )

    # -- commit -------------------------------------------------------------------------------------

    def commit(self) -> None:
        """Write the finished files' marks and prune stale ones, in one transaction."""
        changed: set[str] = set()
        for plan, mark in self.done:
            assert plan.key is not None
            entries = self.marks.setdefault(plan.key, [])
            raw = plan.raw
            for old in list(entries):
                if _same(old, plan.matched) or _same(old, mark):
                    entries.remove(old)
                    if raw is None and _same(old, mark):
                        raw = old.get("raw")  # a plain copy of a compressed file met earlier
            entries.append(_entry(mark, plan.display, self.now, raw))
            changed.add(plan.key)
        cutoff = self.now - self.ttl_s
        for key, entries in self.marks.items():
            keep = sorted((e for e in entries if float(e.get("seen", 0)) >= cutoff), key=lambda e: -e["seen"])
            keep = keep[:MAX_MARKS]
            if len(keep) != len(entries):
                self.marks[key] = keep
                changed.add(key)
        with self.store.transaction():
            for key in sorted(changed):
                if self.marks.get(key):
                    self.store.put(NAMESPACE, key, self.marks[key])
                else:
                    self.store.delete(NAMESPACE, key)
        self.done.clear()

    def close(self) -> None:
        self.store.close()


def records(source: FileSource, state: ScanState) -> Iterator[Record | Diagnostic]:
    """:meth:`FileSource.records` with the state: unchanged files skipped, others resumed.

    A file is finished (:meth:`ScanState.finish`) when the engine asks for the record after its
    last one, so its alerts have been handed to the sinks.
    """
    targets = yield from source.targets()
    for display, real in targets:
        plan = state.plan(display, real)
        if plan.how == "unchanged":
            source.progress.done += plan.size
            state.finish(plan, None, None, None)
            continue
        tracker = Tracker()
        started = yield from tracker.watch(source.read_one(display, real, plan.resume))
        state.finish(plan, started, tracker.result(started.before if started else b""), tracker.end)


def _decompressed_head(fd: int) -> bytes | None:
    """The first 64 KiB of a compressed file's text (what the trace sniffer looks at)."""
    with contextlib.suppress(OSError, EOFError, ValueError), os.fdopen(os.dup(fd), "rb") as raw:
        stream, _ = _maybe_decompress(raw)
        try:
            return _read_block(stream, 65536)
        except Exception as exc:  # noqa: BLE001 - _PartialRead: what came out before the damage
            data = getattr(exc, "data", None)
            return data if isinstance(data, bytes) else None
    return None


def _tail_of(real: str, size: int) -> str:
    with contextlib.suppress(OSError), open(real, "rb") as fh:
        fh.seek(max(0, size - MARK_BYTES))
        return mark_digest(fh.read(min(MARK_BYTES, size)))
    return ""


def _mark(entry: dict[str, Any]) -> Mark:
    return Mark(int(entry["offset"]), int(entry["line"]), str(entry["tail"]), int(entry["end"]))


def _entry(mark: Mark, path: str, now: float, raw: list[Any] | None) -> dict[str, Any]:
    entry = {
        "offset": mark.offset,
        "line": mark.line,
        "tail": mark.tail,
        "end": mark.end,
        "seen": now,
        "path": path,  # for people reading the state; never used to match
    }
    if raw is not None:
        entry["raw"] = raw
    return entry


def _same(entry: dict[str, Any], mark: Mark | None) -> bool:
    return mark is not None and (entry["offset"], entry["tail"], entry["end"]) == (
        mark.offset,
        mark.tail,
        mark.end,
    )


def _regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)
