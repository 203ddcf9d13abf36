"""Write-to-alert latency, CPU and peak RSS of `vecleak watch` under a steady log stream.

A writer appends ``--rate`` lines/s for ``--seconds`` (in 10 ms batches); one line in
``--vector-every`` carries a unique 384-d vector. Latency is the alert's ``event.created`` (stamped
by the daemon when it hands the alert to the sink) minus the wall time the writer wrote that line.
CPU and peak RSS come from /proc for the daemon; the baseline in the same run is ``tail -F FILE |
wc -l`` following the same file (CPU of both processes), and the writer's own CPU.

    python bench/watch_latency.py --rate 10000 --seconds 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def parse_ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=10_000, help="lines per second")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--vector-every", type=int, default=1000, help="one vector line in N (0.1%%)")
    ap.add_argument("--dim", type=int, default=384)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vecleak-bench-"))
    log, out, state = tmp / "app.log", tmp / "alerts.jsonl", tmp / "state.db"
    log.touch()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    daemon_err = open(tmp / "daemon.log", "wb")  # noqa: SIM115
    daemon = subprocess.Popen(
        [sys.executable, "-m", "scanner", "watch", str(log), "--state", str(state)]
        + ["--output", f"jsonl:{out}", "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=daemon_err,
    )
    tail = subprocess.Popen(
        f"tail -n +1 -F {log} | wc -l", shell=True, stdout=subprocess.DEVNULL, start_new_session=True
    )
    time.sleep(3)  # imports done before the clock starts
    tail_pids = [int(p) for p in subprocess.check_output(["pgrep", "-P", str(tail.pid)]).split()]

    rng = np.random.default_rng(0)
    n_vectors = int(args.rate * args.seconds) // args.vector_every + 1
    vecs = rng.standard_normal((n_vectors, args.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vec_lines = [f"DEBUG query_embedding={v.tolist()}\n".encode() for v in vecs]
    shas = [hashlib.sha256(v.astype("<f4").tobytes()).hexdigest() for v in vecs]
    noise = b"2026-11-26T10:00:00Z INFO handled GET /api/search in 12ms status=200 user=u123\n"

    written: dict[str, float] = {}
    cpu0 = cpu_seconds(daemon.pid)
    tail0 = sum(cpu_seconds(p) for p in tail_pids)
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    per_tick = args.rate // 100
    start = time.monotonic()
    line_no = vec_i = 0
    with open(log, "ab", buffering=0) as fh:
        tick = 0
        while time.monotonic() - start < args.seconds:
            parts = []
            for _ in range(per_tick):
                line_no += 1
                if line_no % args.vector_every == 0 and vec_i < n_vectors:
                    parts.append(vec_lines[vec_i])
                    written[shas[vec_i]] = -1.0
                    vec_i += 1
                else:
                    parts.append(noise)
            now = time.time()
            fh.write(b"".join(parts))
            for sha, t in written.items():
                if t < 0:
                    written[sha] = now
            tick += 1
            delay = start + tick * 0.01 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    elapsed = time.monotonic() - start
    me1 = resource.getrusage(resource.RUSAGE_SELF)

    deadline = time.monotonic() + 60
    arrived: dict[str, float] = {}
    while time.monotonic() < deadline and len(arrived) < len(written):
        if out.exists():
            for raw in out.read_bytes().splitlines():
                doc = orjson.loads(raw)
                sha = doc["vecleak"]["vector"]["sha256"]
                arrived.setdefault(sha, parse_ts(doc["event"]["created"]))
        time.sleep(0.2)
    cpu1 = cpu_seconds(daemon.pid)
    tail1 = sum(cpu_seconds(p) for p in tail_pids)
    rss = peak_rss_mb(daemon.pid)
    daemon.terminate()
    rc = daemon.wait(30)
    os.killpg(tail.pid, signal.SIGTERM)

    lat = np.array([arrived[s] - written[s] for s in written if s in arrived])
    rate = line_no / elapsed
    cpu = (cpu1 - cpu0) / elapsed
    report = {
        "date": dt.date.today().isoformat(),
        "lines": line_no,
        "seconds": round(elapsed, 1),
        "rate_lines_s": round(rate),
        "bytes_mb": round(log.stat().st_size / 1e6, 1),
        "vectors_written": len(written),
        "vectors_alerted": len(arrived),
        "latency_p50_s": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
        "latency_p99_s": round(float(np.percentile(lat, 99)), 3) if lat.size else None,
        "latency_max_s": round(float(lat.max()), 3) if lat.size else None,
        "daemon_cpu_cores": round(cpu, 3),
        "daemon_cpu_per_10k_lines_s": round(cpu * 10_000 / rate, 3),
        "daemon_peak_rss_mb": round(rss, 1),
        "baseline_tail_F_wc_cpu_cores": round((tail1 - tail0) / elapsed, 3),
        "baseline_writer_cpu_cores": round(
            (me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime) / elapsed, 3
        ),
        "daemon_exit_code": rc,
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0 if len(arrived) == len(written) else 1


if __name__ == "__main__":
    sys.exit(main())
