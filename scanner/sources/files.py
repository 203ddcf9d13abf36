"""Files, directories, stdin and compressed rotated logs, read as bounded blocks of whole lines.

Scanning block by block (not line by line) is what keeps the hot path fast: a Python loop over 12
million lines costs more than the whole detection budget. Blocks end at a *safe* newline, one followed
by a line that cannot continue a multi-line payload (not indented, not a closing bracket), so a
pretty-printed array or a numpy repr is never split between two blocks.

Memory stays bounded whatever the input: a line longer than ``max_record`` is scanned in windows that
overlap by ``overlap`` bytes, and reported once as a ``long-line`` diagnostic.
"""

from __future__ import annotations

import bz2
import contextlib
import fnmatch
import gzip
import hashlib
import io
import lzma
import os
import sys
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from scanner.model import Diagnostic, Record, SourceRef
from scanner.prefilter import IGNORE_MARKER

BLOCK_SIZE = 4 * 1024 * 1024
MAX_RECORD = 16 * 1024 * 1024
OVERLAP = 256 * 1024
LOOKBACK = 1024 * 1024  # how far back from a block's end a cut is looked for
# Bytes that may start a continuation line of a multi-line payload.
_CONTINUATION = frozenset(b" \t]}),-")

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


@dataclass
class Progress:
    """Bytes done of bytes total, for a progress bar; compressed files count their compressed bytes."""

    total: int = 0
    done: int = 0
    files: int = 0


@dataclass
class FileSource:
    """Every file named on the command line, directories walked recursively, ``-`` for stdin."""

    paths: list[str]
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    block_size: int = BLOCK_SIZE
    max_record: int = MAX_RECORD
    overlap: int = OVERLAP
    progress: Progress = field(default_factory=Progress)

    def records(self) -> Iterator[Record | Diagnostic]:
        targets = yield from self.targets()
        for display, real in targets:
            yield from self.read_one(display, real)

    def targets(self) -> Generator[Diagnostic, None, list[tuple[str, str]]]:
        """Yield the arguments that cannot be read; return ``(display, real)`` of each file, in order.

        Also sets ``progress.total``. ``-`` stands for stdin. :mod:`scanner.parallel` walks the same
        list, so both paths see the same files in the same order.
        """
        targets: list[tuple[str, str]] = []
        for arg in self.paths:
            if arg == "-":
                targets.append(("-", "-"))
                continue
            if not os.path.exists(arg):
                yield Diagnostic("unreadable", f"{arg}: no such file or directory", arg)
                continue
            if os.path.isdir(arg):
                yield from self._walk(arg, targets)
            else:
                targets.append((arg, arg))
        for _display, real in targets:
            if real != "-":
                with contextlib.suppress(OSError):
                    self.progress.total += os.path.getsize(real)
        return targets

    def _walk(self, root: str, targets: list[tuple[str, str]]) -> Iterator[Diagnostic]:
        def onerror(exc: OSError) -> None:
            errors.append(exc)

        errors: list[OSError] = []
        for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                if self._selected(rel) and not os.path.islink(full):
                    targets.append((os.path.join(root, rel), full))
        for exc in errors:
            yield Diagnostic("unreadable", f"{exc.filename}: {exc.strerror}", str(exc.filename))

    def _selected(self, rel: str) -> bool:
        name = os.path.basename(rel)
        if self.include and not any(
            fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in self.include
        ):
            return False
        return not any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in self.exclude)

    def read_one(
        self, display: str, real: str, resume: Resume | None = None
    ) -> Generator[Record | Diagnostic, None, Started | None]:
        """One file (or ``-``) of :meth:`targets`, whole: decompressed, or decoded as a trace export.

        With ``resume`` (``scan --state``), from where an earlier run stopped: a plain file at
        ``resume.at`` (checked by the caller); a compressed one at the mark of ``resume.marks`` its
        text proves to be, found while decompressing (:func:`skip_to_mark`). Returns where it
        started (None: from the start).
        """
        if real == "-":
            source = SourceRef(kind="stdin", display="-", identity="stdin")
            yield from read_stream(sys.stdin.buffer, source, self)
            return None
        try:
            # O_NONBLOCK: opening a FIFO (or a device) for reading must not wait for a writer; the
            # fstat below then turns it away. It changes nothing for regular files.
            raw = os.fdopen(os.open(real, os.O_RDONLY | os.O_NONBLOCK), "rb")
        except OSError as exc:
            yield Diagnostic("unreadable", f"{display}: {exc.strerror}", display)
            return None
        self.progress.files += 1
        started: Started | None = None
        try:
            stat = os.fstat(raw.fileno())
            source = file_source(display, real)
            if not _is_regular(stat.st_mode):
                yield Diagnostic("unreadable", f"{display}: not a regular file", display)
                return None
            stream, kind = _maybe_decompress(raw)
            before = self.progress.done
            if resume is not None and resume.at is not None and kind is None and _still_at(raw, resume):
                at = resume.at
                started = Started(at, resume.before)
                raw.seek(at.offset)
                yield from read_stream(raw, source, self, raw=raw, offset=at.offset, line=at.line)
            elif resume is not None and resume.marks and kind is not None:
                stream, kind, started, pending = _resume_compressed(raw, resume.marks, self.max_record)
                if started is None:  # not the text scanned before: all of it
                    yield from read_stream(stream, source, self, raw=raw, compressed=kind)
                elif not started.unchanged:
                    mark = started.mark
                    yield from read_stream(
                        stream,
                        source,
                        self,
                        raw=raw,
                        compressed=kind,
                        offset=mark.offset,
                        pending=pending,
                        line=mark.line,
                    )
            else:
                stream, traced = _maybe_trace_document(stream, source)
                if traced is not None:
                    yield from traced
                else:
                    yield from read_stream(stream, source, self, raw=raw, compressed=kind)
            self.progress.done = before + stat.st_size
        finally:
            raw.close()
        return started


def _still_at(raw: BinaryIO, resume: Resume) -> bool:
    """The bytes before the mark are still those the plan checked: the path was not given to another
    file (a rotation) between the plan and this read, which ``--jobs`` may put seconds apart."""
    at, before = resume.at, resume.before
    assert at is not None
    return os.pread(raw.fileno(), len(before), at.offset - len(before)) == before


MARK_BYTES = 1024  # the bytes before a resume point whose digest proves a file is the one scanned


@dataclass(frozen=True, slots=True)
class Mark:
    """Where an earlier ``scan --state`` run stopped in a file's (decompressed) text.

    ``offset``/``line``: the start of the first line not yet scanned whole (the next run begins
    there); ``tail``: SHA-256 of the ``MARK_BYTES`` before ``offset`` (fewer at the start), which
    a file must match to be resumed; ``end``: the bytes read (past ``offset`` when the last line had
    no newline yet).
    """

    offset: int
    line: int
    tail: str
    end: int


@dataclass(frozen=True, slots=True)
class Started:
    """Where :meth:`FileSource.read_one` resumed: the mark, the ``MARK_BYTES`` before it, and
    whether there was nothing new past it (then nothing was scanned)."""

    mark: Mark
    before: bytes
    unchanged: bool = False


@dataclass(frozen=True, slots=True)
class Resume:
    """Where :meth:`FileSource.read_one` starts: ``at`` for a plain file (already checked), or the
    ``marks`` a compressed file may be at (checked while decompressing)."""

    at: Mark | None = None
    before: bytes = b""  # the MARK_BYTES before ``at``
    marks: tuple[Mark, ...] = ()


def mark_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def skip_to_mark(stream: BinaryIO, marks: tuple[Mark, ...]) -> tuple[Mark, bool, bytes] | None:
    """Decompress past the text an earlier run scanned, proving on the way that it is that text.

    Tries ``marks`` in offset order, in one pass, and takes the furthest whose ``tail`` matches the
    bytes before it. Returns ``(mark, whether the stream stands at mark.offset, the MARK_BYTES
    before it)``, or None when no mark matches. Damage met before a mark means the text is not the
    one scanned.
    """
    pos, recent, best, before = 0, b"", None, b""
    try:
        for mark in sorted(marks, key=lambda m: m.offset):
            while pos < mark.offset:
                data = _read_block(stream, min(BLOCK_SIZE, mark.offset - pos))
                if not data:
                    break
                recent = (recent + data[-MARK_BYTES:])[-MARK_BYTES:]
                pos += len(data)
            if pos < mark.offset:
                break
            if mark_digest(recent[len(recent) - min(MARK_BYTES, mark.offset) :]) == mark.tail:
                best, before = mark, recent
    except (_PartialRead, *_DECOMPRESS_ERRORS):
        pass
    return None if best is None else (best, pos == best.offset, before)


def _resume_compressed(
    raw: BinaryIO, marks: tuple[Mark, ...], keep_limit: int
) -> tuple[BinaryIO, str | None, Started | None, bytes]:
    """Open a compressed file where its text goes on past what an earlier run scanned.

    Returns ``(stream, kind, started, pending)``: ``started`` None to read all from a fresh stream;
    else the stream stands past ``pending``, the bytes from the mark on already read (its
    unfinished last line). That line is kept in memory up to ``keep_limit`` bytes; a longer one is
    read past, then read again.
    """
    raw.seek(0)
    stream, kind = _maybe_decompress(raw)
    found = skip_to_mark(stream, marks)
    if found is None:
        raw.seek(0)
        return (*_maybe_decompress(raw), None, b"")
    mark, positioned, before = found
    if not positioned:  # a later mark was tried after the one that matched: skip again
        raw.seek(0)
        stream, kind = _maybe_decompress(raw)
        skip_to_mark(stream, (mark,))
    want = mark.end - mark.offset + 1  # one byte more than was read: is there anything new?
    if want <= keep_limit:
        try:
            pending = _read_block(stream, want)
        except _PartialRead as partial:
            pending = partial.data  # damage past what was read before is this run's to report
        if len(pending) == want - 1:
            return stream, kind, Started(mark, before, unchanged=True), b""
        return stream, kind, Started(mark, before), pending
    got = 0
    with contextlib.suppress(_PartialRead, *_DECOMPRESS_ERRORS):
        while got < want:
            part = _read_block(stream, min(BLOCK_SIZE, want - got))
            if not part:
                break
            got += len(part)
    if got == want - 1:
        return stream, kind, Started(mark, before, unchanged=True), b""
    raw.seek(0)
    stream, kind = _maybe_decompress(raw)
    skip_to_mark(stream, (mark,))
    return stream, kind, Started(mark, before), b""


def file_source(display: str, real: str) -> SourceRef:
    """The source of a file's findings: its identity is the absolute path, so it hashes the same
    whichever directory argument found it."""
    return SourceRef(kind="file", display=display, identity=f"file:{os.path.abspath(real)}")


class _Prefixed(io.RawIOBase):
    """A stream with bytes already read put back in front (gzip streams cannot seek cheaply)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                out, self._head = self._head, b""
                more = self._rest.read(-1 if size < 0 else size - len(out))
                return out + more
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._rest.read(size)

    def read1(self, size: int = -1) -> bytes:
        """Small steps, so a damaged archive behind the head still yields what precedes the damage."""
        if self._head:
            n = len(self._head) if size < 0 else min(size, len(self._head))
            out, self._head = self._head[:n], self._head[n:]
            return out
        read1 = getattr(self._rest, "read1", None)
        return read1(size) if read1 is not None else self._rest.read(size)


def _maybe_trace_document(
    stream: BinaryIO, source: SourceRef
) -> tuple[BinaryIO, Iterator[Record | Diagnostic] | None]:
    """A trace export (OTLP, Jaeger, Zipkin, SDK dumps) decoded span by span, so findings carry the
    span identity; anything else comes back as a stream to scan as text, with nothing lost."""
    from scanner import traces

    try:
        head = _read_block(stream, 65536)
    except _PartialRead as partial:
        # Damaged within the first 64 KiB: not a trace document we can decode; scan what came out,
        # and let the reader meet (and report) the damage itself.
        return _Prefixed(partial.data, stream), None  # type: ignore[return-value]
    if not head or not traces.may_be_trace(head):
        return _Prefixed(head, stream), None  # type: ignore[return-value]
    try:
        data = head + stream.read(traces.MAX_DOCUMENT)
    except _DECOMPRESS_ERRORS:
        return _Prefixed(head, stream), None  # type: ignore[return-value]
    # Its own source kind, so rules about trace stores (not application logs) apply to it.
    traced = SourceRef(kind="trace", display=source.display, identity=source.identity, labels=source.labels)
    records = traces.document_records(data, traced) if len(data) < traces.MAX_DOCUMENT else None
    if records is None:  # as text, and all of it: over the limit, the stream goes on after ``data``
        return _Prefixed(data, stream), None  # type: ignore[return-value]
    return io.BytesIO(b""), records


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _maybe_decompress(raw: BinaryIO) -> tuple[BinaryIO, str | None]:
    """Open by magic bytes, not by extension: rotated logs are often renamed."""
    head = raw.read(6)
    raw.seek(0)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind == "gzip":
                return _gzip_reader(raw), kind
            # BZ2File and LZMAFile take the file object as their first argument (no ``fileobj=``).
            opener = bz2.BZ2File if kind == "bz2" else lzma.LZMAFile
            return opener(raw, mode="rb"), kind  # type: ignore[return-value]
    return raw, None


def _gzip_reader(raw: BinaryIO) -> BinaryIO:
    """ISA-L's gzip reader where the ``isal`` wheel exists (x86-64, arm64), else zlib's."""
    try:
        from isal.igzip import IGzipFile
        from isal.isal_zlib import error as isal_error
    except ImportError:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return _FastGzip(raw, IGzipFile, (*_DECOMPRESS_ERRORS, isal_error))  # type: ignore[return-value]


class _FastGzip(io.RawIOBase):
    """gzip through ISA-L (``isal.igzip``: about four times zlib's speed on logs), with zlib's
    reader taking over at the first error.

    igzip inflates in larger steps, so at a truncation or a corrupt stretch it gives up some
    hundred KiB before zlib does. Nothing may be lost, so zlib re-reads the archive up to the
    bytes already delivered and goes on from there: exactly what zlib alone would recover, and
    the error it meets is the one reported. Only a damaged file pays for the second pass.
    """

    def __init__(self, raw: BinaryIO, fast: type, errors: tuple[type[BaseException], ...]) -> None:
        self._raw = raw
        self._fast = fast(fileobj=raw, mode="rb")
        self._errors = errors
        self._slow: gzip.GzipFile | None = None
        self._delivered = 0

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        if self._slow is None:
            try:
                part = self._fast.read1(size)
            except self._errors:
                self._take_over()
            else:
                self._delivered += len(part)
                return part
        assert self._slow is not None
        return self._slow.read1(size)

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        got = 0
        while size < 0 or got < size:
            part = self.read1(-1 if size < 0 else size - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def _take_over(self) -> None:
        self._raw.seek(0)
        self._slow = gzip.GzipFile(fileobj=self._raw, mode="rb")
        skip = self._delivered
        while skip:  # an error here is zlib's own, before the point igzip reached: it is reported
            part = self._slow.read1(min(skip, 1 << 20))
            if not part:
                break
            skip -= len(part)


def read_stream(
    stream: BinaryIO,
    source: SourceRef,
    limits: FileSource | None = None,
    raw: BinaryIO | None = None,
    compressed: str | None = None,
    offset: int = 0,
    pending: bytes = b"",
    stop: int | None = None,
    line: int = 1,
) -> Generator[Record | Diagnostic, None, int]:
    """Cut a byte stream into Records of whole lines, bounded in size; decode errors become Diagnostics.

    Returns the line number after the last byte read. ``offset``, ``pending`` and ``stop`` let
    :func:`read_range` resume at one of this reader's own cuts (``pending``: the rest of the block
    read before it, found at ``offset``) and end at another (``stop``); the default reads all.
    ``line`` is the line number at ``offset`` (a ``scan --state`` run resumes mid-file).
    """
    block_size = limits.block_size if limits else BLOCK_SIZE
    max_record = limits.max_record if limits else MAX_RECORD
    overlap = limits.overlap if limits else OVERLAP
    progress = limits.progress if limits else None
    buf = pending
    long_line_reported = False
    failed = False
    while not failed:
        try:
            chunk = _read_block(stream, block_size) if compressed else stream.read(block_size)
        except _PartialRead as partial:
            chunk, exc, failed = partial.data, partial.error, True
        except _DECOMPRESS_ERRORS as exc_:
            chunk, exc, failed = b"", exc_, True
        if failed:
            at = offset + len(buf) + len(chunk)
            yield Diagnostic(
                "corrupt-compressed",
                f"{compressed or 'stream'} data is corrupt or truncated after {at} bytes: {exc}",
                source.display,
                line + buf.count(b"\n") + chunk.count(b"\n"),
                at,
            )
        if progress is not None and raw is not None and compressed is None:
            progress.done += len(chunk)
        if not chunk:
            break
        # Fast path: the new chunk has a safe cut of its own. The block is the carried tail plus the
        # chunk up to it, built with one copy (join over a memoryview), not two (concatenate, slice).
        # Otherwise (a long line, a run of continuation lines) take the general path below.
        cut = _last_safe_newline(chunk)
        if cut >= 0:
            long_line_reported = False
            block = b"".join((buf, memoryview(chunk)[: cut + 1])) if buf else chunk[: cut + 1]
            buf = chunk[cut + 1 :]
            record = yield from _record(block, source, offset, line)
            line = record.line_at(len(block))
            offset += len(block)
            if stop is not None and offset >= stop:
                return line
            continue
        buf = buf + chunk if buf else chunk
        cut = _safe_cut(buf)
        if cut < 0:
            if len(buf) < max_record:
                continue
            if not long_line_reported:
                yield Diagnostic(
                    "long-line",
                    f"a line longer than {max_record} bytes; scanned in overlapping windows",
                    source.display,
                    line,
                    offset,
                )
                long_line_reported = True
            window = buf[:max_record]
            record = yield from _record(window, source, offset, line, overlap_tail=overlap)
            keep = max_record - overlap
            line = record.line_at(keep)
            offset += keep
            buf = buf[keep:]
            continue
        long_line_reported = False
        block, buf = buf[: cut + 1], buf[cut + 1 :]
        record = yield from _record(block, source, offset, line)
        line = record.line_at(len(block))
        offset += len(block)
        if stop is not None and offset >= stop:
            return line
    if buf:
        record = yield from _record(buf, source, offset, line)
        line = record.line_at(len(buf))
    return line


def split_points(real: str, block_size: int, range_size: int, start: int = 0) -> list[tuple[int, int]] | None:
    """Where to cut a large plain file into ranges that :func:`read_range` can scan on their own.

    Returns ``(start, end of the block holding the cut)`` per range, the first ``(start, start)``,
    or None when the file is to be read whole by :meth:`FileSource.read_one` (too small to split,
    not a regular file, compressed, or a trace export). ``start``: where a serial read begins (a
    ``scan --state`` run resumes there), its blocks then lying at ``start + k * block_size``.

    A cut is one that :func:`read_stream` is sure to make whatever came before: its fast path
    cuts each full block it reads at the block's last safe newline (:func:`_last_safe_newline`,
    which looks at the block's last megabyte only) whenever there is one. So a range that starts
    there, with the rest of that block pending, is read into exactly the records (and input
    diagnostics) a serial read produces, and so are long lines and multi-line payloads within it.
    Finding a cut costs one read of a megabyte; none of the bytes between cuts are read here.
    """
    from scanner import traces

    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        stat = os.fstat(fd)
        size = stat.st_size
        if not _is_regular(stat.st_mode) or size - start < 2 * range_size:
            return None
        head = os.pread(fd, 65536, 0)
        if any(head.startswith(magic) for magic, _ in _MAGIC) or traces.may_be_trace(head):
            return None
        tail = min(block_size, LOOKBACK)  # the bytes _last_safe_newline looks at
        step = max(1, range_size // block_size)
        points = [(start, start)]
        k = step  # blocks read before the next cut: the cut sits in block k - 1
        while start + (k + 1) * block_size < size:  # a full block, and a whole one after it
            end = start + k * block_size
            pos = _last_safe_newline(os.pread(fd, tail, end - tail))
            if pos < 0:
                k += 1  # a long line or a long run of continuation lines: try the next block
                continue
            points.append((end - tail + pos + 1, end))
            k += step
        return points if len(points) > 1 else None
    finally:
        os.close(fd)


def read_range(
    display: str,
    real: str,
    start: int,
    block_end: int,
    stop: int | None,
    limits: FileSource | None = None,
) -> Generator[Record | Diagnostic, None, int]:
    """The records of ``[start, stop)`` of a plain file, as :func:`read_stream` cuts the whole file.

    ``start`` and ``stop`` come from :func:`split_points` (``stop`` None: to the end). Blocks are
    read at the same offsets as a serial read, so line numbers are the only thing that differs:
    they count from 1 at ``start``. Returns the number of lines in the range (newlines).

    A file that went away (or lost its permissions) after it was planned is ``unreadable``, as
    :meth:`FileSource.read_one` says it: once, by its first range; the other ranges yield nothing.
    """
    try:
        raw = open(real, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        if start == 0:
            yield Diagnostic("unreadable", f"{display}: {exc.strerror}", display)
        return 0
    with raw:
        raw.seek(start)
        pending = raw.read(block_end - start)
        line = yield from read_stream(
            raw, file_source(display, real), limits, offset=start, pending=pending, stop=stop
        )
    return line - 1


class _PartialRead(Exception):
    """A compressed stream failed part-way through a block; ``data`` is what came out before."""

    def __init__(self, data: bytes, error: BaseException) -> None:
        super().__init__(str(error))
        self.data = data
        self.error = error


def _read_block(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` decompressed bytes in small steps, so that a truncated or corrupt archive
    still yields everything before the damage (``read(size)`` raises and drops the whole block)."""
    read1 = getattr(stream, "read1", None)
    if read1 is None:
        return stream.read(size)
    parts: list[bytes] = []
    got = 0
    try:
        while got < size:
            part = read1(min(size - got, 256 * 1024))
            if not part:
                break
            parts.append(part)
            got += len(part)
    except _DECOMPRESS_ERRORS as exc:
        raise _PartialRead(b"".join(parts), exc) from exc
    return b"".join(parts)


def _record(
    data: bytes, source: SourceRef, offset: int, line: int, overlap_tail: int = 0
) -> Generator[Record | Diagnostic, None, Record]:
    """Yield the input problems of a block, then its Record; return the Record, whose ``line_at``
    the reader asks for the next block's first line once the consumer is done with it."""
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Diagnostic(
                "invalid-utf8",
                f"invalid UTF-8 ({exc.reason}); scanned as bytes",
                source.display,
                line + data.count(b"\n", 0, exc.start),
                offset + exc.start,
            )
    if b"\x00" in data:
        at = data.index(b"\x00")
        yield Diagnostic(
            "nul-bytes",
            "NUL bytes in text; scanned as bytes",
            source.display,
            line + data.count(b"\n", 0, at),
            offset + at,
        )
    record = Record(
        data=data,
        source=source,
        offset=offset,
        line=line,
        context={"overlap_tail": overlap_tail} if overlap_tail else {},
    )
    yield record
    return record


def _last_safe_newline(buf: bytes) -> int:
    """Index of the last newline in the last MB after which no multi-line payload can continue, or -1.

    Nor a ``vecleak:ignore`` line's own newline: the marker covers the next line too, and the
    pipeline sees markers one record at a time.
    """
    end = len(buf)
    floor = max(0, end - LOOKBACK)
    pos = buf.rfind(b"\n", floor, end)
    while pos >= 0:
        before = buf.rfind(b"\n", floor, pos)
        nxt = buf[pos + 1] if pos + 1 < len(buf) else None
        if (
            nxt is not None
            and nxt not in _CONTINUATION
            and buf.find(IGNORE_MARKER, max(before + 1, floor), pos) < 0
        ):
            return pos
        pos = before
    return -1


def _safe_cut(buf: bytes) -> int:
    """Index of the last newline after which no multi-line payload can continue, or -1."""
    end = len(buf)
    floor = max(0, end - LOOKBACK)
    last_newline = buf.rfind(b"\n", floor, end)
    pos = _last_safe_newline(buf)
    if pos >= 0:
        return pos
    # A long run of continuation lines (a 4096-d pretty array is ~100 KB): cut at any newline rather
    # than grow without bound.
    if last_newline >= 0 and end >= MAX_RECORD // 2:
        return last_newline
    return -1


def open_text_stream(data: bytes, display: str = "<memory>") -> Iterator[Record | Diagnostic]:
    """Records for bytes already in memory (tests, the OTLP receiver, ES field values)."""
    source = SourceRef(kind="memory", display=display, identity=f"memory:{display}")
    yield from read_stream(io.BytesIO(data), source)
