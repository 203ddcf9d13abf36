"""Documents scanned per second by `vecleak es scan` on a 100k-document log index, with a baseline.

Baseline, measured in the same run on the same index: a plain point-in-time walk (PIT/_shard_doc on
Elasticsearch, scroll on OpenSearch) that fetches every document and decodes the JSON but detects
nothing: the floor any scanner over that server pays. The index is built once (reused if present
with the right count): realistic ECS log documents (tests/es/docs.py) with 30 planted vectors.

    python bench/es_scan.py --url http://127.0.0.1:9200 [--docs 100000] [--slices 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scanner.sources.elasticsearch import Cluster, load_indexes, walk_index  # noqa: E402
from tests.es.docs import bulk, log_docs, plant_log_docs, rest  # noqa: E402


def ensure_index(url: str, index: str, n: int) -> None:
    try:
        if rest(url, "GET", f"/{index}/_count")["count"] == n + 30:
            return
        rest(url, "DELETE", f"/{index}")
    except AssertionError:
        pass
    rest(
        url,
        "PUT",
        f"/{index}",
        {"settings": {"number_of_shards": 2, "number_of_replicas": 0, "refresh_interval": "-1"}},
    )
    step = 5000
    for start in range(0, n, step):
        bulk(url, index, log_docs(min(step, n - start), seed=start, start=start))
    for k in range(10):
        docs, _ = plant_log_docs(n + 3 * k, seed=100 + k)
        bulk(url, index, docs)
    rest(url, "PUT", f"/{index}/_settings", {"index": {"refresh_interval": "1s"}})
    rest(url, "POST", f"/{index}/_refresh")
    rest(url, "POST", f"/{index}/_forcemerge?max_num_segments=1")


def baseline(url: str, index: str) -> tuple[int, float]:
    cluster = Cluster.connect(url)
    (info,) = load_indexes(cluster, index)
    t = time.perf_counter()
    n = sum(1 for _ in walk_index(cluster, info))
    return n, time.perf_counter() - t


def cli(url: str, index: str, *extra: str) -> tuple[int, float, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "es", "scan", "--url", url, "--index", index, "--format", "jsonl", "--no-progress", *extra],
        capture_output=True, cwd=REPO, env=env,
    )  # fmt: skip
    dt = time.perf_counter() - t
    if proc.returncode not in (0, 3):
        raise SystemExit(proc.stderr.decode())
    docs = int(proc.stderr.split(b"vecleak es: ")[1].split(b" ")[0].replace(b",", b""))
    found = len(
        {
            line.split(b'"location":')[1][:120]
            for line in proc.stdout.splitlines()
            if b'"kind":"alert"' in line
        }
    )
    return docs, dt, found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:9200")
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--index", default="bench-logs")
    ap.add_argument("--slices", type=int, default=2)
    args = ap.parse_args()
    ensure_index(args.url, args.index, args.docs)
    flavor = Cluster.connect(args.url).flavor
    size = rest(args.url, "GET", f"/{args.index}/_stats/store")["_all"]["primaries"]["store"]["size_in_bytes"]
    print(f"# {flavor} at {args.url}: {args.index}, {args.docs + 30:,} docs, {size / 2**20:.0f} MiB; "
          f"{os.cpu_count()} cores, {platform.python_version()}")  # fmt: skip
    n, dt = baseline(args.url, args.index)
    print(f"baseline walk (no detection)   {n:>7,} docs {dt:6.1f}s {n / dt:>8,.0f} docs/s")
    n, dt, found = cli(args.url, args.index)
    print(
        f"vecleak es scan, 1 process     {n:>7,} docs {dt:6.1f}s {n / dt:>8,.0f} docs/s  ({found} planted fields found)"
    )
    if args.slices > 1:
        n, dt, found = cli(args.url, args.index, "--slices", str(args.slices))
        print(
            f"vecleak es scan, {args.slices} processes   {n:>7,} docs {dt:6.1f}s {n / dt:>8,.0f} docs/s  ({found} planted fields found)"
        )


if __name__ == "__main__":
    main()
