"""Load test for ``vecleak serve --otlp``: the real OTel SDK exporter at a fixed span rate.

Runs twice in one go, against a trivial OTLP sink (an http.server answering 200; the baseline) and
against ``vecleak serve``, and prints, for each: the achieved rate, export latency per batch, failed
exports, and the server's resident memory sampled every second (max and last), so "bounded memory"
is a measured claim. Spans are made up front with the SDK (unique vectors) so the sender's own cost
does not mix into the pacing.

    python bench/otlp_load.py --rate 1000 --seconds 30 --vector-ratio 0.1
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200); self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(f"listening on http://127.0.0.1:{s.server_address[1]}", file=sys.stderr, flush=True)
s.serve_forever()
"""


def make_spans(n: int, dim: int, ratio: float) -> list:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("bench")
    rng = np.random.default_rng(0)
    every = max(1, round(1 / ratio)) if ratio > 0 else 0
    for i in range(n):
        with tracer.start_as_current_span(
            "CreateEmbeddings" if every and i % every == 0 else "http.request"
        ) as s:
            s.set_attribute("http.route", "/v1/search")
            s.set_attribute("user.query.length", i % 97)
            if every and i % every == 0:
                v = rng.standard_normal(dim).astype(np.float32)
                v /= np.linalg.norm(v)
                s.set_attribute("embedding.model_name", "all-MiniLM-L6-v2")
                s.set_attribute("embedding.embeddings.0.embedding.vector", [float(x) for x in v])
    tp.shutdown()
    return list(mem.get_finished_spans())


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def start(cmd: list[str]) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    while True:
        line = proc.stderr.readline().decode()
        if "listening on http://" in line:
            return proc, int(
                line.split("listening on http://", 1)[1].split()[0].rstrip(",").rsplit(":", 1)[1]
            )
        if not line:
            raise SystemExit(f"server did not start: {cmd}")


def drive(port: int, spans: list, rate: int, seconds: int, batch: int, pid: int) -> dict:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=10)
    interval = batch / rate
    latencies, failed, sent = [], 0, 0
    rss, next_sample = [], time.monotonic()
    t0 = time.monotonic()
    total = rate * seconds
    i = 0
    while sent < total:
        due = t0 + (sent / rate)
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        chunk = spans[i : i + batch] or spans[:batch]
        i = (i + batch) % len(spans)
        a = time.monotonic()
        ok = exporter.export(chunk) == SpanExportResult.SUCCESS
        latencies.append(time.monotonic() - a)
        failed += not ok
        sent += len(chunk)
        if time.monotonic() >= next_sample:
            rss.append(rss_kib(pid))
            next_sample += 1.0
    elapsed = time.monotonic() - t0
    exporter.shutdown()
    lat = np.array(latencies) * 1000
    return {
        "spans": sent,
        "seconds": elapsed,
        "rate": sent / elapsed,
        "interval_ms": interval * 1000,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "failed_exports": failed,
        "rss_first_mib": rss[0] / 1024 if rss else 0,
        "rss_max_mib": max(rss) / 1024 if rss else 0,
        "rss_last_mib": rss[-1] / 1024 if rss else 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--vector-ratio", type=float, default=0.1)
    args = ap.parse_args()
    n = min(args.rate * args.seconds, 30000)
    t = time.monotonic()
    spans = make_spans(n, args.dim, args.vector_ratio)
    print(
        f"made {len(spans)} spans ({args.vector_ratio:.0%} with a {args.dim}-d vector) in {time.monotonic() - t:.1f}s"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        alerts = Path(tmp) / "alerts.jsonl"
        for name, cmd in (
            ("baseline: trivial sink", [sys.executable, "-c", SINK]),
            ("vecleak serve", [sys.executable, "-m", "scanner", "serve", "--otlp", "127.0.0.1:0",
                               "--format", "jsonl", "--output", f"jsonl:{alerts}"]),
        ):  # fmt: skip
            proc, port = start(cmd)
            try:
                results[name] = drive(port, spans, args.rate, args.seconds, args.batch, proc.pid)
            finally:
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=120)
            if name == "vecleak serve":
                tail = err.decode().strip().splitlines()
                results[name]["summary"] = tail[-1] if tail else ""
    for name, r in results.items():
        print(
            f"{name:24s} {r['spans']} spans in {r['seconds']:.1f}s = {r['rate']:.0f}/s; export p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.0f} ms (batch every {r['interval_ms']:.0f} ms); "
            f"failed exports {r['failed_exports']}; server RSS first/max/last {r['rss_first_mib']:.0f}/"
            f"{r['rss_max_mib']:.0f}/{r['rss_last_mib']:.0f} MiB"
        )
        if r.get("summary"):
            print(f"{'':24s} {r['summary']}")


if __name__ == "__main__":
    main()
