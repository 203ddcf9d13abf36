"""Real OpenTelemetry SDK plumbing and a real ``vecleak serve`` subprocess, shared by trace tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def vecleak_serve(alerts_path: Path, *extra: str) -> Iterator[int]:
    """``vecleak serve`` on a free 127.0.0.1 port; yields the port; SIGTERM and drain on exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "serve", "--otlp", "127.0.0.1:0", "--format", "jsonl",
         "--output", f"jsonl:{alerts_path}", *extra],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    port = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if "listening on http://" in line:
            port = int(line.split("listening on http://", 1)[1].split()[0].rstrip(",").rsplit(":", 1)[1])
            break
        if not line and proc.poll() is not None:
            break
    if port is None:
        proc.kill()
        raise RuntimeError(f"vecleak serve did not start: {proc.stderr.read().decode()}")
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stderr.close()


class Capture:
    """A second OTLP endpoint (plain http.server) that records what a proxy forwarded to it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.arrived = threading.Event()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                capture.requests.append((self.path, self.headers.get("Content-Type", ""), body))
                capture.arrived.set()
                self.send_response(200)
                self.send_header("Content-Type", self.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
