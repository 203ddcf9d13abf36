"""Deterministic generator of a realistic application log with planted embedding vectors.

The throughput goal (issue #2) is measured on this file: about 12 million lines per GB, one line in
1,000 carrying a 384-d vector printed as a Python list (about 8 KB a line, about 10% of the bytes).
The other lines are what real logs are full of, including the decoys that make prefilters work for
their keep: brackets (``[INFO]``, ``[req-…]``), short numeric lists, integer histograms, long base64
session tokens and JWTs, UUIDs, IPs, JSON documents and multi-line stack traces.

Seeded, so two runs write byte-identical files; a sidecar ``<file>.planted.json`` lists the line
number of every planted vector so the benchmark can check that the scanner found exactly those.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

import numpy as np
import orjson

DIM = 384
VECTOR_EVERY = 1000
POOL = 200_000
CHUNK_LINES = 100_000
DEFAULT_SIZE = 1_000_000_000

_LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR")
_LOGGERS = (
    "app.api",
    "app.retriever",
    "uvicorn.access",
    "sqlalchemy.engine",
    "worker.tasks",
    "auth.session",
    "kafka.consumer",
    "httpx",
    "cache.redis",
)
_PATHS = (
    "/api/v1/search",
    "/api/v1/users/{}",
    "/healthz",
    "/static/app.{}.js",
    "/api/v2/orders/{}/items",
    "/login",
    "/metrics",
)
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "curl/8.4.0",
    "python-httpx/0.27.0",
    "Go-http-client/1.1",
)
_WORDS = [
    "request",
    "handled",
    "user",
    "cache",
    "miss",
    "hit",
    "retry",
    "timeout",
    "connection",
    "pool",
    "opened",
    "closed",
    "query",
    "rows",
    "fetched",
    "batch",
    "committed",
    "token",
    "refreshed",
    "session",
    "expired",
    "shard",
    "rebalanced",
]


def _ts(rng: np.random.Generator) -> str:
    h, m, s, ms = rng.integers(0, 24), rng.integers(0, 60), rng.integers(0, 60), rng.integers(0, 1000)
    return f"2026-11-26T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z"


def _ip(rng: np.random.Generator) -> str:
    a = rng.integers(1, 255, size=4)
    return f"{a[0]}.{a[1]}.{a[2]}.{a[3]}"


def _uuid(rng: np.random.Generator) -> str:
    h = rng.bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _b64(rng: np.random.Generator, n: int, urlsafe: bool = False) -> str:
    raw = rng.bytes(n)
    return (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode().rstrip("=")


def _words(rng: np.random.Generator, lo: int = 3, hi: int = 10) -> str:
    return " ".join(_WORDS[i] for i in rng.integers(0, len(_WORDS), size=int(rng.integers(lo, hi))))


def ordinary_line(rng: np.random.Generator) -> str:
    """One log entry (a stack trace is several lines); no embedding vector.

    The mix is weighted to short lines (about 75 bytes on average), as the goal's 12 million lines
    per GB imply; the rarer long lines are the decoys.
    """
    kind = int(rng.integers(0, 1000))
    ts, lvl = _ts(rng), _LEVELS[int(rng.integers(0, len(_LEVELS)))]
    logger = _LOGGERS[int(rng.integers(0, len(_LOGGERS)))]
    if kind < 280:  # plain text
        return f"{ts} {lvl} {logger}: {_words(rng, 1, 4)}\n"
    if kind < 420:  # bracketed level and tags, a request id
        return f"{ts} [{lvl}] [{logger}] [req-{_uuid(rng)[:6]}] {_words(rng, 1, 3)}\n"
    if kind < 570:  # HTTP access log
        path = _PATHS[int(rng.integers(0, len(_PATHS)))].format(int(rng.integers(1, 99999)))
        status = (200, 200, 200, 201, 304, 404, 500)[int(rng.integers(0, 7))]
        line = f'{_ip(rng)} - - [26/Nov/2026:{ts[11:19]} +0000] "GET {path} HTTP/1.1" {status} {int(rng.integers(80, 90000))}'
        if kind < 520:
            return line + "\n"
        return f'{line} "-" "{_AGENTS[int(rng.integers(0, len(_AGENTS)))]}"\n'
    if kind < 690:  # structured JSON log
        doc: dict = {"ts": ts, "level": lvl.lower(), "msg": _words(rng, 1, 4)}
        if kind < 650:
            doc["ms"] = round(float(rng.random() * 500), 1)
        elif kind < 670:
            doc["tags"] = ["search", "v2", "canary"][: int(rng.integers(1, 4))]
        else:
            doc["trace_id"] = rng.bytes(16).hex()
            doc["user"] = _uuid(rng)
        return orjson.dumps(doc).decode() + "\n"
    if kind < 770:  # short numeric lists: scores, shapes (decoys below 16 items)
        n = int(rng.integers(2, 8))
        vals = ", ".join(f"{x:.3f}" for x in rng.random(n))
        return f"{ts} {lvl} {logger}: top-{n} [{vals}] shape=[{n}, {DIM}]\n"
    if kind < 775:  # integer histogram: a long list, not an embedding (classifier decoy)
        vals = ",".join(str(int(x)) for x in rng.integers(0, 500, size=int(rng.integers(16, 32))))
        return f"{ts} {lvl} metrics: buckets=[{vals}]\n"
    if kind < 820:  # cookies, bearer tokens and JWTs: long base64 runs (base64 decoy)
        if kind < 810:
            return f"{ts} DEBUG auth: Set-Cookie: sid={_b64(rng, 32)}; HttpOnly\n"
        jwt = ".".join(
            (_b64(rng, 27, True), _b64(rng, int(rng.integers(120, 260)), True), _b64(rng, 64, True))
        )
        return f"{ts} DEBUG httpx: Authorization: Bearer {jwt}\n"
    if kind < 850:  # SQL
        return (
            f"{ts} {lvl} sqlalchemy: SELECT id FROM users WHERE id = {int(rng.integers(1, 10**6))} [cached]\n"
        )
    if kind < 855:  # multi-line Python traceback (continuation lines are indented)
        return (
            f"{ts} ERROR worker.tasks: task failed\n"
            "Traceback (most recent call last):\n"
            '  File "/srv/app/worker/tasks.py", line 88, in run\n'
            "    result = handler(payload)\n"
            f"TimeoutError: upstream 10.0.{int(rng.integers(0, 255))}.7 timed out after 30s\n"
        )
    # key=value line
    return f"{ts} level={lvl.lower()} ip={_ip(rng)} bytes={int(rng.integers(0, 10**7))} {_words(rng, 1, 3)}\n"


def vector_line(rng: np.random.Generator, vec: np.ndarray) -> str:
    """A 384-d float32 embedding printed via ``.tolist()`` as a Python list (float64 digits)."""
    body = str(vec.astype(np.float64).tolist())
    ts = _ts(rng)
    style = int(rng.integers(0, 4))
    if style == 0:
        return f"{ts} DEBUG app.retriever - query embedding: {body}\n"
    if style == 1:
        return f"{ts} [DEBUG] [app.retriever] embedding={body} dim={DIM}\n"
    if style == 2:
        return f"{ts} DEBUG app.retriever - vec = {body}\n"
    return f'{{"ts": "{ts}", "level": "debug", "msg": "embedded chunk", "embedding": {body}}}\n'


def generate(path: Path, size: int = DEFAULT_SIZE, seed: int = 2026) -> dict:
    """Write about ``size`` bytes; returns counts and the planted vectors' line numbers."""
    rng = np.random.default_rng(seed)
    pool = [ordinary_line(rng).encode() for _ in range(POOL)]
    pool_lines = np.array([p.count(b"\n") for p in pool], dtype=np.int64)
    planted: list[int] = []
    written = 0
    line = 1
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as out:
        while written < size:
            idx = rng.integers(0, POOL, size=CHUNK_LINES)
            entries = [pool[i] for i in idx]
            counts = pool_lines[idx]
            slots = np.sort(rng.choice(CHUNK_LINES, size=CHUNK_LINES // VECTOR_EVERY, replace=False))
            vecs = rng.standard_normal((len(slots), DIM)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            for slot, vec in zip(slots, vecs, strict=True):
                entries[slot] = vector_line(rng, vec).encode()
                counts[slot] = 1
            starts = line + np.concatenate(([0], np.cumsum(counts)[:-1]))
            planted.extend(int(x) for x in starts[slots])
            blob = b"".join(entries)
            out.write(blob)
            written += len(blob)
            line += int(counts.sum())
    os.replace(tmp, path)
    meta = {"seed": seed, "bytes": written, "lines": line - 1, "vectors": len(planted), "planted": planted}
    Path(str(path) + ".planted.json").write_bytes(orjson.dumps(meta))
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="file to write")
    p.add_argument("--size", type=float, default=DEFAULT_SIZE / 1e6, help="megabytes (default 1000)")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = generate(args.out, int(args.size * 1e6), args.seed)
    print(
        f"{args.out}: {meta['bytes']:,} bytes, {meta['lines']:,} lines, {meta['vectors']:,} vectors",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
