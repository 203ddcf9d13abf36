"""RFC 5424 syslog over UDP, TCP or TLS (RFC 5425), with the ECS JSON or a CEF line as MSG.

Targets: ``syslog+udp://HOST:PORT``, ``syslog+tcp://HOST:PORT``, ``syslog+tls://HOST:PORT``; add
``?format=cef`` for CEF (default ``json``) and ``&facility=N`` (default 13, log audit). TCP and TLS use
octet-counting framing (RFC 6587 §3.4.1), which rsyslog, syslog-ng and most collectors accept.
TLS verifies the server against the system store plus ``$VECLEAK_SYSLOG_CA`` (or ``$VECLEAK_CA_FILE``).

Reliability: TCP has no application ack, so before each write the transport checks whether the
peer has closed the connection and reconnects; a write that fails goes to the spool. UDP is
fire-and-forget: a refused port surfaces only as an error on a later send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import ssl
import urllib.parse
from typing import Any

import orjson

from scanner.ecs import alert_to_ecs
from scanner.formats import alert_to_cef
from scanner.model import Alert, Level
from scanner.reveal import add_sealed_text, recipient_from_options
from scanner.sinks.spool import Spooled, default_spool_dir, spool_options

PEN = 32473  # RFC 5612's documentation enterprise number, until vecleak has its own
# RFC 5424 severities: 2 critical, 3 error, 4 warning, 5 notice, 6 informational.
_SEVERITY = {Level.critical: 2, Level.high: 3, Level.medium: 4, Level.low: 5, Level.informational: 6}


def _sd_value(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def render_5424(
    alert: Alert,
    fmt: str = "json",
    facility: int = 13,
    hostname: str | None = None,
    reveal_to: Any = None,
) -> bytes:
    doc = add_sealed_text(alert_to_ecs(alert), alert, reveal_to)
    v = doc["vecleak"]
    pri = facility * 8 + _SEVERITY[alert.level]
    ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    host = (hostname or socket.gethostname() or "-")[:255].replace(" ", "_")
    sd_params = {
        "id": alert.event_id,
        "rule": alert.rule_id,
        "level": alert.level.name,
        "sha256": v["vector"]["sha256"],
        "model": v["fingerprint"]["model"] or "unknown",
    }
    sd = f"[vecleak@{PEN} " + " ".join(f'{k}="{_sd_value(val)}"' for k, val in sd_params.items()) + "]"
    msg = alert_to_cef(alert, doc).encode() if fmt == "cef" else orjson.dumps(doc)
    header = f"<{pri}>1 {ts} {host} vecleak {os.getpid()} {'CEF' if fmt == 'cef' else 'ALERT'} {sd} "
    return header.encode() + msg


class SyslogTransport:
    name = "syslog"

    def __init__(
        self,
        proto: str,
        host: str,
        port: int,
        fmt: str = "json",
        facility: int = 13,
        timeout: float = 5.0,
        reveal_to: Any = None,
    ):
        self.reveal_to = reveal_to  # X25519 public key: opt-in sealed clear text (scanner.reveal)
        if proto not in ("udp", "tcp", "tls"):
            raise ValueError(f"syslog transport must be udp, tcp or tls, not {proto!r}")
        if fmt not in ("json", "cef"):
            raise ValueError(f"syslog message format must be json or cef, not {fmt!r}")
        self.proto, self.host, self.port = proto, host, port
        self.fmt, self.facility, self.timeout = fmt, facility, timeout
        self._sock: socket.socket | None = None

    def render(self, alert: Alert) -> bytes:
        return render_5424(alert, self.fmt, self.facility, reveal_to=self.reveal_to)

    def _connect(self) -> socket.socket:
        if self.proto == "udp":
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect((self.host, self.port))
            return sock
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self.proto == "tls":
            ctx = ssl.create_default_context()
            ca = os.environ.get("VECLEAK_SYSLOG_CA") or os.environ.get("VECLEAK_CA_FILE")
            if ca:
                ctx.load_verify_locations(cafile=ca)
            sock = ctx.wrap_socket(sock, server_hostname=self.host)
        return sock

    def _peer_closed(self, sock: socket.socket) -> bool:
        """A collector that restarted closed our connection: the next write would vanish, so look first."""
        try:
            sock.setblocking(False)
            try:
                data = sock.recv(1, socket.MSG_PEEK) if not isinstance(sock, ssl.SSLSocket) else sock.recv(1)
            finally:
                sock.setblocking(True)
                sock.settimeout(self.timeout)
            return data == b""
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            return True

    def deliver(self, event_id: str, payload: bytes) -> None:
        if self._sock is not None and self.proto != "udp" and self._peer_closed(self._sock):
            self.close()
        if self._sock is None:
            self._sock = self._connect()
        try:
            if self.proto == "udp":
                self._sock.send(payload[:65000])
            else:
                self._sock.sendall(str(len(payload)).encode() + b" " + payload)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def parse(spec: str) -> tuple[str, str, int, dict[str, str]]:
    url = urllib.parse.urlsplit(spec)
    proto = url.scheme.partition("+")[2]
    if not url.hostname or not url.port:
        raise ValueError(f"{spec!r}: expected syslog+udp|tcp|tls://HOST:PORT")
    return proto, url.hostname, url.port, dict(urllib.parse.parse_qsl(url.query))


def open(target: str, **options: Any) -> Spooled:  # noqa: A001 - the sink-module convention
    proto, host, port, query = parse(target)
    fmt = options.get("format") or query.get("format", "json")
    facility = int(options.get("facility") or query.get("facility", 13))
    transport = SyslogTransport(proto, host, port, fmt, facility, reveal_to=recipient_from_options(options))
    return Spooled(transport, options.get("spool_dir") or default_spool_dir(target), **spool_options(options))
