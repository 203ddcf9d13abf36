"""Scan-throughput benchmark (issue #2): vecleak end to end against ripgrep, on one core, same run.

    python bench/throughput.py                 # 1 GB log, 3 repeats, plus the vector micro-benchmark
    python bench/throughput.py --size 100      # a quick 100 MB run

Part 1 times, on the same generated log (see ``bench/gen_logs.py``), each pinned to one core with
``taskset -c 0`` and repeated (median reported):

- ``vecleak scan FILE --format jsonl --no-progress``, as a subprocess, end to end;
- ``rg -c`` with a float-array regex (the baseline a user would reach for; ``apt-get install ripgrep``);
- a bare Python ``for line in file`` loop (the floor of any line-by-line Python scanner).

It checks correctness too: the alerts must sit on exactly the planted lines. A fast wrong scanner is
worthless, so a mismatch makes the benchmark exit non-zero.

With ``--jobs N`` (default 2; 0 skips it) a fourth contender, ``vecleak scan FILE --jobs N``, runs
in the same rounds pinned to N CPUs (the first N this process may use): its CPU seconds are those
of all its processes. Its output must be the ``--jobs 1`` output, event for event (timestamps
aside), or the benchmark exits non-zero.

Part 2 is vector-dense: N lines that are each a 384-d vector printed as a Python list, through
detection, classification and fingerprinting (``Pipeline.scan`` on blocks), against ``orjson.loads``
of the same lines as the baseline. With ``--jobs N`` the same lines, from a file, go through
``scanner.parallel.Pool`` with N workers too (wall time: worker start, scan, the results shipped
to the main process and counted there; no rules, no sinks).

With ``--gzip`` the same log, gzipped (level 6, once, cached), is scanned as a rotated log is:
``vecleak scan FILE.gz`` with ISA-L (the default where the ``isal`` wheel exists), the same with
``isal`` hidden so that zlib inflates (the baseline), and ``rg -z -c`` (ripgrep runs ``gzip -d`` in
a child). All one core; the alerts must sit on the planted lines.

For the two-core figures, on an otherwise idle machine::

    python bench/throughput.py --size 1000 --repeat 3 --vectors 20000 --jobs 2
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# As the CLI does (scanner/cli.py): the hot path's matrix products are tiny, BLAS threads only spin.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import orjson  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import gen_logs  # noqa: E402

# The in-process contenders (vector-dense) run as the CLI does: importing it asks glibc to keep freed
# 4 MB blocks (scanner/cli.py, _keep_block_memory); without that each block is faulted in afresh,
# 3.5 us of a vector's ~50 on the vector-dense lines, a cost no ``vecleak scan`` pays.
import scanner.cli  # noqa: E402, F401

DATA = REPO / "bench" / ".data"
FLOAT_ARRAY = r"(-?\d+\.\d+(e-?\d+)?,\s*){31,}"


def ensure_log(size_mb: float, seed: int) -> tuple[Path, dict]:
    # The generator's own hash in the name: a changed generator never reuses a stale file.
    version = hashlib.sha256(Path(gen_logs.__file__).read_bytes()).hexdigest()[:8]
    path = DATA / f"log-{size_mb:g}MB-seed{seed}-{version}.log"
    meta_path = Path(str(path) + ".planted.json")
    if not (path.exists() and meta_path.exists()):
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ...", file=sys.stderr)
        gen_logs.generate(path, int(size_mb * 1e6), seed)
    return path, orjson.loads(meta_path.read_bytes())


def pin() -> list[str]:
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


CPU: dict[str, list[float]] = {}


def timed(
    cmd: list[str], name: str, stdout: int | io.BufferedWriter = subprocess.DEVNULL
) -> tuple[float, bytes]:
    """Wall seconds; the child's CPU seconds (user+sys) go to CPU[name], steadier on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, cwd=REPO)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(name, []).append(cpu)
    if proc.returncode not in (0, 1, 3):  # rg: 1 = no match; vecleak: 3 = alerts found
        raise RuntimeError(f"{cmd[0:4]} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return elapsed, proc.stderr


def run_vecleak(path: Path, out: Path) -> float:
    cmd = [*pin(), sys.executable, "-m", "scanner", "scan", str(path), "--format", "jsonl", "--no-progress"]
    with open(out, "wb") as fh:
        elapsed, _ = timed(cmd, "vecleak", stdout=fh)
    return elapsed


def cpus(n: int) -> list[str]:
    """``taskset`` onto the first ``n`` CPUs this process may use (all of them if fewer)."""
    allowed = sorted(os.sched_getaffinity(0))[:n]
    return ["taskset", "-c", ",".join(map(str, allowed))] if shutil.which("taskset") else []


def run_vecleak_jobs(path: Path, out: Path, jobs: int) -> float:
    cmd = [
        *cpus(jobs),
        sys.executable,
        "-m",
        "scanner",
        "scan",
        str(path),
        "--format",
        "jsonl",
        "--no-progress",
        "--jobs",
        str(jobs),
    ]
    with open(out, "wb") as fh:
        elapsed, _ = timed(cmd, f"vecleak --jobs {jobs}", stdout=fh)
    return elapsed


# The CLI with the isal package hidden: what a platform without its wheel gets (zlib's inflate).
_WITHOUT_ISAL = "import sys; sys.modules['isal'] = None; from scanner.cli import main; sys.exit(main())"


def ensure_gzip(path: Path) -> Path:
    gz = Path(str(path) + ".gz")
    if not gz.exists():
        print(f"compressing {gz} ...", file=sys.stderr)
        with open(path, "rb") as src, gzip.open(str(gz) + ".tmp", "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 16 << 20)
        os.replace(str(gz) + ".tmp", gz)
    return gz


def compressed(args: argparse.Namespace) -> dict:
    """The gzipped log: vecleak with ISA-L, with zlib, and ripgrep -z, one core each, same rounds."""
    path, meta = ensure_log(args.size, args.seed)
    gz = ensure_gzip(path)
    size = path.stat().st_size  # MB/s of log text, as for the plain file
    scan = ["scan", str(gz), "--format", "jsonl", "--no-progress"]
    contenders = {
        "vecleak .gz (isal)": [*pin(), sys.executable, "-m", "scanner", *scan],
        "vecleak .gz (zlib)": [*pin(), sys.executable, "-c", _WITHOUT_ISAL, *scan],
        "ripgrep -z": [*pin(), "rg", "-z", "-c", FLOAT_ARRAY, str(gz)],
    }
    if shutil.which("rg") is None:
        del contenders["ripgrep -z"]
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outs = {name: DATA / f"gz-{i}.out" for i, name in enumerate(contenders)}
    for i in range(args.repeat):
        for name, cmd in contenders.items():
            with open(outs[name], "wb") as fh:
                times[name].append(timed(cmd, name, stdout=fh)[0])
        print(
            f"  gz run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), file=sys.stderr
        )
    result: dict = {
        "file": str(gz.relative_to(REPO)),
        "gz_bytes": gz.stat().st_size,
        "text_bytes": size,
        "correctness": {
            name: check(outs[name], meta["planted"]) for name in contenders if name.startswith("vecleak")
        },
    }
    for name, ts in times.items():
        med = statistics.median(ts)
        result[name] = {
            "seconds": [round(t, 3) for t in ts],
            "median_s": round(med, 3),
            "MB_s": round(mbps(size, med), 1),
            "cpu_seconds": [round(t, 3) for t in CPU[name]],
        }
    result["isal_over_zlib_speed"] = round(
        statistics.median(times["vecleak .gz (zlib)"]) / statistics.median(times["vecleak .gz (isal)"]), 3
    )
    return result


def same_events(a: Path, b: Path) -> bool:
    """The same jsonl events in the same order, ``@timestamp`` aside."""

    def events(path: Path) -> list[dict]:
        docs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        for doc in docs:
            doc.pop("@timestamp", None)
        return docs

    return events(a) == events(b)


def run_rg(path: Path) -> tuple[float, int]:
    cmd = [*pin(), "rg", "-c", FLOAT_ARRAY, str(path)]
    out = DATA / "rg-count.txt"
    with open(out, "wb") as fh:
        elapsed, _ = timed(cmd, "ripgrep", stdout=fh)
    return elapsed, int(out.read_bytes().strip() or 0)


def run_pyloop(path: Path) -> float:
    code = f"f = open({str(path)!r}, 'rb')\nfor line in f:\n    pass\n"
    elapsed, _ = timed([*pin(), sys.executable, "-c", code], "python-loop")
    return elapsed


def check(out: Path, planted: list[int]) -> dict:
    """Alerts on exactly the planted lines: no miss, no false positive."""
    lines: list[int] = []
    for raw in out.read_bytes().splitlines():
        doc = orjson.loads(raw)
        if doc.get("event", {}).get("kind") == "alert":
            lines.append(int(doc["vecleak"]["location"]["line"]))
    found, want = set(lines), set(planted)
    return {
        "alerts": len(lines),
        "alert_lines": len(found),
        "planted": len(want),
        "missed": len(want - found),
        "extra": len(found - want),
        "ok": found == want,
    }


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def end_to_end(args: argparse.Namespace) -> dict:
    path, meta = ensure_log(args.size, args.seed)
    size = path.stat().st_size
    # Warm the page cache so every contender reads from memory, not from disk.
    with open(path, "rb") as fh:
        while fh.read(16 << 20):
            pass
    have_rg = shutil.which("rg") is not None
    if not have_rg:
        print(
            "ripgrep not found: install it (apt-get install ripgrep) for the baseline; skipping it",
            file=sys.stderr,
        )
    times: dict[str, list[float]] = {"vecleak": [], "ripgrep": [], "python-loop": []}
    parallel = f"vecleak --jobs {args.jobs}"
    if args.jobs:
        times[parallel] = []
    rg_count = None
    out = DATA / "vecleak-alerts.jsonl"
    out_jobs = DATA / "vecleak-alerts-jobs.jsonl"
    for i in range(args.repeat):
        times["vecleak"].append(run_vecleak(path, out))
        if args.jobs:
            times[parallel].append(run_vecleak_jobs(path, out_jobs, args.jobs))
        if have_rg:
            t, rg_count = run_rg(path)
            times["ripgrep"].append(t)
        if not args.no_pyloop:
            times["python-loop"].append(run_pyloop(path))
        print(
            f"  run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items() if v),
            file=sys.stderr,
        )
    result = {
        "file": str(path.relative_to(REPO)),
        "bytes": size,
        "lines": meta["lines"],
        "vectors_planted": meta["vectors"],
        "correctness": check(out, meta["planted"]),
        "ripgrep_matching_lines": rg_count,
    }
    if args.jobs:
        result["correctness"]["jobs_same_as_serial"] = same_events(out, out_jobs)
        result["correctness"]["ok"] = (
            result["correctness"]["ok"] and result["correctness"]["jobs_same_as_serial"]
        )
    for name, ts in times.items():
        if ts:
            med = statistics.median(ts)
            cpu = statistics.median(CPU[name])
            result[name] = {
                "seconds": [round(t, 3) for t in ts],
                "median_s": round(med, 3),
                "MB_s": round(mbps(size, med), 1),
                "cpu_seconds": [round(t, 3) for t in CPU[name]],
                "cpu_MB_s": round(mbps(size, cpu), 1),
            }
    if args.jobs:
        result["jobs_over_serial_speed"] = round(
            statistics.median(times["vecleak"]) / statistics.median(times[parallel]), 3
        )
    if times["ripgrep"]:
        result["vecleak_over_ripgrep_speed"] = round(
            statistics.median(times["ripgrep"]) / statistics.median(times["vecleak"]), 3
        )
        result["vecleak_over_ripgrep_speed_cpu"] = round(
            statistics.median(CPU["ripgrep"]) / statistics.median(CPU["vecleak"]), 3
        )
    return result


def vector_lines(n: int) -> list[bytes]:
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((n, gen_logs.DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [str(v.tolist()).encode() for v in vecs.astype(np.float64)]


def vector_dense(n: int, repeat: int) -> dict:
    """Vectors/s through detection + classification + fingerprint, against orjson.loads of each list."""
    from scanner.pipeline import Pipeline
    from scanner.sources.files import open_text_stream

    lines = vector_lines(n)
    data = b"\n".join(lines) + b"\n"
    pipeline = Pipeline()
    # CPU time of this process: on a shared machine it moves far less than wall time.
    best_scan, walls, found = [], [], 0
    for _ in range(repeat):
        t0, w0 = time.process_time(), time.perf_counter()
        found = 0
        for rec in open_text_stream(data):
            if hasattr(rec, "data"):
                found += len(pipeline.scan(rec).findings)
        best_scan.append(time.process_time() - t0)
        walls.append(time.perf_counter() - w0)
    best_json = []
    for _ in range(repeat):
        t0 = time.process_time()
        for line in lines:
            orjson.loads(line)
        best_json.append(time.process_time() - t0)
    scan_s, json_s = statistics.median(best_scan), statistics.median(best_json)
    return {
        "vectors": n,
        "bytes": len(data),
        "found": found,
        "pipeline_s": round(scan_s, 3),
        "pipeline_vectors_s": round(n / scan_s),
        "pipeline_wall_s": round(statistics.median(walls), 3),
        "orjson_s": round(json_s, 3),
        "orjson_vectors_s": round(n / json_s),
    }


def vector_dense_parallel(n: int, repeat: int, jobs: int) -> dict:
    """The vector-dense lines through ``jobs`` worker processes (wall time, this process pinned to
    ``jobs`` CPUs): workers detect, classify and fingerprint; the main process receives the results."""
    from scanner.engine import Engine
    from scanner.parallel import Pool
    from scanner.pipeline import Pipeline
    from scanner.rules import RuleSet
    from scanner.sources.files import FileSource

    path = DATA / f"vectors-{n}.log"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(vector_lines(n)) + b"\n")
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, allowed[:jobs])
    try:
        pipeline = Pipeline()
        walls, cpu, found = [], [], 0
        for _ in range(repeat):
            engine = Engine(pipeline, RuleSet([]), [], pool=False)
            source = FileSource([str(path)])
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            c0, w0 = time.process_time(), time.perf_counter()
            with Pool(jobs, pipeline, source) as pool:
                pool.scan(engine, source)
            walls.append(time.perf_counter() - w0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            children = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            cpu.append((time.process_time() - c0, children))
            found = engine.stats.findings
    finally:
        os.sched_setaffinity(0, allowed)
    wall = statistics.median(walls)
    return {
        "jobs": jobs,
        "cpus": allowed[:jobs],
        "vectors": n,
        "found": found,
        "wall_s": [round(t, 3) for t in walls],
        "median_wall_s": round(wall, 3),
        "vectors_s": round(n / wall),
        "main_cpu_s": [round(m, 3) for m, _ in cpu],
        "workers_cpu_s": [round(w, 3) for _, w in cpu],
    }


def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as fh:
        for row in fh:
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="vecleak scan throughput vs ripgrep (issue #2)")
    p.add_argument("--size", type=float, default=1000, help="log size in MB (default 1000)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--repeat", type=int, default=3, help="runs per contender; the median is reported")
    p.add_argument("--vectors", type=int, default=20000, help="vector-dense micro-benchmark size (0: skip)")
    p.add_argument("--no-pyloop", action="store_true", help="skip the bare Python loop baseline")
    p.add_argument("--skip-e2e", action="store_true", help="only the vector-dense micro-benchmark")
    p.add_argument(
        "--jobs", type=int, default=2, help="also vecleak --jobs N, on N CPUs (default 2; 0: skip)"
    )
    p.add_argument("--gzip", action="store_true", help="also scan the log gzipped: ISA-L vs zlib vs rg -z")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    report: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if not args.skip_e2e:
        report["end_to_end"] = end_to_end(args)
    if args.gzip:
        report["gzip"] = compressed(args)
    if args.vectors:
        report["vector_dense"] = vector_dense(args.vectors, args.repeat)
        if args.jobs:
            report["vector_dense_parallel"] = vector_dense_parallel(args.vectors, args.repeat, args.jobs)
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.json:
        args.json.write_text(text)
    ok = report.get("end_to_end", {}).get("correctness", {}).get("ok", True)
    ok = ok and all(c["ok"] for c in report.get("gzip", {}).get("correctness", {}).values())
    return 0 if ok else 1


if __name__ == "__main__":
    tempfile.tempdir = str(DATA)
    raise SystemExit(main())
