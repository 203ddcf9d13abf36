"""``vecleak scan --state``: each run reads only what is new, through appends, rotations and rewrites.

Real files and real CLI runs, one state file per test; the ``--jobs`` case also goes through
:class:`scanner.parallel.Pool` with small blocks and ranges (the CLI's ranges are 16 MB).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import alerts, run_cli, unit_vectors
from test_parallel import BLOCK, RANGE, _big_log, _normal, _random_text, _records

from scanner.engine import Engine
from scanner.parallel import Pool
from scanner.pipeline import Pipeline
from scanner.rules import load_rules
from scanner.sinks.jsonl import JsonlSink
from scanner.sources import scanstate
from scanner.sources.files import MARK_BYTES, FileSource, Mark, Resume, mark_digest, read_range, split_points
from scanner.state import StateStore

VECS = unit_vectors(12, 384, seed=7)


def _vec(i: int) -> str:
    return f"DEBUG query_embedding={VECS[i].tolist()}\n"


def _noise(n: int, tag: str = "req") -> str:
    return "".join(f"2026-11-26T02:{k % 60:02d}:00 INFO {tag}={k} path=/api/items ok\n" for k in range(n))


def _scan(tmp_path: Path, *args: str) -> tuple[int, list[tuple[str, int, str]], str]:
    """One run over ``tmp_path/logs`` with the test's state: exit code, (file, line, vector) per
    distinct finding, stderr."""
    res = run_cli(
        "scan", str(tmp_path / "logs"), "--format", "jsonl", "--state", str(tmp_path / "state.db"), *args
    )
    assert res.returncode in (0, 1, 3), res.stderr
    seen = {
        (
            os.path.basename(d["log"]["file"]["path"]),
            d["vecleak"]["location"]["line"],
            d["vecleak"]["vector"]["sha256"][:12],
        )
        for d in alerts(res.stdout)
    }
    return res.returncode, sorted(seen), res.stderr.decode()


def _scan_jobs(tmp_path: Path, *args: str, jobs: str) -> tuple[int, list[tuple[str, int, str]], str]:
    return _scan(tmp_path, *args, "--jobs", jobs)


def _sha(i: int) -> str:
    import hashlib

    return hashlib.sha256(VECS[i].astype("<f4").tobytes()).hexdigest()[:12]


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    return logs


def test_append_alerts_only_new_vectors_with_their_lines(tmp_path: Path) -> None:
    log = _logs(tmp_path) / "app.log"
    log.write_bytes(b"bad \xff bytes\n" + (_noise(50) + _vec(0) + _noise(10)).encode())
    code, found, err = _scan(tmp_path)
    assert code == 3 and found == [("app.log", 52, _sha(0))], err
    assert "1 input problem" in err and "0 resumed, 1 from the start" in err
    assert stat.S_IMODE(os.stat(tmp_path / "state.db").st_mode) == 0o600

    code, found, err = _scan(tmp_path)  # nothing new: nothing read, nothing alerted
    assert code == 0 and found == [], err
    assert "1 file(s) unchanged" in err and f"{log.stat().st_size:,} bytes skipped" in err

    before = log.stat().st_size
    with log.open("a") as fh:
        fh.write(_noise(5) + _vec(1) + _vec(0) + _noise(3))
    code, found, err = _scan(tmp_path)
    # The vector seen last night alerts again only where it is written again (line 69).
    assert found == [("app.log", 68, _sha(1)), ("app.log", 69, _sha(0))], err
    assert "0 input problem" in err  # the bad bytes before the mark are not read again
    assert "1 resumed" in err and f"{before:,} bytes skipped" in err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_rename_then_gzip_rotation_sees_the_tail_once(tmp_path: Path, jobs: str) -> None:
    logs = _logs(tmp_path)
    scan = functools.partial(_scan_jobs, jobs=jobs)
    app = logs / "app.log"
    app.write_text(_noise(40) + _vec(0))
    assert scan(tmp_path)[1] == [("app.log", 41, _sha(0))]

    with app.open("a") as fh:  # written after the run, before logrotate
        fh.write(_noise(3) + _vec(1))
    app.rename(logs / "app.log.1")
    app.write_text(_noise(2, "new") + _vec(2))
    code, found, err = scan(tmp_path)
    assert found == [("app.log", 3, _sha(2)), ("app.log.1", 45, _sha(1))], err
    assert "1 resumed, 1 from the start" in err

    with (logs / "app.log.1").open("rb") as src, gzip.open(logs / "app.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (logs / "app.log.1").unlink()
    for _ in range(2):  # inflated and checked, then known by its compressed bytes
        code, found, err = scan(tmp_path)
        assert code == 0 and found == [], err
        assert "2 file(s) unchanged" in err

    with (logs / "app.log.1.gz").open("ab") as fh:  # a second gzip member: new text after the mark
        fh.write(gzip.compress((_noise(1) + _vec(5)).encode()))
    code, found, err = scan(tmp_path)
    assert found == [("app.log.1.gz", 47, _sha(5))] and "1 resumed" in err, err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_tail_appended_before_compression_is_scanned_from_the_gzip(tmp_path: Path, jobs: str) -> None:
    logs = _logs(tmp_path)
    scan = functools.partial(_scan_jobs, jobs=jobs)
    app = logs / "app.log"
    app.write_text(_noise(30) + _vec(0) + "half a line being writ")
    assert scan(tmp_path)[1] == [("app.log", 31, _sha(0))]
    text = app.read_text() + "ten\n" + _noise(2) + _vec(3)
    app.unlink()
    with gzip.open(logs / "app.log.1.gz", "wt") as fh:
        fh.write(text)
    code, found, err = scan(tmp_path)
    assert found == [("app.log.1.gz", 35, _sha(3))], err
    assert "1 resumed" in err
    assert scan(tmp_path)[1] == []


def test_copytruncate_starts_again_from_line_one(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    app = logs / "app.log"
    app.write_text(_noise(100) + _vec(0))
    assert _scan(tmp_path)[1] == [("app.log", 101, _sha(0))]
    shutil.copy(app, logs / "app.log.1")
    with app.open("r+") as fh:
        fh.truncate(0)
    app.write_text(_noise(3, "after") + _vec(4))  # shorter than the mark: from the start
    code, found, err = _scan(tmp_path)
    assert found == [("app.log", 4, _sha(4))], err
    assert "1 file(s) unchanged" in err and "1 from the start" in err  # the copy is the old text


def test_rewritten_file_with_another_head_is_read_whole(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    app = logs / "app.log"
    app.write_text(_noise(20) + _vec(0))
    assert _scan(tmp_path)[1] == [("app.log", 21, _sha(0))]
    app.write_text(_noise(60, "other") + _vec(5) + _vec(0))  # longer, but not the same text
    code, found, err = _scan(tmp_path)
    assert found == [("app.log", 61, _sha(5)), ("app.log", 62, _sha(0))], err
    assert "1 from the start" in err


def test_same_bytes_before_the_mark_but_changed_after_the_head(tmp_path: Path) -> None:
    """Files with the same first kilobyte (a banner) are told apart by the bytes before the mark."""
    logs = _logs(tmp_path)
    banner = "#" * 1500 + "\n"
    (logs / "a.log").write_text(banner + _noise(10, "a") + _vec(0))
    (logs / "b.log").write_text(banner + _noise(12, "b") + _vec(1))
    assert [f[0] for f in _scan(tmp_path)[1]] == ["a.log", "b.log"]
    code, found, err = _scan(tmp_path)
    assert found == [] and "2 file(s) unchanged" in err, err
    with (logs / "b.log").open("a") as fh:
        fh.write(_vec(2))
    code, found, err = _scan(tmp_path)
    assert found == [("b.log", 15, _sha(2))] and "1 resumed" in err, err


def test_short_file_that_grows_past_the_head_is_resumed(tmp_path: Path) -> None:
    app = _logs(tmp_path) / "app.log"
    app.write_text("2026 INFO start\n")  # shorter than the head hashed for identity
    assert _scan(tmp_path)[1] == []
    with app.open("a") as fh:
        fh.write(_noise(30) + _vec(6))
    code, found, err = _scan(tmp_path)
    assert found == [("app.log", 32, _sha(6))] and "1 resumed" in err, err


def test_half_written_last_line_is_read_whole_once_completed(tmp_path: Path) -> None:
    app = _logs(tmp_path) / "app.log"
    line = _vec(7)
    cut = len(line) // 2
    app.write_text(_noise(10) + line[:cut])  # the writer is in the middle of the vector
    first = _scan(tmp_path)[1]  # the half read now may alert as a truncated vector; not the whole
    assert all(at == 11 and sha != _sha(7) for _, at, sha in first), first
    assert _scan(tmp_path)[1] == []  # unchanged: skipped
    with app.open("a") as fh:
        fh.write(line[cut:] + _noise(2))
    code, found, err = _scan(tmp_path)
    assert found == [("app.log", 11, _sha(7))] and "1 resumed" in err, err
    assert _scan(tmp_path)[1] == []


def test_complete_vector_on_an_unfinished_line_is_not_alerted_every_night(tmp_path: Path) -> None:
    app = _logs(tmp_path) / "app.log"
    app.write_text(_noise(10) + _vec(8).rstrip("\n"))  # no newline yet
    assert _scan(tmp_path)[1] == [("app.log", 11, _sha(8))]
    for _ in range(2):
        code, found, err = _scan(tmp_path)
        assert found == [] and "1 file(s) unchanged" in err, err
    with app.open("a") as fh:
        fh.write("\n" + _noise(1))
    # The line is read again, whole, once it goes on (documented: it may alert this once more) ...
    assert _scan(tmp_path)[1] == [("app.log", 11, _sha(8))]
    with app.open("a") as fh:
        fh.write(_noise(1))
    assert _scan(tmp_path)[1] == []  # ... and never after


def test_ignore_marker_on_the_last_line_covers_the_line_written_after_the_run(tmp_path: Path) -> None:
    app = _logs(tmp_path) / "app.log"
    app.write_text(_noise(5) + "2026 INFO next line is a test fixture # vecleak:ignore\n")
    assert _scan(tmp_path)[1] == []
    with app.open("a") as fh:
        fh.write(_vec(9) + _vec(10))
    code, found, err = _scan(tmp_path)
    assert found == [("app.log", 8, _sha(10))], err  # line 7 is covered by the marker on line 6


def test_failed_run_does_not_advance_the_state(tmp_path: Path) -> None:
    app = _logs(tmp_path) / "app.log"
    app.write_text(_noise(10) + _vec(0))
    assert _scan(tmp_path)[1] == [("app.log", 11, _sha(0))]
    with app.open("a") as fh:
        fh.write(_vec(1))
    code, found, err = _scan(tmp_path, "--output", "jsonl:/dev/full")  # ENOSPC on every write
    assert code == 1 and "--state not updated" in err, err
    code, found, err = _scan(tmp_path)  # so the next run scans the new line again
    assert found == [("app.log", 12, _sha(1))], err


def test_state_with_baseline(tmp_path: Path) -> None:
    app = _logs(tmp_path) / "app.log"
    app.write_text(_noise(10) + _vec(0))
    baseline = tmp_path / "baseline.json"
    assert _scan(tmp_path, "--write-baseline", str(baseline))[1] == [("app.log", 11, _sha(0))]
    with app.open("a") as fh:
        fh.write(_vec(0) + _vec(1))  # the known vector again, and a new one
    code, found, err = _scan(tmp_path, "--baseline", str(baseline))
    assert found == [("app.log", 13, _sha(1))] and "1 resumed" in err, err


def test_stdin_is_never_stateful(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    for _ in range(2):
        res = run_cli("scan", "-", "--format", "jsonl", "--state", str(state), stdin=_vec(0).encode())
        assert res.returncode == 3 and alerts(res.stdout), res.stderr
    store = StateStore(str(state))
    assert store.items(scanstate.NAMESPACE) == {}
    store.close()


def test_files_not_seen_for_the_ttl_are_pruned(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    (logs / "a.log").write_text(_noise(3, "a") + _vec(0))
    (logs / "b.log").write_text(_noise(3, "b") + _vec(1))
    _scan(tmp_path)
    (logs / "b.log").unlink()
    _scan(tmp_path)  # the default keeps b.log's mark (30 days)
    assert _paths(tmp_path) == ["a.log", "b.log"]
    _scan(tmp_path, "--state-ttl", "1ms")  # a.log was seen by this run, b.log before it
    assert _paths(tmp_path) == ["a.log"]


def _paths(tmp_path: Path) -> list[str]:
    store = StateStore(str(tmp_path / "state.db"))
    try:
        entries = store.items(scanstate.NAMESPACE).values()
        return sorted(os.path.basename(e["path"]) for marks in entries for e in marks)
    finally:
        store.close()


def _api_state_scan(path: Path, state: Path, jobs: int) -> tuple[list[dict], dict, dict]:
    """One ``scan --state`` run through the engine: the events, the summary and the marks written."""
    out = io.BytesIO()
    engine = Engine(Pipeline(), load_rules(), [JsonlSink(out, owned=False)])
    # Lines over max_record (the 160 KB "TRACE dump" lines) are scanned in overlapping windows.
    source = FileSource([str(path)], block_size=BLOCK, max_record=2 * BLOCK, overlap=BLOCK // 4)
    st = scanstate.ScanState(str(state))
    try:
        if jobs == 0:  # no state: the full scan to compare with
            engine.run(source.records())
        elif jobs == 1:
            engine.run(scanstate.records(source, st))
        else:
            with Pool(jobs, engine.pipeline, source, range_size=RANGE) as pool:
                pool.scan(engine, source, state=st)
        summary = engine.close(source.progress.files)
        summary.pop("seconds")
        st.commit()
        marks = {k: [{**e, "seen": 0} for e in v] for k, v in st.store.items(scanstate.NAMESPACE).items()}
    finally:
        st.close()
    return _normal(out.getvalue()), summary, marks


def test_jobs_with_state_resume_as_serial(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    more = tmp_path / "more.log"
    _big_log(log, 1_500_000, seed=11)
    _big_log(more, 900_000, seed=12)
    with log.open("ab") as fh:
        fh.write(b"2026 INFO unfinished line, no newline yet ")  # the mark sits before it
    first = tmp_path / "first.db"
    _api_state_scan(log, first, 1)
    with log.open("ab") as fh:
        fh.write(b"... done\n" + more.read_bytes())
    runs = {}
    for jobs in (1, 2):
        state = tmp_path / f"jobs{jobs}.db"
        shutil.copy(first, state)
        runs[jobs] = _api_state_scan(log, state, jobs)
    assert runs[2] == runs[1]
    events, summary, _ = runs[1]
    assert summary["alerts"] > 10 and summary["bytes"] < 1.2 * more.stat().st_size  # windows overlap
    # The appended vectors are new (another seed): the resumed run alerts exactly what a full scan
    # alerts on the appended lines, on the same lines.
    full, _, _ = _api_state_scan(log, tmp_path / "unused.db", 0)
    appended = log.read_bytes().count(b"\n") - more.read_bytes().count(b"\n")
    assert _alerted(events) == {a for a in _alerted(full) if a[0] > appended}


def _alerted(events: list[dict]) -> set[tuple[int, str, str]]:
    return {
        (d["vecleak"]["location"]["line"], d["vecleak"]["vector"]["sha256"], d["rule"]["id"])
        for d in events
        if d.get("event", {}).get("kind") == "alert"
    }


def test_multi_line_payload_being_written_is_read_whole_next_run(tmp_path: Path) -> None:
    app = _logs(tmp_path) / "app.log"
    body = "DEBUG body=" + json.dumps({"embedding": [round(float(x), 6) for x in VECS[3]]}, indent=2) + "\n"
    cut = body.index("\n", len(body) // 2) + 1  # whole lines, the array half written
    app.write_text(_noise(10) + body[:cut])
    first = _scan(tmp_path)[1]
    with app.open("a") as fh:
        fh.write(body[cut:] + _noise(1))
    code, found, err = _scan(tmp_path)
    assert "1 resumed" in err, err
    full = run_cli("scan", str(app), "--format", "jsonl")  # no state: where a one-shot scan sees it
    whole = {
        (d["vecleak"]["location"]["line"], d["vecleak"]["vector"]["sha256"][:12]) for d in alerts(full.stdout)
    }
    assert {(at, sha) for _, at, sha in found} == whole and len(whole) == 1, (found, whole)
    assert not whole & {(at, sha) for _, at, sha in first}  # the half array was not the vector


def test_jobs_cli_output_matches_serial(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    outs = []
    for jobs in ("1", "2"):
        for i in range(3):
            (logs / f"s{i}.log").write_text(_noise(5 + i) + _vec(i))
        (tmp_path / "state.db").unlink(missing_ok=True)
        _scan(tmp_path, "--jobs", jobs)
        with (logs / "s1.log").open("a") as fh:
            fh.write(_vec(11))
        res = run_cli(
            "scan", str(logs), "--format", "jsonl", "--state", str(tmp_path / "state.db"), "--jobs", jobs
        )
        outs.append(_normal(res.stdout))
    found = {(d["log"]["file"]["path"], d["vecleak"]["location"]["line"]) for d in alerts_of(outs[0])}
    assert outs[0] == outs[1] and found == {(str(logs / "s1.log"), 8)}


def alerts_of(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d.get("event", {}).get("kind") == "alert"]


def test_damaged_gzip_is_reported_once(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    data = gzip.compress((_noise(3000) + _vec(0) + _noise(3000)).encode())
    (logs / "app.log.2.gz").write_bytes(data[: len(data) * 3 // 4])  # cut short
    code, found, err = _scan(tmp_path)
    assert found == [("app.log.2.gz", 3001, _sha(0))] and "1 input problem" in err, err
    code, found, err = _scan(tmp_path)  # the damage lies past what was read: not read again
    assert found == [] and "0 input problem" in err and "1 file(s) unchanged" in err, err


def test_unchanged_trace_export_is_skipped(tmp_path: Path, fixtures_dir: Path) -> None:
    name = "Arize-ai__openinference__js__packages__openinference-vercel__test____fixtures____v6-spans__all-spans.json"
    shutil.copy(fixtures_dir / name, _logs(tmp_path) / "spans.json")
    code, first, err = _scan(tmp_path)
    assert first and "1 from the start" in err, err
    code, found, err = _scan(tmp_path)
    assert found == [] and "1 file(s) unchanged" in err, err


def test_state_file_in_the_scanned_folder_is_not_scanned(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    (logs / "app.log").write_text(_noise(3) + _vec(0))
    for expected in ([("app.log", 4, _sha(0))], []):
        res = run_cli("scan", str(logs), "--format", "jsonl", "--state", str(logs / "vecleak.db"))
        assert (
            sorted(
                {
                    (
                        os.path.basename(d["log"]["file"]["path"]),
                        d["vecleak"]["location"]["line"],
                        d["vecleak"]["vector"]["sha256"][:12],
                    )
                    for d in alerts(res.stdout)
                }
            )
            == expected
        )
        assert b"vecleak.db" not in res.stdout, res.stdout  # a NUL-bytes diagnostic if it were read


def test_ranges_from_a_mark_yield_exactly_the_resumed_serial_records(tmp_path: Path) -> None:
    """``--jobs`` cuts a resumed file where a serial read from the mark cuts it: same records."""
    block, range_size = 65536, 200_000
    path = tmp_path / "random.log"
    data = _random_text(np.random.default_rng(5), 3_000_000)
    path.write_bytes(data)
    offset = data.index(b"\n", 777_777) + 1  # not on a block boundary
    line = data.count(b"\n", 0, offset) + 1
    before = data[offset - MARK_BYTES : offset]
    at = Mark(offset, line, mark_digest(before), offset)
    limits = FileSource([], block_size=block, max_record=300_000, overlap=20_000)
    serial, _ = _records(limits.read_one(str(path), str(path), Resume(at=at, before=before)))
    first = next(item for item in serial if item[0] == "record")
    assert first[1] == offset and first[2] == line
    points = split_points(str(path), block, range_size, offset)
    assert points is not None and len(points) >= 3 and points[0] == (offset, offset)
    joined: list[tuple] = []
    shift = line - 1
    for i, (start, block_end) in enumerate(points):
        stop = points[i + 1][0] if i + 1 < len(points) else None
        got, newlines = _records(read_range(str(path), str(path), start, block_end, stop, limits))
        for item in got:
            at_line = item[2] if item[0] == "record" else item[3]
            moved = (
                (*item[:2], at_line + shift, *item[3:])
                if item[0] == "record"
                else (*item[:3], at_line + shift)
            )
            joined.append(moved)
        shift += newlines
    assert joined == serial


def test_a_state_file_that_is_not_one_is_an_error(tmp_path: Path) -> None:
    (_logs(tmp_path) / "app.log").write_text(_vec(0))
    (tmp_path / "state.db").write_text("not a database, and not to be overwritten\n" * 200)
    res = run_cli("scan", str(tmp_path / "logs"), "--format", "jsonl", "--state", str(tmp_path / "state.db"))
    assert res.returncode == 1 and b"--state" in res.stderr and b"Traceback" not in res.stderr, res.stderr
    assert (tmp_path / "state.db").read_text().startswith("not a database")


def test_a_file_replaced_after_the_plan_is_not_resumed_into(tmp_path: Path) -> None:
    """Between the plan and the read the path may name another file: its start must not be skipped."""
    from scanner import parallel

    log = tmp_path / "big.log"
    _big_log(log, 600_000, seed=21)
    state = tmp_path / "state.db"
    _api_state_scan(log, state, 1)
    with log.open("ab") as fh:
        fh.write(_noise(20_000).encode())  # enough for ranges
    st = scanstate.ScanState(str(state))
    source = FileSource([str(log)], block_size=BLOCK)
    tasks = list(parallel.plan(source, [(str(log), str(log))], RANGE, st))
    plan = tasks[0].plan
    assert plan is not None and plan.how == "resumed" and tasks[0].ranged and len(tasks) > 2
    st.close()
    log.write_bytes(b"x" * log.stat().st_size)  # rotated: another file of the same size
    with pytest.raises(OSError, match="replaced while being scanned"):
        next(parallel._scan_task(tasks[0], Pipeline(), source, RANGE))
    # Read whole (not cut into ranges), the file is read from its start instead.
    first = next(source.read_one(str(log), str(log), plan.resume))
    assert first.offset == 0 and first.line == 1


def test_an_overlapping_run_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """A second run on a state file another process holds exits 1 at once: it neither reports the
    lines the first run owns nor writes marks. Once the holder closes, runs go on as before."""
    logs = _logs(tmp_path)
    (logs / "a.log").write_text(_noise(3) + _vec(0))
    holder = StateStore(str(tmp_path / "state.db"))  # stands in for a run still in progress
    try:
        code, found, err = _scan(tmp_path)
        assert code == 1 and found == [], err
        assert "in use by another vecleak process" in err and "state.db" in err, err
        assert holder.items(scanstate.NAMESPACE) == {}
        res = run_cli("watch", str(logs), "--state", str(tmp_path / "state.db"))
        assert res.returncode == 1 and b"in use by another vecleak process" in res.stderr, res.stderr
    finally:
        holder.close()
    code, found, err = _scan(tmp_path)
    assert code == 3 and found == [("a.log", 4, _sha(0))], err
    assert _paths(tmp_path) == ["a.log"]
