"""``vecleak scan --state`` benchmark: the nightly run after 1 MB was appended, against a full scan.

    python bench/incremental.py                      # bench/.data/l200.log, 3 rounds, core 0
    python bench/incremental.py --log FILE --append-mb 1 --repeat 3 --gzip

Each round, in a fresh temporary folder, on one core (``taskset -c 0``), all through the CLI
(``vecleak scan DIR --format jsonl --no-progress``, a subprocess, end to end):

1. ``full``: the log (a copy of ``--log``) scanned without ``--state``;
2. ``first``: the same with ``--state``: the first night, which reads everything;
3. ``--append-mb`` of new log lines (``bench/gen_logs.py``, ``--seed``) are appended;
4. ``second``: ``--state`` again: the second night, which reads only the appended bytes;
5. ``full+append``: the grown log without ``--state`` (what every night costs without it);
6. ``unchanged``: ``--state`` once more, with nothing new.

With ``--gzip`` (once, outside the rounds: compressing takes a while) the grown log is then rotated
as logrotate does (renamed, compressed with gzip level 6) and ``rotated-gz`` times ``--state`` over
it (the first night after the rotation: inflate and skip, nothing to scan), ``rotated-gz again``
the night after (known by its compressed bytes: not inflated), against ``full-gz``, the ``.gz``
scanned without ``--state``.

Reported per step: median wall seconds, CPU seconds, the bytes the process read (``rchar`` of
``/proc/self/io``: every ``read()``, Python's own imports included, so a run over an empty folder
is reported too as the floor) and the bytes the summary line says were scanned. Correctness: the
``second`` run's alerts must be exactly those of ``full+append`` that lie on the appended lines.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / ".data"

# Runs the CLI and, at exit, writes the process's I/O counters next to its state (or to $IO_OUT).
_WITH_IO = (
    "import atexit, os, sys\n"
    "def _io():\n"
    "    open(os.environ['IO_OUT'], 'w').write(open('/proc/self/io').read())\n"
    "atexit.register(_io)\n"
    "from scanner.cli import main\n"
    "sys.exit(main())\n"
)


def pin() -> list[str]:
    return ["taskset", "-c", os.environ.get("BENCH_CPU", "0")] if shutil.which("taskset") else []


def run(folder: Path, out: Path, *extra: str) -> dict:
    """One CLI run; wall and CPU seconds, bytes read, the summary's bytes, the alerts (line, sha)."""
    io_out = out.with_suffix(".io")
    cmd = [*pin(), sys.executable, "-c", _WITH_IO, "scan", str(folder), "--format", "jsonl", "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(out, "wb") as fh:
        proc = subprocess.run(
            [*cmd, *extra],
            stdout=fh,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, "IO_OUT": str(io_out)},
        )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"vecleak exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    summary = [ln for ln in proc.stderr.decode().splitlines() if ln.startswith("vecleak:")][-1]
    counters = dict(line.split(": ") for line in io_out.read_text().splitlines())
    alerts = set()
    for line in out.read_bytes().splitlines():
        doc = orjson.loads(line)
        if doc.get("event", {}).get("kind") == "alert":
            alerts.add(
                (doc["vecleak"]["location"]["line"], doc["vecleak"]["vector"]["sha256"], doc["rule"]["id"])
            )
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "rchar": int(counters["rchar"]),
        "scanned": int(re.search(r"([\d,]+) bytes in", summary).group(1).replace(",", "")),
        "summary": summary,
        "alerts": alerts,
    }


def appendix(size: int, seed: int) -> bytes:
    """``size`` bytes of new log lines (``bench/gen_logs.py``, another seed: vectors of their own)."""
    sys.path.insert(0, str(REPO / "bench"))
    import gen_logs

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "more.log"
        gen_logs.generate(path, size, seed)
        data = path.read_bytes()
    # Whole entries only: cut before a line that does not continue a multi-line one.
    cut = data.rfind(b"\n", 0, size)
    while data[cut + 1 : cut + 2] in (b" ", b"\t", b"]", b"}", b")", b",", b"-"):
        cut = data.rfind(b"\n", 0, cut)
    return data[: cut + 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", type=Path, default=DATA / "l200.log")
    ap.add_argument("--append-mb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2027, help="of the appended lines")
    ap.add_argument("--gzip", action="store_true", help="also time a rotated, gzipped log")
    args = ap.parse_args()
    extra = appendix(int(args.append_mb * 1e6), args.seed)
    lines_before = args.log.read_bytes().count(b"\n")
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="vecleak-incr-") as tmp:
        root = Path(tmp)
        empty = root / "empty"
        empty.mkdir()
        for _ in range(args.repeat):
            logs = root / "logs"
            shutil.rmtree(logs, ignore_errors=True)
            logs.mkdir()
            state = root / "state.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(state) + suffix).unlink(missing_ok=True)
            app = logs / "app.log"
            shutil.copyfile(args.log, app)
            steps = {"floor (empty folder)": run(empty, root / "o0.jsonl")}
            steps["full"] = run(logs, root / "o1.jsonl")
            steps["first"] = run(logs, root / "o2.jsonl", "--state", str(state))
            with open(app, "ab") as fh:
                fh.write(extra)
            steps["second"] = run(logs, root / "o3.jsonl", "--state", str(state))
            steps["full+append"] = run(logs, root / "o4.jsonl")
            steps["unchanged"] = run(logs, root / "o5.jsonl", "--state", str(state))
            appended = {a for a in steps["full+append"]["alerts"] if a[0] > lines_before}
            if steps["second"]["alerts"] != appended or steps["unchanged"]["alerts"]:
                raise SystemExit(
                    f"wrong: second run {len(steps['second']['alerts'])} alerts,"
                    f" {len(appended)} expected on the appended lines"
                )
            for name, res in steps.items():
                results.setdefault(name, []).append(res)
        if args.gzip:
            gz = logs / "app.log.1.gz"
            with open(app, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            app.unlink()
            only = root / "gz"
            only.mkdir()
            shutil.copyfile(gz, only / gz.name)
            kept = root / "kept.db"
            shutil.copyfile(state, kept)  # the state before the rotation (checkpointed at close)
            for _ in range(args.repeat):
                shutil.copyfile(kept, state)
                first = run(logs, root / "o6.jsonl", "--state", str(state))
                results.setdefault("rotated-gz", []).append(first)
                again = run(logs, root / "o6.jsonl", "--state", str(state))
                results.setdefault("rotated-gz again", []).append(again)
                results.setdefault("full-gz", []).append(run(only, root / "o7.jsonl"))
            if any(r["alerts"] for r in results["rotated-gz"] + results["rotated-gz again"]):
                raise SystemExit("wrong: the rotated log alerted again")
    load = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.node()} {platform.machine()},"
        f" {os.cpu_count()} CPUs, pinned to core {os.environ.get('BENCH_CPU', '0')};"
        f" load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f};"
        f" log {args.log.name} {args.log.stat().st_size / 1e6:.1f} MB + {len(extra) / 1e6:.2f} MB appended;"
        f" median of {args.repeat}"
    )
    print(f"{'step':<22}{'wall s':>9}{'cpu s':>9}{'read MB':>10}{'scanned MB':>12}  summary (last round)")
    for name, runs in results.items():
        print(
            f"{name:<22}{statistics.median(r['wall'] for r in runs):>9.2f}"
            f"{statistics.median(r['cpu'] for r in runs):>9.2f}"
            f"{statistics.median(r['rchar'] for r in runs) / 1e6:>10.1f}"
            f"{statistics.median(r['scanned'] for r in runs) / 1e6:>12.2f}  {runs[-1]['summary'][9:]}"
        )


if __name__ == "__main__":
    main()
