"""OTLP/HTTP receiver: ``POST /v1/traces`` and ``/v1/logs``, JSON or protobuf, gzip or identity.

It must never slow the sender: exporters wait for the answer before they send the next batch. So
the request thread only validates (a C parse, to answer 400 for bad data as the OTLP spec asks, and a
read of each span's ids for ``partial_success``) and enqueues the raw body; decoding into Python
values and scanning happen after the 200, on one worker thread. The queue is bounded in the bytes of
the bodies it holds, and when it is full the answer is 503 with ``Retry-After``, which OTLP exporters
retry with backoff, so memory stays bounded whatever the sender does. In proxy mode the body is
forwarded to the next OTLP endpoint from its own bounded queue and thread, which also redacts it.

Status codes follow the OTLP/HTTP spec: 200 with an Export*ServiceResponse (``partial_success`` when
spans had malformed ids), 400 bad data, 404 unknown path, 405 not POST, 411 no length, 413 too large,
415 unsupported content type, 503 overloaded.
"""

from __future__ import annotations

import collections
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from scanner.otlp import redact as redactor
from scanner.traces.base import SpanView
from scanner.traces.otlp_json import count_items, views_from_document

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
SIGNALS = {"/v1/traces": "traces", "/v1/logs": "logs"}
RETRY_AFTER_S = 1


@dataclass
class Counters:
    requests: int = 0
    accepted: int = 0
    rejected_full: int = 0
    bad_requests: int = 0
    spans: int = 0
    logs: int = 0
    invalid_items: int = 0
    redacted_vectors: int = 0
    forwarded: int = 0
    forward_failed: int = 0
    by_status: collections.Counter[int] = field(default_factory=collections.Counter)


class BoundedQueue:
    """A FIFO bounded by the bytes it holds, not by item count: one huge request and many small ones
    cost what they weigh."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: collections.deque[tuple[Any, int]] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self.closed = False

    def offer(self, item: Any, size: int) -> bool:
        with self._cond:
            if self.closed or (self._items and self._bytes + size > self.max_bytes):
                return False
            self._items.append((item, size))
            self._bytes += size
            self._cond.notify()
            return True

    def take(self) -> Any | None:
        """The next item; None once closed and drained."""
        with self._cond:
            while not self._items and not self.closed:
                self._cond.wait()
            if not self._items:
                return None
            item, size = self._items.popleft()
            self._bytes -= size
            return item

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def bytes(self) -> int:
        return self._bytes


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _proto_modules() -> dict[str, tuple[Any, Any]]:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    return {
        "traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
        "logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
    }


class OtlpReceiver:
    """The HTTP server, the scan queue and worker, and the optional forwarder."""

    def __init__(
        self,
        host: str,
        port: int,
        on_views: Callable[[str, list[SpanView]], None],
        queue_bytes: int = 64 * 1024 * 1024,
        max_body: int = 16 * 1024 * 1024,
        forward: str | None = None,
        redact: bool = False,
        forward_timeout: float = 10.0,
    ) -> None:
        self.on_views = on_views
        self.max_body = max_body
        self.forward = forward.rstrip("/") if forward else None
        self.redact = redact
        self.forward_timeout = forward_timeout
        self.counters = Counters()
        self.queue = BoundedQueue(queue_bytes)
        self.forward_queue = BoundedQueue(queue_bytes) if forward else None
        try:
            self.proto: dict[str, tuple[Any, Any]] | None = _proto_modules()
        except ImportError:  # the otlp extra is not installed: JSON only
            self.proto = None
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self.server.serve_forever, name="otlp-http", daemon=True),
            threading.Thread(target=self._scan_loop, name="otlp-scan", daemon=True),
        ]
        if self.forward_queue is not None:
            self._threads.append(
                threading.Thread(target=self._forward_loop, name="otlp-forward", daemon=True)
            )
        for t in self._threads:
            t.start()

    def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop accepting, then finish what was already accepted (it was acknowledged with 200)."""
        self.server.shutdown()
        self.server.server_close()
        self.queue.close()
        if self.forward_queue is not None:
            self.forward_queue.close()
        for t in self._threads[1:]:
            t.join(drain_timeout)

    # ---- request handling (HTTP threads) ----------------------------------------------------------

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes, dict[str, str]]:
        """Status, content type, body and extra headers for one POST."""
        signal = SIGNALS.get(path.split("?", 1)[0])
        if signal is None:
            return 404, JSON, _status_json(5, f"unknown path {path}"), {}
        ctype = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype not in (JSON, PROTOBUF) or (ctype == PROTOBUF and self.proto is None):
            return 415, JSON, _status_json(3, f"unsupported content type {ctype!r}"), {}
        encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
        try:
            if encoding == "gzip":
                body = _gunzip(body, self.max_body)
            elif encoding not in ("identity", ""):
                raise _BadRequest(415, f"unsupported content encoding {encoding!r}")
            items, invalid = self._check(signal, ctype, body)
        except _BadRequest as exc:
            self._count(bad_requests=1)
            return exc.status, ctype, self._error_body(ctype, str(exc)), {}
        # The raw body is what waits: it weighs what it says, and the worker decodes one at a time.
        if not self.queue.offer((signal, ctype, body), len(body)):
            self._count(rejected_full=1)
            return 503, ctype, self._error_body(ctype, "scan queue full"), self._retry()
        # Scan first, forward second: when the forward queue is full the retried body is scanned
        # twice (alert dedup absorbs it) rather than forwarded twice to the trace store.
        fq = self.forward_queue
        if fq is not None and not fq.offer((signal, ctype, body), len(body)):
            self._count(rejected_full=1)
            return 503, ctype, self._error_body(ctype, "forward queue full"), self._retry()
        self._count(accepted=1, invalid_items=invalid, **{"spans" if signal == "traces" else "logs": items})
        return 200, ctype, self._success_body(signal, ctype, invalid), {}

    def _check(self, signal: str, ctype: str, body: bytes) -> tuple[int, int]:
        """Validate a request cheaply: how many spans (or log records) it holds, and how many of
        those have malformed ids (for ``partial_success``). Raises :class:`_BadRequest` for 400.

        This runs while the exporter waits for its answer, so it parses (upb protobuf or orjson, both
        C, well under a millisecond for 100 spans with a 384-d vector each) and reads ids, but builds
        no Python values: decoding and scanning are the worker's job, after the 200.
        """
        if ctype == JSON:
            doc = _json_doc(signal, body)
            key = "resourceSpans" if signal == "traces" else "resourceLogs"
            try:
                bad_spans, bad_logs, spans, logs = count_items({key: doc.get(key) or []})
            except (AttributeError, TypeError, ValueError) as exc:
                raise _BadRequest(400, f"not an OTLP {signal} request: {exc}") from None
            return (spans, bad_spans) if signal == "traces" else (logs, bad_logs)
        msg = self._proto_request(signal, body)
        items = invalid = 0
        if signal == "traces":
            for rs in msg.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        items += 1
                        invalid += not (_valid_id(span.trace_id, 16) and _valid_id(span.span_id, 8))
        else:
            for rl in msg.resource_logs:
                for sl in rl.scope_logs:
                    for log in sl.log_records:
                        items += 1
                        invalid += not (
                            (not log.trace_id or _valid_id(log.trace_id, 16))
                            and (not log.span_id or _valid_id(log.span_id, 8))
                        )
        return items, invalid

    def _proto_request(self, signal: str, body: bytes) -> Any:
        from google.protobuf.message import DecodeError

        assert self.proto is not None
        try:
            return self.proto[signal][0].FromString(body)
        except (DecodeError, ValueError) as exc:
            raise _BadRequest(400, f"invalid protobuf: {exc}") from None

    def decode(self, signal: str, ctype: str, body: bytes) -> list[SpanView]:
        """The spans (or log records) of an accepted request, as the scanner reads them (worker side)."""
        from scanner.traces import otlp_proto

        if ctype == JSON:
            key = "resourceSpans" if signal == "traces" else "resourceLogs"
            return views_from_document({key: _json_doc(signal, body).get(key) or []}) or []
        msg = self._proto_request(signal, body)
        return otlp_proto.views_from_traces(msg) if signal == "traces" else otlp_proto.views_from_logs(msg)

    def _forward_body(self, signal: str, ctype: str, body: bytes) -> bytes:
        """What goes to the next hop: the body as received, or with its vectors redacted."""
        if not self.redact:
            return body
        if ctype == JSON:
            doc = _json_doc(signal, body)
            self._count(redacted_vectors=redactor.redact_json(doc))
            return orjson.dumps(doc)
        msg = self._proto_request(signal, body)
        self._count(redacted_vectors=redactor.redact_proto(msg))
        return msg.SerializeToString()

    def _success_body(self, signal: str, ctype: str, invalid: int) -> bytes:
        what = "rejectedSpans" if signal == "traces" else "rejectedLogRecords"
        message = "malformed trace or span id" if invalid else ""
        if ctype == JSON:
            return orjson.dumps(
                {"partialSuccess": {what: invalid, "errorMessage": message}} if invalid else {}
            )
        assert self.proto is not None
        response = self.proto[signal][1]()
        if invalid:
            setattr(
                response.partial_success,
                "rejected_spans" if signal == "traces" else "rejected_log_records",
                invalid,
            )
            response.partial_success.error_message = message
        return response.SerializeToString()

    def _error_body(self, ctype: str, message: str) -> bytes:
        if ctype == PROTOBUF:
            try:
                from google.rpc import status_pb2

                return status_pb2.Status(code=3, message=message).SerializeToString()
            except ImportError:
                return b""
        return _status_json(3, message)

    @staticmethod
    def _retry() -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_S)}

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.counters, name, getattr(self.counters, name) + delta)

    # ---- workers ----------------------------------------------------------------------------------

    def _scan_loop(self) -> None:
        while True:
            item = self.queue.take()
            if item is None:
                return
            signal, ctype, body = item
            try:
                self.on_views(signal, self.decode(signal, ctype, body))
            except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the receiver
                import sys

                print(f"vecleak: scan worker error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def _forward_loop(self) -> None:
        assert self.forward_queue is not None
        while True:
            item = self.forward_queue.take()
            if item is None:
                return
            signal, ctype, body = item
            try:
                body = self._forward_body(signal, ctype, body)
            except Exception as exc:  # noqa: BLE001 - it was checked on arrival; never forward unredacted
                self._count(forward_failed=1)
                import sys

                print(f"vecleak: forward error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                continue
            ok = False
            for attempt in range(4):
                status = _post(f"{self.forward}/v1/{signal}", ctype, body, self.forward_timeout)
                if 200 <= status < 300:
                    ok = True
                    break
                if status not in (0, 429, 502, 503, 504):
                    break  # the next hop says the data is bad: retrying will not help
                time.sleep(0.2 * 2**attempt)
            self._count(**({"forwarded": 1} if ok else {"forward_failed": 1}))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse one connection
            server_version = "vecleak-otlp"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                receiver._count(requests=1)
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    self._reply(411, JSON, _status_json(3, "Content-Length required"), {}, close=True)
                    return
                n = int(length)
                if n > receiver.max_body:
                    self._reply(
                        413, JSON, _status_json(3, f"body over {receiver.max_body} bytes"), {}, close=True
                    )
                    return
                body = self.rfile.read(n)
                status, ctype, out, extra = receiver.handle(self.path, self.headers, body)
                self._reply(status, ctype, out, extra)

            def do_GET(self) -> None:  # noqa: N802
                self._reply(405, JSON, _status_json(3, "use POST"), {"Allow": "POST"})

            do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

            def _reply(
                self, status: int, ctype: str, body: bytes, extra: dict[str, str], close: bool = False
            ) -> None:
                receiver.counters.by_status[status] += 1
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra.items():
                    self.send_header(k, v)
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # one line per request would cost more than the request

        return Handler


def _valid_id(value: bytes, nbytes: int) -> bool:
    """A protobuf trace/span id: exactly ``nbytes`` bytes, not all zero (the spec's invalid id)."""
    return len(value) == nbytes and value.count(0) != nbytes


def _json_doc(signal: str, body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise _BadRequest(400, f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _BadRequest(400, "the body is not a JSON object")
    return doc


def _gunzip(body: bytes, limit: int) -> bytes:
    """Bounded: a gzip bomb stops at ``limit`` bytes instead of filling memory."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _BadRequest(400, f"invalid gzip body: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise _BadRequest(413, f"decompressed body over {limit} bytes")
    return out


def _status_json(code: int, message: str) -> bytes:
    return orjson.dumps({"code": code, "message": message})


def _post(url: str, ctype: str, body: bytes, timeout: float) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - operator-given URL
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0


__all__ = ["BoundedQueue", "OtlpReceiver"]
