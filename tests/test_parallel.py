"""``vecleak scan --jobs N`` gives the output of ``--jobs 1``: same alerts, order, lines, diagnostics.

The big-file cases run through :class:`scanner.parallel.Pool` with small blocks and ranges, so a
file of a few megabytes is cut into many ranges (the CLI's ranges are 16 MB); the rest go through
the real CLI. Workers are real forked processes throughout.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, jsonl, run_cli, unit_vectors

from scanner.engine import Engine, Needs
from scanner.enrichment import SampledInversion
from scanner.fingerprint.scoring import EVIDENCE_MEMO
from scanner.model import Record, SourceRef, VectorSummary
from scanner.parallel import Pool, WorkerError, available_cpus, cpu_quota, range_for
from scanner.pipeline import Pipeline, ScanResult
from scanner.rules import load_rules
from scanner.sinks.jsonl import JsonlSink
from scanner.sources.files import FileSource, read_range, split_points

BLOCK = 64 * 1024
RANGE = 256 * 1024


def _normal(stdout: bytes) -> list[dict]:
    """The jsonl events without what differs between two runs: the time they were written."""
    docs = jsonl(stdout)
    for doc in docs:
        doc.pop("@timestamp", None)
        doc.get("event", {}).pop("created", None)
    return docs


def _summary(stderr: bytes) -> str:
    line = [ln for ln in stderr.decode().splitlines() if ln.startswith("vecleak:")][-1]
    return re.sub(r" in [0-9.]+s", "", line)


def _api_scan(
    paths: list[str], jobs: int, engine_args: dict | None = None, **limits: int
) -> tuple[list[dict], dict]:
    """Scan through the engine as ``vecleak scan`` does; the jsonl events and the summary."""
    out = io.BytesIO()
    engine = Engine(Pipeline(), load_rules(), [JsonlSink(out, owned=False)], **(engine_args or {}))
    source = FileSource(paths, **limits)
    if jobs == 1:
        engine.run(source.records())
    else:
        with Pool(jobs, engine.pipeline, source, range_size=RANGE) as pool:
            pool.scan(engine, source)
    summary = engine.close(source.progress.files)
    summary.pop("seconds")
    return _normal(out.getvalue()), summary


def _big_log(path: Path, size: int, seed: int = 0) -> list[int]:
    """Noise with a payload across every block boundary: a pretty-printed JSON array, a numpy repr
    (both multi-line), one-line lists (one under a ``vecleak:ignore`` marker, one after invalid UTF-8
    and NUL bytes) and a line longer than ``max_record``; one-line vectors between boundaries too.
    Returns the boundaries the payloads straddle."""
    rng = np.random.default_rng(seed)
    vecs = iter(unit_vectors(1000, 384, seed=seed + 1))
    out = bytearray()
    n = 0
    straddled: list[int] = []
    while len(out) < size:
        boundary = (len(out) // BLOCK + 1) * BLOCK
        while len(out) < boundary - 1500:
            n += 1
            out += f"10:00:{n % 60:02d} INFO req={rng.integers(1 << 30)} path=/api/items ok\n".encode()
            if n % 400 == 0 and len(out) < boundary - 20_000:  # every other one under a marker
                marker = "# vecleak:ignore\n" if n % 800 == 0 else ""
                out += f"{marker}DEBUG emb={np.round(next(vecs), 6).tolist()}\n".encode()
        kind = len(straddled) % 6
        straddled.append(boundary)
        listed = np.round(next(vecs), 6).tolist()
        if kind == 0:
            out += f"DEBUG body={json.dumps({'embedding': listed}, indent=2)}\n".encode()
        elif kind == 1:
            with np.printoptions(threshold=100_000):
                out += f"DEBUG query vector: {np.array([listed], dtype=np.float32)!r}\n".encode()
        elif kind == 2:
            out += f"DEBUG emb={listed}\n".encode()
        elif kind == 3:
            out += f"DEBUG emb={listed} # vecleak:ignore\n".encode()
        elif kind == 4:
            out += b"WARN bad bytes \xff\xfe and \x00 here " + f"emb={listed}\n".encode()
        else:
            filler = "x" * 80_000
            out += f"TRACE dump {filler} emb={listed} {filler}\n".encode()
    path.write_bytes(bytes(out))
    return straddled


def test_big_plain_file_cut_into_ranges_same_as_serial(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    straddled = _big_log(path, 3_000_000)
    points = split_points(str(path), BLOCK, RANGE)
    assert points is not None and len(points) >= 8, points
    cuts = [start for start, _ in points[1:]]
    # A payload starts right at each cut (the last safe newline before a boundary) and crosses it.
    assert all(any(0 < b - c < 4000 for b in straddled) for c in cuts), (cuts, straddled)
    limits = {"block_size": BLOCK, "max_record": 128 * 1024, "overlap": 16 * 1024}
    serial, s_summary = _api_scan([str(path)], 1, **limits)
    parallel, p_summary = _api_scan([str(path)], 2, **limits)
    found = [d for d in serial if d["event"]["kind"] == "alert"]
    kinds = {d["vecleak"]["diagnostic"]["kind"] for d in serial if d["event"]["kind"] != "alert"}
    assert {"long-line", "invalid-utf8", "nul-bytes"} <= kinds, kinds
    encodings = {d["vecleak"]["vector"]["encoding"] for d in found}
    assert {"python-list", "numpy-repr", "json-array-pretty"} <= encodings, encodings
    assert not any(d["vecleak"]["vector"]["truncated"] for d in found)  # no payload cut in two
    assert s_summary["ignored"] > 0 and s_summary["findings"] > 40, s_summary
    assert max(d["vecleak"]["location"]["line"] for d in found) > 20_000
    assert parallel == serial
    assert p_summary == s_summary


def _sent(paths: list[str], jobs: int, **engine_args: object) -> tuple[list[dict], list]:
    """The jsonl events and the findings of the alerts, as the main process holds them."""
    out = io.BytesIO()
    engine = Engine(Pipeline(), load_rules(), [JsonlSink(out, owned=False)], **engine_args)  # type: ignore[arg-type]
    source = FileSource(paths, block_size=BLOCK)
    if jobs == 1:
        engine.run(source.records())
    else:
        with Pool(jobs, engine.pipeline, source, range_size=RANGE) as pool:
            pool.scan(engine, source)
    engine.close(source.progress.files)
    return _normal(out.getvalue()), [alert.finding for alert in engine.sent]


@pytest.mark.parametrize("pooled", [True, False])
def test_workers_send_summaries_unless_the_values_are_read(tmp_path: Path, pooled: bool) -> None:
    """Without ``--invert`` nothing in the main process reads a vector's values: a worker sends its
    summary (hash, size, norm, preview) and, for the source pool, the fingerprint evidence; the
    alerts are the serial scan's. With ``--invert`` configured the values arrive as they were read."""
    vecs = unit_vectors(300, 384, seed=11)
    lines = [f"INFO req={i} emb={v.tolist()}" for i, v in enumerate(vecs)]
    lines[7] = f"WARN nan here emb={[float('nan')] * 3 + vecs[7].tolist()[3:]}"  # not finite: not pooled
    lines[9] = f"DEBUG cut emb=[{', '.join(map(str, vecs[9][:40].tolist()))}"  # truncated, no norm
    path = tmp_path / "vectors.log"
    path.write_text("\n".join(lines) + "\n")
    assert len(split_points(str(path), BLOCK, RANGE) or []) >= 4
    args = {} if pooled else {"pool": False}
    serial, s_findings = _sent([str(path)], 1, **args)
    parallel, p_findings = _sent([str(path)], 2, **args)
    assert parallel == serial and len(s_findings) == len(p_findings) >= 300
    assert any(f.candidate.truncated for f in s_findings)
    assert any(not f.candidate.summarize().finite for f in s_findings)
    for s, p in zip(s_findings, p_findings, strict=True):
        assert p.candidate.values is None
        assert p.candidate.summary == VectorSummary.of(
            s.candidate.values, s.candidate.dim, s.candidate.truncated
        )
        assert p.candidate.dim == s.candidate.dim and p.fingerprint == s.fingerprint
    # --invert reads the values: a sampler that samples nothing still makes the engine ask for them.
    inverting = {**args, "inversion": SampledInversion(lambda: None, sample=0)}
    serial_i, _ = _sent([str(path)], 1, **inverting)
    parallel_i, i_findings = _sent([str(path)], 2, **inverting)
    assert parallel_i == serial_i == serial
    for s, p in zip(s_findings, i_findings, strict=True):
        assert p.candidate.values is not None
        assert p.candidate.values.tobytes() == s.candidate.values.tobytes()


def test_trim_keeps_the_values_of_a_pool_group_without_all_its_evidence() -> None:
    """The pool reuses the pipeline's evidence for a group (source, size) only when each of its
    findings has it; otherwise it computes the group's from the values, which are then kept. A
    48-byte packed binary vector (384 bits, no evidence of its own) beside a 48-d float vector is
    such a group; the 384-d vectors of the same record are not."""
    rng = np.random.default_rng(13)
    small = unit_vectors(1, 48, seed=13)[0]
    packed = [int(x) for x in rng.integers(0, 256, 48)]
    lines = [json.dumps({"ubinary": packed, "embedding": small.tolist()})]
    lines += [f"emb={v.tolist()}" for v in unit_vectors(3, 384, seed=12)]
    record = Record(("\n".join(lines) + "\n").encode(), SourceRef("file", "a.log", "a.log"))
    result = Pipeline().scan(record)
    assert [(f.candidate.encoding, f.candidate.dim) for f in result.findings] == [
        ("ubinary", 384),
        ("json-array", 48),
        *[("python-list", 384)] * 3,
    ]
    assert EVIDENCE_MEMO not in result.findings[0]._memo
    Needs(values=False, evidence=True).trim(result)
    assert [f.candidate.values is None for f in result.findings] == [False, False, True, True, True]
    assert all(EVIDENCE_MEMO in f._memo for f in result.findings[1:])
    Needs(values=False, evidence=False).trim(result)
    assert all(f.candidate.values is None and EVIDENCE_MEMO not in f._memo for f in result.findings)


def test_pool_group_without_all_its_evidence_same_as_serial(tmp_path: Path) -> None:
    """The same mixed group through the workers: the main process pools it from the values sent."""
    rng = np.random.default_rng(14)
    lines = []
    for i, small in enumerate(unit_vectors(60, 48, seed=14)):
        packed = [int(x) for x in rng.integers(0, 256, 48)]
        lines.append(json.dumps({"req": i, "ubinary": packed, "embedding": small.tolist()}))
    lines += [f"INFO emb={v.tolist()}" for v in unit_vectors(400, 384, seed=15)]
    path = tmp_path / "mixed.log"
    path.write_text("\n".join(lines) + "\n")
    serial, s_findings = _sent([str(path)], 1)
    parallel, p_findings = _sent([str(path)], 2)
    assert parallel == serial and len(p_findings) >= 500
    assert {f.candidate.encoding for f in p_findings} >= {"ubinary", "json-array", "python-list"}


def test_ranges_without_safe_cuts_and_a_long_line_at_a_boundary(tmp_path: Path) -> None:
    """Continuation lines for several blocks in a row: the cut moves to the next block that has one."""
    v = unit_vectors(3, 384, seed=9)
    head = "".join(f"INFO line {i}\n" for i in range(30_000)).encode()
    indented = b"".join(b"  continued %d\n" % i for i in range(40_000))  # no safe newline for ~700 KB
    text = head + f"emb={v[0].tolist()}\n".encode() + indented + f"emb={v[1].tolist()}\n".encode() + head
    path = tmp_path / "runs.log"
    path.write_bytes(text + f"last emb={v[2].tolist()}\n".encode())
    limits = {"block_size": BLOCK, "max_record": 128 * 1024, "overlap": 16 * 1024}
    assert len(split_points(str(path), BLOCK, RANGE) or []) >= 3
    serial, s_summary = _api_scan([str(path)], 1, **limits)
    assert len([d for d in serial if d["event"]["kind"] == "alert"]) >= 3
    assert _api_scan([str(path)], 2, **limits) == (serial, s_summary)


def test_many_small_files_same_as_serial(tmp_path: Path) -> None:
    """Hundreds of tiny files: many tasks queued on each worker, replayed in order."""
    vecs = unit_vectors(50, 384, seed=6)
    for i in range(300):
        body = b"INFO tiny\n" * (i % 7)
        if i % 6 == 0:
            body += f"DEBUG emb={np.round(vecs[i // 6], 6).tolist()}\n".encode()
        if i % 11 == 0:
            body += b"bad \xff byte\n"
        (tmp_path / f"{i:04d}.log").write_bytes(body)
    serial = _api_scan([str(tmp_path)], 1)
    assert len(alerts_of(serial[0])) >= 50 and serial[1]["diagnostics"] >= 27
    assert _api_scan([str(tmp_path)], 3) == serial


def _records(items) -> tuple[list[tuple], int]:
    """What a reader yields, as comparable tuples, and what it returns."""
    out = []
    while True:
        try:
            item = next(items)
        except StopIteration as end:
            return out, end.value
        if isinstance(item, Record):
            out.append(("record", item.offset, item.line, item.data, dict(item.context)))
        else:
            out.append(("diagnostic", item.kind, item.offset, item.line))


def _random_text(rng: np.random.Generator, size: int) -> bytes:
    """Lines of every shape the reader treats apart: plain, continuation runs, very long, bad bytes."""
    parts: list[bytes] = []
    total = 0
    while total < size:
        kind = rng.integers(10)
        if kind < 6:
            part = b"INFO %d\n" % rng.integers(1 << 40)
        elif kind == 6:
            part = b"".join(b"  %d,\n" % i for i in range(rng.integers(1, 60_000)))
        elif kind == 7:
            part = b"x" * int(rng.integers(1, size // 8)) + b"\n"
        elif kind == 8:
            part = b"bad \xff\x00 bytes\n"
        else:
            part = b"]\n)\n}\n\t-\n"
        parts.append(part)
        total += len(part)
    return b"".join(parts)


@pytest.mark.parametrize(
    ("seed", "block", "range_size", "size"),
    [(1, 4096, 16384, 400_000), (2, 65536, 200_000, 3_000_000), (4, 1_500_000, 3_000_000, 14_000_000)],
)
def test_ranges_yield_exactly_the_serial_records(
    tmp_path: Path, seed: int, block: int, range_size: int, size: int
) -> None:
    """Cut into ranges and read one by one, a file gives the records and input diagnostics of one read,
    lines shifted by the ranges before. The last case has blocks over the 1 MB the cut looks at."""
    path = tmp_path / "random.log"
    path.write_bytes(_random_text(np.random.default_rng(seed), size))
    limits = FileSource([], block_size=block, max_record=max(2 * block, 300_000), overlap=20_000)
    serial, _ = _records(limits.read_one(str(path), str(path)))
    points = split_points(str(path), block, range_size)
    assert points is not None and len(points) >= 3
    step = range_size // block * block
    assert any(b - a > step for (_, a), (_, b) in zip(points[1:-1], points[2:], strict=True)), (
        "no block without a cut"
    )
    joined: list[tuple] = []
    shift = 0
    for i, (start, block_end) in enumerate(points):
        stop = points[i + 1][0] if i + 1 < len(points) else None
        got, newlines = _records(read_range(str(path), str(path), start, block_end, stop, limits))
        for item in got:
            line = item[2] if item[0] == "record" else item[3]
            moved = (*item[:2], line + shift, *item[3:]) if item[0] == "record" else (*item[:3], line + shift)
            joined.append(moved)
        shift += newlines
    assert joined == serial


def test_a_file_gone_after_planning_is_unreadable_once(tmp_path: Path) -> None:
    """As the serial reader says it: one diagnostic (from the first range), and the scan goes on."""
    gone = str(tmp_path / "rotated-away.log")
    first = list(read_range(gone, gone, 0, 4096, 8192))
    assert [(d.kind, d.source) for d in first] == [("unreadable", gone)]
    assert list(read_range(gone, gone, 8192, 12288, None)) == []
    serial = list(FileSource([]).read_one(gone, gone))
    assert [(d.kind, d.message) for d in serial] == [(d.kind, d.message) for d in first]


def _tree(tmp_path: Path, fixtures: Path | None = None) -> Path:
    """A log directory as rotation leaves it: plain, .gz, .bz2, .xz, a corrupt gzip, an empty file."""
    root = tmp_path / "logs"
    (root / "app").mkdir(parents=True)
    vecs = unit_vectors(12, 384, seed=4)

    def log(i: int) -> bytes:
        return (
            "".join(f"2026-11-26 INFO request {j}\n" for j in range(200))
            + f"2026-11-26 DEBUG emb={np.round(vecs[i], 6).tolist()}\n"
            + f"DEBUG vecleak:ignore emb={np.round(vecs[i + 6], 6).tolist()}\n"
        ).encode()

    (root / "app" / "app.log").write_bytes(log(0) + log(1))
    (root / "app" / "app.log.1.gz").write_bytes(gzip.compress(log(2)))
    (root / "app" / "app.log.2.bz2").write_bytes(bz2.compress(log(3)))
    (root / "app" / "app.log.3.xz").write_bytes(lzma.compress(log(4)))
    whole = gzip.compress(log(5) * 20)
    (root / "app" / "broken.log.gz").write_bytes(whole[: len(whole) * 2 // 3])
    (root / "empty.log").write_bytes(b"")
    if fixtures is not None:
        shutil.copy(fixtures / "Arize-ai__openinference__js__packages__openinference-vercel__test____fixtures____v6-spans__ai-embed-doEmbed.json", root / "spans.json")  # fmt: skip
    return root


def _cli(*args: str, stdin: bytes | None = None) -> tuple[int, list[dict], str]:
    res = run_cli("scan", *args, "--format", "jsonl", "--no-progress", stdin=stdin)
    return res.returncode, _normal(res.stdout), _summary(res.stderr)


def test_directory_with_compressed_and_corrupt_files_same_as_serial(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    root = _tree(tmp_path, fixtures_dir)
    missing = str(tmp_path / "missing.log")
    serial = _cli(str(root), missing, "--jobs", "1")
    parallel = _cli(str(root), missing, "--jobs", "2")
    assert serial[0] == 3
    docs = serial[1]
    kinds = [d["vecleak"]["diagnostic"]["kind"] for d in docs if d["event"]["kind"] != "alert"]
    assert "corrupt-compressed" in kinds and "unreadable" in kinds, kinds
    paths = {d["log"]["file"]["path"] for d in alerts_of(docs)}
    assert {"app.log.1.gz", "app.log.2.bz2", "app.log.3.xz", "broken.log.gz", "spans.json"} <= {
        os.path.basename(p) for p in paths
    }, paths
    assert parallel == serial
    assert parallel == _cli(str(root), missing, "--jobs", "3")


def alerts_of(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["event"]["kind"] == "alert"]


def test_stdin_between_files_same_as_serial(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    v = unit_vectors(1, 384, seed=11)[0]
    data = b"INFO piped\n" * 100 + f"DEBUG emb={v.tolist()}\n".encode()
    first, last = str(root / "app" / "app.log"), str(root / "app" / "app.log.1.gz")
    serial = _cli(first, "-", last, "--jobs", "1", stdin=data)
    parallel = _cli(first, "-", last, "--jobs", "2", stdin=data)
    assert [d["log"]["file"]["path"] for d in alerts_of(serial[1])].count("-") >= 1
    assert parallel == serial


def test_jobs_auto_and_bad_values() -> None:
    assert available_cpus() == min(len(os.sched_getaffinity(0)), math.ceil(cpu_quota() or 10**6))
    res = run_cli("scan", "-", "--jobs", "0", stdin=b"")
    assert res.returncode == 2 and b"--jobs" in res.stderr
    res = run_cli("scan", "-", "--jobs", "auto", "--format", "jsonl", stdin=b"INFO nothing\n")
    assert res.returncode == 0, res.stderr


class _DiesOn(Pipeline):
    """A pipeline that fails the way a worker can: killed outright (OOM killer) or by a bug."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def scan(self, record: Record) -> ScanResult:
        if b"POISON" in record.data:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ZeroDivisionError("planted bug")
        return super().scan(record)


@pytest.mark.parametrize("how", ["kill", "bug"])
def test_worker_failure_is_a_clear_error(tmp_path: Path, how: str) -> None:
    for i in range(6):
        (tmp_path / f"{i}.log").write_bytes(b"INFO fine\n" * 1000 + (b"POISON\n" if i == 3 else b""))
    engine = Engine(_DiesOn(how), load_rules(), [])
    source = FileSource([str(tmp_path)])
    with pytest.raises(WorkerError) as err, Pool(2, engine.pipeline, source) as pool:
        pool.scan(engine, source)
    text = str(err.value)
    assert "3.log" in text
    assert ("SIGKILL" in text) if how == "kill" else ("ZeroDivisionError: planted bug" in text)
    assert engine.stats.bytes == 3 * 10_000  # the files before it were delivered, in order


def test_worker_dead_before_its_task_is_a_clear_error(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"{i}.log").write_bytes(b"INFO fine\n" * 100)
    engine = Engine(Pipeline(), load_rules(), [])
    source = FileSource([str(tmp_path)])
    with (
        pytest.raises(WorkerError, match="killed by SIGKILL before it finished"),
        Pool(2, engine.pipeline, source) as pool,
    ):
        victim = pool.workers[1].process
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        pool.scan(engine, source)


def test_unreadable_file_in_a_worker_is_reported_like_serial(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    (tmp_path / "a.log").write_bytes(b"INFO\n")
    locked = tmp_path / "b.log"
    locked.write_bytes(b"INFO\n")
    locked.chmod(0)
    assert _cli(str(tmp_path), "--jobs", "2") == _cli(str(tmp_path), "--jobs", "1")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(x) for x in fh.read().split()]


def test_ctrl_c_stops_workers_and_main(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"INFO\n" * 1000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # stdin stays open and empty: the scan waits on it, workers started, until SIGINT.
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "scan", "-", str(tmp_path), "--jobs", "2", "--format", "jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
        # Ctrl-C as at a terminal: a test run started in the background (``cmd &`` in a script)
        # hands its children SIGINT ignored, and a program started so rightly keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = _children(proc.pid)
        assert len(workers) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        for pid in workers:
            assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)
    finally:
        proc.kill()
        proc.wait()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] == "Z"
    except FileNotFoundError:
        return False


def _cgroup_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_cpu_quota_cgroup_v2_takes_the_smallest_limit_on_the_way_up(tmp_path: Path) -> None:
    _cgroup_files(
        tmp_path,
        {
            "proc": "0::/kubepods/pod1/app\n",
            "fs/kubepods/cpu.max": "max 100000\n",
            "fs/kubepods/pod1/cpu.max": "150000 100000\n",
            "fs/kubepods/pod1/app/cpu.max": "400000 100000\n",
        },
    )
    assert cpu_quota(str(tmp_path / "fs"), str(tmp_path / "proc")) == 1.5
    cpus = len(os.sched_getaffinity(0))
    assert available_cpus(str(tmp_path / "fs"), str(tmp_path / "proc")) == min(cpus, 2)


def test_cpu_quota_cgroup_v1_and_unlimited(tmp_path: Path) -> None:
    _cgroup_files(
        tmp_path,
        {
            "proc": "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/\n",
            # The container's own mount: the listed path does not exist under it, its root applies.
            "fs/cpu,cpuacct/cpu.cfs_quota_us": "50000\n",
            "fs/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "fs/cpu.max": "max 100000\n",
        },
    )
    assert cpu_quota(str(tmp_path / "fs"), str(tmp_path / "proc")) == 0.5
    assert available_cpus(str(tmp_path / "fs"), str(tmp_path / "proc")) == 1
    (tmp_path / "fs/cpu,cpuacct/cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_quota(str(tmp_path / "fs"), str(tmp_path / "proc")) is None
    assert cpu_quota(str(tmp_path / "fs"), str(tmp_path / "missing")) is None


def test_summary_of_any_array() -> None:
    """Workers summarise every finding, alerted or not: no array a detector could make may raise.
    NaN and Inf count as zero in the norm (as the ECS output always had it) and make it not finite."""
    odd = VectorSummary.of(np.array([np.nan, 3.0, 4.0], dtype=np.float32), 3, False)
    assert (odd.finite, odd.norm, odd.length, odd.flat) == (False, 5.0, 3, True)
    assert odd.preview == "[nan, #, #, … 3 values]"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a worker's warning would reach the user's terminal
        inf = VectorSummary.of(np.array([1.0, np.inf, 2.0], dtype=np.float32), 3, False)
    assert not inf.finite and inf.preview == "[#, nan, #, … 3 values]"
    assert VectorSummary.of(np.zeros(0, dtype=np.float32), 0, False).preview == "[, … 0 values]"
    flat2d = VectorSummary.of(np.ones((2, 3), dtype=np.float32), 2, False)
    assert not flat2d.flat and flat2d.length == 2
    assert VectorSummary.of(np.ones(20, dtype=np.float32), 768, True).norm is None  # a truncated print
    small = VectorSummary.of(np.array([0.0123, -4.5, 0.0], dtype=np.float32), 3, False)
    assert small.preview == "[0.0#, -#, #, … 3 values]"


def test_ranges_shrink_so_each_worker_gets_several() -> None:
    """The worker left with a file's last range holds the scan back by that range: a file with too
    few ranges per worker is cut finer, in whole blocks, and never finer than one block."""
    mib, block = 1 << 20, 4 << 20
    assert range_for(1000 * mib, 16 * mib, block, 2) == 16 * mib  # plenty of ranges
    assert range_for(168 * mib, 16 * mib, block, 2) == 8 * mib  # 21 ranges, not 10
    assert range_for(168 * mib, 16 * mib, block, 4) == 4 * mib
    assert range_for(20 * mib, 16 * mib, block, 2) == block  # one block at the least
    assert range_for(168 * mib, 16 * mib, block, 1) == 16 * mib  # one worker: nothing to even out
