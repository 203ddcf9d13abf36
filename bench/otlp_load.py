"""Load test for ``vecleak serve --otlp``, against a trivial OTLP sink measured in the same run.

Two senders, each run against the sink (an http.server answering 200: the baseline) and then
against ``vecleak serve``:

* ``sdk``: the real OTel SDK ``OTLPSpanExporter`` (protobuf over HTTP), one batch at a time, as an
  application exports. Realistic, but at 100% vector spans the SDK's own encoding (384 AnyValues per
  span, in Python) caps what it can send, so it measures the sender as much as the receiver.
* ``replay``: the same spans encoded once up front with the SDK's encoder, and the raw protobuf bodies
  posted by several sender threads (keep-alive connections) on a fixed schedule: batch k is due at
  ``k * batch / rate``; a sender that falls behind posts at once, so the achieved rate is the
  receiver's capacity whenever it is below the target. This measures the receiver itself.

For each: spans/s achieved, request latency p50/p99/max, refused (503) or failed requests, the
server's resident memory sampled every second (first/max/last), and, for vecleak, how many of the
distinct vectors that were delivered it reported (distinct sha256 in its alerts) and how long it took
to drain after the last request. Spans are made up front, each with a unique vector.

    python bench/otlp_load.py --rate 1000 --seconds 30 --vector-ratio 1.0
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson

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
VECTOR_KEY = "embedding.embeddings.0.embedding.vector"


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
                s.set_attribute(VECTOR_KEY, [float(x) for x in v])
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


class RssSampler:
    """The server's RSS once a second, on its own thread (senders may be many)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_kib(self.pid))
            self._stop.wait(1.0)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        s = [x / 1024 for x in self.samples if x] or [0.0]
        return {"rss_first_mib": s[0], "rss_max_mib": max(s), "rss_last_mib": s[-1], "rss_series": s}


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


def _summary(latencies: list[float], spans: int, elapsed: float, interval: float) -> dict:
    lat = np.array(latencies or [0.0]) * 1000
    return {
        "spans": spans,
        "seconds": elapsed,
        "rate": spans / elapsed,
        "interval_ms": interval * 1000,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def drive_sdk(port: int, chunks: list[list], rate: int, seconds: int, batch: int) -> dict:
    """The real exporter, synchronous, one batch at a time (what BatchSpanProcessor does)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=10)
    latencies, failed, sent, delivered = [], 0, 0, set()
    t0 = time.monotonic()
    for k in range(rate * seconds // batch):
        due = t0 + k * batch / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        i = k % len(chunks)
        a = time.monotonic()
        ok = exporter.export(chunks[i]) == SpanExportResult.SUCCESS
        latencies.append(time.monotonic() - a)
        failed += not ok
        if ok:
            sent += len(chunks[i])
            delivered.add(i)
    elapsed = time.monotonic() - t0
    exporter.shutdown()
    return {**_summary(latencies, sent, elapsed, batch / rate), "failed": failed, "delivered": delivered}


def drive_replay(port: int, bodies: list[bytes], sizes: list[int], rate: int, seconds: int, batch: int,
                 senders: int) -> dict:  # fmt: skip
    """Pre-encoded bodies from ``senders`` threads on the schedule, so the receiver is what is measured."""
    total = rate * seconds // batch
    ticket = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    delivered: set[int] = set()
    counts = {"spans": 0, "refused": 0, "failed": 0}
    t0 = time.monotonic()

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/x-protobuf"}
        while True:
            with lock:
                k = next(ticket)
            if k >= total:
                break
            due = t0 + k * batch / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            i = k % len(bodies)
            a = time.monotonic()
            try:
                conn.request("POST", "/v1/traces", bodies[i], headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            took = time.monotonic() - a
            with lock:
                latencies.append(took)
                if status == 200:
                    counts["spans"] += sizes[i]
                    delivered.add(i)
                elif status == 503:
                    counts["refused"] += 1
                else:
                    counts["failed"] += 1
        conn.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return {
        **_summary(latencies, counts["spans"], elapsed, batch / rate),
        "failed": counts["failed"],
        "refused": counts["refused"],
        "delivered": delivered,
    }


def found_vectors(alerts: Path) -> int:
    """Distinct vectors vecleak reported (embedding findings, by sha256)."""
    if not alerts.exists():
        return 0
    shas = set()
    for line in alerts.read_bytes().splitlines():
        if b'"embedding"' in line:
            doc = orjson.loads(line)
            if doc["vecleak"]["finding"]["kind"] == "embedding":
                shas.add(doc["vecleak"]["vector"]["sha256"])
    return len(shas)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--vector-ratio", type=float, default=0.1)
    ap.add_argument("--mode", choices=("sdk", "replay", "both"), default="both")
    ap.add_argument("--senders", type=int, default=4, help="replay: concurrent sender threads")
    args = ap.parse_args()
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    n = min(args.rate * args.seconds, 30000)
    t = time.monotonic()
    spans = make_spans(n, args.dim, args.vector_ratio)
    chunks = [spans[i : i + args.batch] for i in range(0, len(spans), args.batch)]
    vectors = [sum(1 for s in c if VECTOR_KEY in s.attributes) for c in chunks]
    bodies = [encode_spans(c).SerializeToString() for c in chunks]
    print(
        f"made {len(spans)} spans ({args.vector_ratio:.0%} with a {args.dim}-d vector, {sum(vectors)} vectors) "
        f"and encoded them once ({sum(map(len, bodies)) / 2**20:.0f} MiB) in {time.monotonic() - t:.1f}s; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    modes = ("sdk", "replay") if args.mode == "both" else (args.mode,)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            for target in ("sink", "vecleak"):
                alerts = Path(tmp) / f"alerts-{mode}.jsonl"
                cmd = (
                    [sys.executable, "-c", SINK]
                    if target == "sink"
                    else [sys.executable, "-m", "scanner", "serve", "--otlp", "127.0.0.1:0",
                          "--format", "jsonl", "--output", f"jsonl:{alerts}"]
                )  # fmt: skip
                proc, port = start(cmd)
                sampler = RssSampler(proc.pid)
                try:
                    if mode == "sdk":
                        r = drive_sdk(port, chunks, args.rate, args.seconds, args.batch)
                    else:
                        sizes = [len(c) for c in chunks]
                        r = drive_replay(
                            port, bodies, sizes, args.rate, args.seconds, args.batch, args.senders
                        )
                finally:
                    t_end = time.monotonic()
                    proc.send_signal(signal.SIGTERM)
                    _, err = proc.communicate(timeout=300)
                    r_drain = time.monotonic() - t_end
                r.update(sampler.stop())
                r["load"] = os.getloadavg()[0]
                if target == "vecleak":
                    tail = err.decode().strip().splitlines()
                    r["summary"] = tail[-1] if tail else ""
                    r["drain_s"] = r_drain
                    r["found"] = found_vectors(alerts)
                r["expected"] = sum(vectors[i] for i in r["delivered"])
                results[f"{mode} -> {target}"] = r
                print_row(f"{mode} -> {target}", r)
    print("\nsummary")
    for name, r in results.items():
        print_row(name, r)


def print_row(name: str, r: dict) -> None:
    print(
        f"{name:18s} {r['spans']} spans in {r['seconds']:.1f}s = {r['rate']:.0f}/s; request p50 {r['p50_ms']:.1f} ms, "
        f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.0f} ms (batch due every {r['interval_ms']:.0f} ms); "
        f"failed {r['failed']}, refused {r.get('refused', 0)}; server RSS first/max/last "
        f"{r['rss_first_mib']:.0f}/{r['rss_max_mib']:.0f}/{r['rss_last_mib']:.0f} MiB; load {r['load']:.2f}",
        flush=True,
    )
    if "found" in r:
        series = " ".join(f"{x:.0f}" for x in r["rss_series"][:: max(1, len(r["rss_series"]) // 10)])
        print(
            f"{'':18s} vectors found {r['found']} of {r['expected']} delivered; drained in {r['drain_s']:.1f}s "
            f"after the last request; RSS over time (MiB) {series}\n{'':18s} {r['summary']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
