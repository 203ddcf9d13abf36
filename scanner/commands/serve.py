"""``vecleak serve --otlp HOST:PORT``: scan telemetry as it arrives; optionally redact and forward it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from scanner.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, error
from scanner.commands.scan import add_output_options, prepare
from scanner.model import SourceRef
from scanner.traces import batch_for
from scanner.traces.base import SpanView

# The dedup set is the receiver's only state that grows with traffic; past this it starts afresh
# (a repeat after the reset alerts once more, which is better than unbounded memory).
MAX_SEEN = 200_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="receive OTLP/HTTP traces and logs and alert on vectors in them",
        description="Listen for OTLP/HTTP (/v1/traces, /v1/logs; JSON or protobuf; gzip) and scan "
        "every span attribute, span event and log body. With --forward, act as a proxy to the next "
        "OTLP endpoint; with --redact, vectors are replaced by a marker and their hash on the way.",
    )
    p.add_argument("--otlp", required=True, metavar="HOST:PORT", help="listen address (port 0 picks one)")
    p.add_argument("--forward", metavar="URL", help="forward telemetry to this OTLP/HTTP base URL")
    p.add_argument("--redact", action="store_true", help="with --forward: replace vectors before forwarding")
    p.add_argument("--queue-mb", type=int, default=64, help="scan queue bound; 503 when full (default 64)")
    p.add_argument("--max-body-mb", type=int, default=16, help="largest request accepted (default 16)")
    add_output_options(p)
    p.set_defaults(func=run)


def _address(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def run(args: argparse.Namespace) -> int:
    address = _address(args.otlp)
    if address is None:
        error(f"--otlp {args.otlp!r}: expected HOST:PORT")
        return EXIT_USAGE
    if args.redact and not args.forward:
        error("--redact needs --forward URL (redaction only changes what is forwarded)")
        return EXIT_USAGE
    prepared = prepare(args)
    if isinstance(prepared, int):
        return prepared
    engine, _fail_on = prepared
    keep_sent = bool(args.write_baseline)

    from scanner.otlp.receiver import OtlpReceiver

    source = SourceRef(kind="otlp", display=f"otlp://{args.otlp}", identity=f"otlp:{args.otlp}")

    lock = threading.Lock()  # the worker feeds, the main thread closes grouping windows (tick)

    def on_views(_signal: str, views: list[SpanView]) -> None:
        with lock:
            _feed(views)

    def _feed(views: list[SpanView]) -> None:
        # One request is one batch: classification and fingerprinting run once for all its spans.
        records, decoded = batch_for(views, source)
        engine.feed_batch(records, decoded)
        if not keep_sent:
            engine.sent.clear()  # only --write-baseline needs the history
        if len(engine.seen) > MAX_SEEN:
            engine.seen.clear()

    try:
        receiver = OtlpReceiver(
            address[0],
            address[1],
            on_views,
            queue_bytes=args.queue_mb * 1024 * 1024,
            max_body=args.max_body_mb * 1024 * 1024,
            forward=args.forward,
            redact=args.redact,
        )
    except OSError as exc:
        error(f"cannot listen on {args.otlp}: {exc.strerror or exc}")
        return EXIT_ERROR
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    receiver.start()
    host, port = receiver.address
    mode = f", forwarding to {args.forward}{' (redacted)' if args.redact else ''}" if args.forward else ""
    print(f"vecleak: OTLP/HTTP receiver listening on http://{host}:{port}{mode}", file=sys.stderr, flush=True)
    while not stop.wait(1.0):
        with lock:
            engine.tick()  # --group-window roll-ups go out when their window ends, even when idle
    receiver.stop()
    summary = engine.close(0)
    c = receiver.counters
    print(
        f"vecleak: {c.requests} request(s), {c.spans} span(s), {c.logs} log record(s), "
        f"{c.rejected_full} refused (queue full), {c.bad_requests} bad, "
        f"{summary['findings']} finding(s), {summary['alerts']} alert(s), "
        f"{c.redacted_vectors} vector(s) redacted, {c.forwarded} forwarded, {c.forward_failed} forward failure(s)",
        file=sys.stderr,
        flush=True,
    )
    if args.write_baseline:
        from scanner.engine import write_baseline

        write_baseline(args.write_baseline, engine.sent, engine.baseline | engine.seen)
    return EXIT_OK
