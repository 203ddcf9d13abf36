"""At-least-once delivery for network sinks: a bounded 0600 disk spool retried with backoff.

A network sink is split in two: a :class:`Transport` renders an alert to bytes once and delivers
bytes (raising on failure), and :class:`Spooled` owns reliability. When delivery fails, the rendered
payload (already redacted) is written to ``DIR/<seq>-<event_id>.msg`` and a background thread
retries oldest-first with exponential backoff. An alert the receiver rejects for good (HTTP 4xx
other than 408/429) is moved to ``DIR/dead/`` (0600), counted and reported, never retried. While anything is spooled, new alerts queue behind it,
so order is kept and an alert is delivered once in normal operation. A crash between a successful
delivery and the unlink of its spool file can replay that one alert under the same ``event_id``;
receivers can drop it by id. A run that ends during an outage leaves the spool on disk and the next
run with the same sink delivers it first.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from typing import Any, Protocol

from scanner.model import Alert, Diagnostic

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_FILES = 100_000


class Transport(Protocol):
    """Renders once, delivers many times. ``deliver`` raises (OSError/DeliveryError) when not accepted."""

    name: str

    def render(self, alert: Alert) -> bytes: ...

    def deliver(self, event_id: str, payload: bytes) -> None: ...

    def close(self) -> None: ...


class DeliveryError(OSError):
    """The receiver answered but did not accept the alert (HTTP 5xx, 429, refused)."""


class PermanentDeliveryError(DeliveryError):
    """The receiver rejected this alert for good (HTTP 4xx other than 408/429): retrying cannot help.

    A wrong token (401/403) or a payload the receiver will never accept (400, 413) would otherwise
    block the spool forever, since order is kept and everything queues behind the oldest alert.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def default_spool_dir(spec: str) -> str:
    """One spool per sink spec, under $VECLEAK_SPOOL_DIR or the XDG state directory."""
    base = os.environ.get("VECLEAK_SPOOL_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "vecleak", "spool"
    )
    return os.path.join(base, hashlib.sha256(spec.encode()).hexdigest()[:16])


def spool_options(options: dict[str, Any]) -> dict[str, Any]:
    """The Spooled keyword arguments a sink's options may carry (from config or tests)."""
    keys = ("max_bytes", "max_files", "base_delay", "max_delay", "close_timeout")
    return {k: options[k] for k in keys if k in options}


class Spooled:
    """A :class:`~scanner.sinks.Sink` around a Transport: deliver now, or spool and retry."""

    def __init__(
        self,
        transport: Transport,
        directory: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        close_timeout: float = 10.0,
    ) -> None:
        self.transport = transport
        self.name = transport.name
        self.routed = True  # a rule's ``outputs:`` picks among routed sinks by name
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.close_timeout = close_timeout
        self.delivered = 0
        self.spooled = 0
        self.dropped = 0
        self.failures = 0
        self.dead = 0
        self.dead_statuses: dict[int, int] = {}
        self._delay = 0.0
        self._next_try = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        self._seq = self._last_seq()
        self._thread = threading.Thread(
            target=self._retry_loop, name=f"vecleak-spool-{self.name}", daemon=True
        )
        self._thread.start()
        with self._lock:
            self._wake.notify()

    # --- Sink interface ------------------------------------------------------------------------

    def send(self, alert: Alert) -> None:
        payload = self.transport.render(alert)
        with self._lock:
            if (
                not self._pending()
                and time.monotonic() >= self._next_try
                and self._try(alert.event_id, payload)
            ):
                return
            self._spool(alert.event_id, payload)
            self._wake.notify()

    def diagnostic(self, diag: Diagnostic) -> None:
        pass

    def close(self, summary: dict[str, Any]) -> None:
        """Give the spool ``close_timeout`` seconds to drain, then leave the rest on disk for next time."""
        deadline = time.monotonic() + self.close_timeout
        with self._lock:
            self._next_try = 0.0
            self._wake.notify()
            while self._pending() and time.monotonic() < deadline:
                self._wake.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            self._closing = True
            self._wake.notify()
            left = len(self._pending())
        self._thread.join(timeout=5)
        self.transport.close()
        if left or self.dropped:
            print(
                f"vecleak: {self.name}: {left} alert(s) left in spool {self.directory}"
                + (f", {self.dropped} dropped (spool full)" if self.dropped else ""),
                file=sys.stderr,
                flush=True,
            )
        if self.dead:
            statuses = ", ".join(f"HTTP {k} x{v}" for k, v in sorted(self.dead_statuses.items()))
            print(
                f"vecleak: error: {self.name}: {self.dead} alert(s) rejected by the receiver ({statuses}),"
                f" kept in {self.dead_directory}",
                file=sys.stderr,
                flush=True,
            )

    @property
    def dead_directory(self) -> str:
        return os.path.join(self.directory, "dead")

    def flush(self, timeout: float) -> int:
        """Retry now and wait up to ``timeout`` s for an empty spool; returns what is left."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._next_try = 0.0
            self._wake.notify()
            while self._pending() and time.monotonic() < deadline:
                self._wake.wait(timeout=0.1)
            return len(self._pending())

    # --- internals (called with the lock held) -------------------------------------------------

    def _try(self, event_id: str, payload: bytes, spooled: str | None = None) -> bool:
        """True when the alert is done with: delivered, or rejected for good and dead-lettered."""
        try:
            self.transport.deliver(event_id, payload)
        except PermanentDeliveryError as exc:
            self._dead_letter(event_id, payload, spooled, exc.status)
            return True
        except (OSError, ValueError):
            self.failures += 1
            self._delay = min(self.max_delay, max(self.base_delay, self._delay * 2))
            self._next_try = time.monotonic() + self._delay
            return False
        self.delivered += 1
        return True

    def _pending(self) -> list[str]:
        return sorted(n for n in os.listdir(self.directory) if n.endswith(".msg"))

    def _last_seq(self) -> int:
        names = self._pending()
        return int(names[-1].split("-", 1)[0]) if names else 0

    def _spool(self, event_id: str, payload: bytes) -> None:
        names = self._pending()
        used = sum(os.path.getsize(os.path.join(self.directory, n)) for n in names) if names else 0
        if len(names) >= self.max_files or used + len(payload) > self.max_bytes:
            # Bounded by design: a full disk would take the host down with the SIEM.
            self.dropped += 1
            return
        self._seq += 1
        final = os.path.join(self.directory, f"{self._seq:016d}-{event_id}.msg")
        tmp = final + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        self.spooled += 1

    def _dead_letter(self, event_id: str, payload: bytes, spooled: str | None, status: int) -> None:
        """Keep a permanently rejected alert where an operator can inspect and replay it, never retry."""
        dead = self.dead_directory
        os.makedirs(dead, mode=0o700, exist_ok=True)
        self._seq += 1
        final = os.path.join(dead, f"{self._seq:016d}-{event_id}.msg")
        if spooled is not None:
            os.replace(spooled, final)  # already 0600
        else:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
        self.dead += 1
        if status not in self.dead_statuses:
            # Once per status, at the time it happens: a wrong token shows up on the first alert.
            print(
                f"vecleak: error: {self.name}: receiver rejected alert {event_id} with HTTP {status};"
                f" not retrying (check the sink's token and settings); alerts kept in {dead}",
                file=sys.stderr,
                flush=True,
            )
        self.dead_statuses[status] = self.dead_statuses.get(status, 0) + 1

    def _drain(self) -> None:
        for name in self._pending():
            path = os.path.join(self.directory, name)
            with open(path, "rb") as fh:
                payload = fh.read()
            event_id = name[:-4].split("-", 1)[1]
            if not self._try(event_id, payload, spooled=path):
                return
            if os.path.exists(path):
                os.unlink(path)
        self._delay = 0.0

    def _retry_loop(self) -> None:
        with self._lock:
            while not self._closing:
                wait = self._next_try - time.monotonic()
                if self._pending() and wait <= 0:
                    self._drain()
                    self._wake.notify_all()
                    continue
                self._wake.wait(timeout=wait if self._pending() and wait > 0 else 1.0)
