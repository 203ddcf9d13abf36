"""Follow growing log files: discovery by glob, rotation, file identity, whole-line records.

A file is identified by ``device:inode`` *and* a SHA-256 of its first bytes (``head_bytes``), as the
collectors do (Vector's checksum, Filebeat's fingerprint): inode numbers are reused as soon as a file is
deleted, and a recycled inode must not inherit the old file's offset.

Rotation:

* rename-and-create — the path now names another inode. The old file stays open and is read to its
  end; it is closed once it has not grown for ``rotate_wait`` seconds. The new file is read from 0.
* copytruncate — the file shrinks below the read position, or its head changes. Reading restarts at 0.
  (Lines written between the copy and the truncate exist only in the copy: include the first rotated
  name in the globs if they matter, as Fluent Bit and Vector also advise.)
* delete-and-recreate — like rename: the open handle is drained, the new file read from 0.

Lines are scanned only once their newline arrives. A final line with no newline is scanned after
``flush_partial_after`` seconds (or when its file is closed), so a writer that never ends its last line
is still seen. A last line holding ``vecleak:ignore`` waits the same way for the line it covers. A line
longer than ``max_record`` is scanned in overlapping windows, the block reader's policy, so memory
stays bounded by ``max_record + block_size`` per file.

The tailer never commits anything: it hands :class:`Chunk` objects, each with the checkpoint that is
safe once the chunk's alerts are delivered, to ``emit`` (which blocks when the daemon is busy — that
is the backpressure: a full queue stops reading, nothing is dropped).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scanner.model import Diagnostic, Record, SourceRef, count_newlines
from scanner.prefilter import IGNORE_MARKER
from scanner.sources.files import _record, _safe_cut

HEAD_BYTES = 1024
BLOCK_SIZE = 1024 * 1024
MAX_RECORD = 8 * 1024 * 1024
OVERLAP = 256 * 1024
# Blocks read from one file per pass before the others get a turn.
BLOCKS_PER_PASS = 4


@dataclass(slots=True)
class Chunk:
    """Records cut from one file, and the checkpoint to commit once their alerts are delivered."""

    key: str
    path: str
    records: list[Record | Diagnostic]
    checkpoint: dict[str, Any]
    nbytes: int = 0
    lines: int = 0
    read_at: float = field(default_factory=time.monotonic)
    forget: bool = False  # the file is closed for good: drop its checkpoint after this chunk


@dataclass(slots=True)
class _Follower:
    key: str
    path: str
    fd: int
    source: SourceRef
    pos: int  # file offset read up to
    line: int  # line number of buf[0]
    buf: bytes = b""
    head_len: int = 0
    head_sha: str = ""
    detached: float | None = None  # when the path stopped naming this file
    last_growth: float = field(default_factory=time.monotonic)
    partial_since: float | None = None
    long_line_reported: bool = False
    size: int = 0

    @property
    def emit_offset(self) -> int:
        return self.pos - len(self.buf)


def file_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def head_digest(fd: int, length: int) -> tuple[int, str]:
    """``(bytes hashed, SHA-256)`` of a file's first ``length`` bytes (fewer in a shorter file)."""
    return digest_head(os.pread(fd, length, 0))


def digest_head(head: bytes) -> tuple[int, str]:
    """:func:`head_digest` of bytes already read (``scan --state`` hashes a compressed file's text)."""
    return len(head), hashlib.sha256(head).hexdigest()


class Tailer:
    """Discovers files matching ``globs`` and follows each; one thread calls :meth:`run`."""

    def __init__(
        self,
        globs: Iterable[str],
        emit: Callable[[Chunk], bool],
        checkpoints: dict[str, dict[str, Any]] | None = None,
        *,
        poll_interval: float = 0.25,
        discover_interval: float = 1.0,
        flush_partial_after: float = 5.0,
        rotate_wait: float = 2.0,
        read_from: str = "beginning",
        block_size: int = BLOCK_SIZE,
        max_record: int = MAX_RECORD,
        overlap: int = OVERLAP,
        head_bytes: int = HEAD_BYTES,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.globs = [os.path.abspath(g) for g in globs]
        self.emit = emit
        self.checkpoints = dict(checkpoints or {})
        self.poll_interval = poll_interval
        self.discover_interval = discover_interval
        self.flush_partial_after = flush_partial_after
        self.rotate_wait = rotate_wait
        self.read_from = read_from
        self.block_size = block_size
        self.max_record = max_record
        self.overlap = min(overlap, max_record // 2)
        self.head_bytes = head_bytes
        self.on_event = on_event or (lambda _event, _fields: None)
        self.followers: dict[str, _Follower] = {}
        self.committed: dict[str, int] = {k: int(v.get("offset", 0)) for k, v in self.checkpoints.items()}
        self._wake = threading.Event()
        self._rediscover = True
        self._started = False
        self._last_discover = 0.0

    # -- control ----------------------------------------------------------------------------------

    def wake(self, rediscover: bool = False) -> None:
        """Called from the filesystem watcher: look now rather than at the next poll."""
        if rediscover:
            self._rediscover = True
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                busy = self.poll_once(stop)
                if not busy:
                    self._wake.wait(self.poll_interval)
                    self._wake.clear()
        finally:
            for f in list(self.followers.values()):
                with contextlib.suppress(OSError):
                    os.close(f.fd)
            self.followers.clear()

    def lag_bytes(self) -> int:
        """Bytes in followed files not yet committed (read but undelivered, or not read yet)."""
        total = 0
        for f in list(self.followers.values()):
            total += max(0, f.size - self.committed.get(f.key, 0))
        return total

    # -- one pass ---------------------------------------------------------------------------------

    def poll_once(self, stop: threading.Event | None = None) -> bool:
        now = time.monotonic()
        if self._rediscover or now - self._last_discover >= self.discover_interval:
            self._rediscover = False
            self._last_discover = now
            self._discover(now)
        busy = False
        for f in list(self.followers.values()):
            if stop is not None and stop.is_set():
                break
            busy |= self._service(f, now)
        return busy

    def _discover(self, now: float) -> None:
        matched: dict[str, str] = {}
        for pattern in self.globs:
            for path in sorted(glob.glob(pattern)):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not _regular(st.st_mode):
                    continue
                matched.setdefault(file_key(st), path)
        for key, path in matched.items():
            f = self.followers.get(key)
            if f is not None:
                f.detached = None
                continue
            self._open(path, initial=not self._started)
        if not self._started:
            self._adopt_rotated(set(matched))
        self._started = True
        for f in self.followers.values():
            if f.key not in matched and f.detached is None:
                f.detached = now
                self.on_event("file-detached", {"path": f.path})

    def _adopt_rotated(self, matched: set[str]) -> None:
        """After a restart, finish files rotated away while we were down (found by inode next door)."""
        for key, cp in self.checkpoints.items():
            if key in matched or key in self.followers:
                continue
            folder = os.path.dirname(cp.get("path", "")) or "."
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if file_key(st) == key and _regular(st.st_mode):
                        f = self._open(entry.path, initial=False, display=cp.get("path"))
                        if f is not None:
                            f.detached = time.monotonic()
                        break

    def _open(self, path: str, initial: bool, display: str | None = None) -> _Follower | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            self.on_event("open-failed", {"path": path, "error": exc.strerror or str(exc)})
            return None
        st = os.fstat(fd)
        key = file_key(st)
        if key in self.followers:
            os.close(fd)
            return self.followers[key]
        display = display or path
        # The identity hashed into finding ids is the path we watch, so a rotated file's findings
        # keep their ids and a replay after a crash yields the same alert ids.
        source = SourceRef(kind="file", display=display, identity=f"file:{display}")
        pos, line, how = 0, 1, "new"
        cp = self.checkpoints.get(key)
        if cp is not None:
            head_len, head_sha = head_digest(fd, int(cp.get("head_len", 0)))
            if head_sha == cp.get("head_sha") and st.st_size >= int(cp.get("offset", 0)):
                pos, line, how = int(cp["offset"]), int(cp.get("line", 1)), "resumed"
            else:
                how = "reused-inode" if head_sha != cp.get("head_sha") else "truncated"
        elif initial and self.read_from == "end":
            pos, how = st.st_size, "from-end"
            line = 1 + _count_newlines(fd, st.st_size)
        f = _Follower(key=key, path=display, fd=fd, source=source, pos=pos, line=line, size=st.st_size)
        f.head_len, f.head_sha = head_digest(fd, self.head_bytes)
        self.followers[key] = f
        self.committed[key] = pos
        self.on_event("file-opened", {"path": display, "offset": pos, "how": how})
        return f

    def _service(self, f: _Follower, now: float) -> bool:
        try:
            st = os.fstat(f.fd)
        except OSError:
            return False
        f.size = st.st_size
        if st.st_size < f.pos or (st.st_size != f.pos and self._head_changed(f)):
            self._truncated(f)
        busy = False
        for _ in range(BLOCKS_PER_PASS):
            want = min(self.block_size, max(0, f.size - f.pos))
            if want <= 0:
                break
            data = os.pread(f.fd, want, f.pos)
            if not data:
                break
            f.pos += len(data)
            f.buf = f.buf + data if f.buf else data
            f.last_growth = now
            busy = True
            if f.head_len < self.head_bytes:
                f.head_len, f.head_sha = head_digest(f.fd, self.head_bytes)
            if not self._cut(f, at_eof=f.pos >= f.size, now=now):
                return busy  # the daemon is stopping
        if f.buf and f.pos >= f.size:
            self._cut(f, at_eof=True, now=now)
        if f.detached is not None and f.pos >= f.size and now - f.last_growth >= self.rotate_wait:
            self._close(f)
        return busy

    def _head_changed(self, f: _Follower) -> bool:
        if not f.head_len:
            return False
        _, sha = head_digest(f.fd, f.head_len)
        return sha != f.head_sha

    def _truncated(self, f: _Follower) -> None:
        self.on_event("file-truncated", {"path": f.path, "offset": f.pos})
        diag = Diagnostic("truncated", "file truncated or rewritten; reading from the start", f.path)
        f.buf, f.pos, f.line = b"", 0, 1
        f.partial_since = None
        f.head_len, f.head_sha = head_digest(f.fd, self.head_bytes)
        self._send(f, [diag], 0, 0)

    def _cut(self, f: _Follower, at_eof: bool, now: float, final: bool = False) -> bool:
        """Emit the whole lines in the buffer; keep a partial last line unless it timed out."""
        out: list[Record | Diagnostic] = []
        nbytes = lines = 0
        while f.buf:
            buf = f.buf
            cut = buf.rfind(b"\n") if at_eof else _safe_cut(buf)
            if at_eof and not final and cut >= 0:
                cut = _hold_ignore_line(buf, cut)
            if cut < 0 and not at_eof and buf.endswith(b"\n"):
                cut = len(buf) - 1
            if cut >= 0:
                block, f.buf = buf[: cut + 1], buf[cut + 1 :]
                f.long_line_reported = False
            elif len(buf) >= self.max_record:
                if not f.long_line_reported:
                    out.append(
                        Diagnostic(
                            "long-line",
                            f"a line longer than {self.max_record} bytes; scanned in overlapping windows",
                            f.path,
                            f.line,
                            f.emit_offset,
                        )
                    )
                    f.long_line_reported = True
                window = buf[: self.max_record]
                keep = self.max_record - self.overlap
                out.extend(_record(window, f.source, f.emit_offset, f.line, overlap_tail=self.overlap))
                f.line += count_newlines(window, 0, keep)
                f.buf = buf[keep:]
                nbytes += keep
                continue
            else:
                if f.partial_since is None:
                    f.partial_since = now
                if not final and now - f.partial_since < self.flush_partial_after:
                    break
                block, f.buf = buf, b""  # the final line never got its newline: scan it anyway
            offset = f.emit_offset - len(block)
            out.extend(_record(block, f.source, offset, f.line))
            n = count_newlines(block)
            f.line += n
            lines += n or 1
            nbytes += len(block)
            f.partial_since = None
        if f.buf and f.partial_since is None and b"\n" not in f.buf:
            f.partial_since = now
        if not out:
            return True
        return self._send(f, out, nbytes, lines)

    def _send(self, f: _Follower, records: list[Record | Diagnostic], nbytes: int, lines: int) -> bool:
        chunk = Chunk(
            key=f.key,
            path=f.path,
            records=records,
            checkpoint={
                "path": f.path,
                "offset": f.emit_offset,
                "line": f.line,
                "head_len": f.head_len,
                "head_sha": f.head_sha,
            },
            nbytes=nbytes,
            lines=lines,
        )
        return self.emit(chunk)

    def _close(self, f: _Follower) -> None:
        self._cut(f, at_eof=True, now=time.monotonic(), final=True)
        self.emit(Chunk(key=f.key, path=f.path, records=[], checkpoint={}, forget=True))
        with contextlib.suppress(OSError):
            os.close(f.fd)
        self.followers.pop(f.key, None)
        self.committed.pop(f.key, None)
        self.on_event("file-closed", {"path": f.path, "offset": f.pos})


def _regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _count_newlines(fd: int, upto: int) -> int:
    n, pos = 0, 0
    while pos < upto:
        data = os.pread(fd, min(BLOCK_SIZE, upto - pos), pos)
        if not data:
            break
        n += count_newlines(data)
        pos += len(data)
    return n


def _hold_ignore_line(buf: bytes, cut: int) -> int:
    """Where to cut at end of file so that a last line holding ``vecleak:ignore`` stays behind.

    The marker covers the next line too, which the writer may not have written yet; the held line
    waits for it like a partial line does, ``flush_partial_after`` at most. Nothing on it is lost:
    the marker covers its own line.
    """
    before = buf.rfind(b"\n", 0, cut)
    return before if buf.find(IGNORE_MARKER, before + 1, cut) >= 0 else cut
