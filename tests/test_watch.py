"""`vecleak watch` reliability, end to end: the real daemon process, a real writer, real signals.

Every test drives ``python -m scanner watch`` as a subprocess while this process appends log lines
carrying unique 384-d vectors, then reads the jsonl output and checks that each vector was alerted.
Waits poll with generous timeouts (the machine is shared); nothing asserts on elapsed time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from conftest import REPO, unit_vectors

DIM = 384
FAST = ["--poll-interval", "0.05", "--rotate-wait", "1"]


# -- helpers --------------------------------------------------------------------------------------


class Vectors:
    """Unique vectors and the log lines that carry them; remembers each one's SHA-256."""

    def __init__(self, seed: int) -> None:
        self.pool = unit_vectors(400, DIM, seed=seed)
        self.next = 0
        self.written: list[str] = []

    def line(self, tag: str = "") -> bytes:
        v = self.pool[self.next]
        self.next += 1
        self.written.append(hashlib.sha256(v.astype("<f4").tobytes()).hexdigest())
        return f"2026-11-26T10:00:00Z DEBUG {tag} req={self.next} query_embedding={v.tolist()}\n".encode()


def noise(i: int) -> bytes:
    return f"2026-11-26T10:00:00Z INFO handled request {i} in 12ms status=200\n".encode()


class Watch:
    """One `vecleak watch` process; start/stop/kill it repeatedly against the same state and output."""

    def __init__(self, tmp: Path, globs: list[str], *extra: str, output: Path | None = None) -> None:
        self.tmp = tmp
        self.globs = globs
        self.extra = list(extra)
        self.state = tmp / "state" / "vecleak.db"
        self.output = output or tmp / "alerts.jsonl"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> Watch:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.starts += 1
        self.log = open(self.tmp / f"daemon-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scanner",
                "watch",
                *self.globs,
                "--state",
                str(self.state),
                "--output",
                f"jsonl:{self.output}",
                *FAST,
                *self.extra,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def term(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self.log.close()
        return rc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def docs(self) -> list[dict]:
        if not self.output.is_file():
            return []
        out = []
        for raw in self.output.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):  # a line being written right now
                out.append(orjson.loads(raw))
        return [d for d in out if d.get("event", {}).get("kind") == "alert"]

    def shas(self) -> set[str]:
        return {d["vecleak"]["vector"]["sha256"] for d in self.docs()}

    def wait_for(self, shas: list[str], timeout: float = 45) -> set[str]:
        deadline = time.monotonic() + timeout
        want = set(shas)
        while time.monotonic() < deadline:
            got = self.shas()
            if want <= got:
                return got
            if not self.alive():
                break
            time.sleep(0.1)
        missing = want - self.shas()
        logs = b"".join(
            (self.tmp / f"daemon-{i}.log").read_bytes()[-3000:] for i in range(1, self.starts + 1)
        )
        pytest.fail(f"{len(missing)} of {len(want)} vectors never alerted; daemon log tail:\n{logs.decode()}")

    def wait_log(self, needle: str, count: int = 1, timeout: float = 30) -> None:
        """Wait until the daemon's JSON log holds ``needle`` ``count`` times (e.g. a file opened)."""
        deadline = time.monotonic() + timeout
        while self.stderr().count(needle) < count:
            if time.monotonic() > deadline or not self.alive():
                pytest.fail(f"daemon never logged {needle!r} x{count}:\n{self.stderr()[-3000:]}")
            time.sleep(0.05)

    def stderr(self) -> str:
        return "".join((self.tmp / f"daemon-{i}.log").read_text() for i in range(1, self.starts + 1))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


@pytest.fixture
def watch_dir(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    return logs


# -- tests ----------------------------------------------------------------------------------------


def test_contract_fields_state_mode_and_clean_restart(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(1)
    append(log, noise(0) + vec.line() + noise(1))
    w = Watch(tmp_path, [str(watch_dir / "*.log")]).start()
    w.wait_for(vec.written)
    assert w.term() == 0
    docs = w.docs()
    doc = docs[0]
    assert doc["event"]["id"] and doc["event"]["created"]
    assert doc["log"]["file"]["path"] == str(log)
    assert doc["vecleak"]["location"]["line"] == 2
    assert doc["vecleak"]["vector"]["dim"] == DIM and doc["vecleak"]["vector"]["truncated"] is False
    assert stat.S_IMODE(os.stat(w.state).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(w.output).st_mode) == 0o600
    # The daemon's own log is JSON and holds no raw vector values.
    for line in w.stderr().splitlines():
        orjson.loads(line)
    assert not re.search(r"\d\.\d{6,}", w.stderr())

    # Restart on the same state: nothing is re-sent, and a new vector is.
    before = len(docs)
    w.start()
    append(log, vec.line())
    w.wait_for(vec.written)
    assert w.term() == 0
    ids = [d["event"]["id"] for d in w.docs()]
    assert len(ids) == len(set(ids)), "an alert id was delivered twice"
    assert len(ids) == 2 * before


def test_kill9_at_random_moments_loses_nothing(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(2)
    rng = random.Random(5)
    log.touch()
    w = Watch(tmp_path, [str(log)]).start()
    w.wait_log('"file-opened"')
    kills = 0
    next_kill = time.monotonic() + rng.uniform(0.8, 1.6)
    with open(log, "ab", buffering=0) as fh:
        for i in range(50):
            fh.write(b"".join(noise(i * 10 + j) for j in range(20)) + vec.line())
            time.sleep(0.06)
            if time.monotonic() >= next_kill:
                w.kill9()
                kills += 1
                w.start()
                next_kill = time.monotonic() + rng.uniform(0.8, 1.6)
    w.wait_for(vec.written)
    assert w.term() == 0
    assert kills >= 2
    docs = w.docs()
    by_id: dict[str, list[dict]] = {}
    for d in docs:
        by_id.setdefault(d["event"]["id"], []).append(d)
    # At least once: every vector alerted. Ids are stable: a replayed alert has the same id and the
    # same content, so dedup downstream by event.id is exact.
    for copies in by_id.values():
        assert len({c["vecleak"]["finding"]["fingerprint"] for c in copies}) == 1
        assert len({c["vecleak"]["location"]["offset"] for c in copies}) == 1
    # Replays are suppressed inside vecleak: ids committed to the state DB, and ids already in the
    # output file's tail when a kill landed between the write and the commit, are not sent again.
    repeated = {k: len(v) for k, v in by_id.items() if len(v) > 1}
    assert repeated == {}, (repeated, kills)


def test_rename_rotation_while_writing(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(3)
    log.touch()
    w = Watch(tmp_path, [str(log)]).start()
    w.wait_log('"file-opened"')
    fh = open(log, "ab", buffering=0)  # noqa: SIM115
    for rotation in range(3):
        for i in range(8):
            fh.write(noise(i) + vec.line(f"r{rotation}"))
            time.sleep(0.03)
        # logrotate's default: rename, create the new file; the app writes a little more to the old
        # handle before it reopens (as after a SIGHUP).
        for k in range(rotation + 1, 0, -1):
            old = watch_dir / f"app.log.{k}"
            if old.exists():
                old.rename(watch_dir / f"app.log.{k + 1}")
        log.rename(watch_dir / "app.log.1")
        log.touch()
        fh.write(vec.line("late"))
        fh.close()
        fh = open(log, "ab", buffering=0)  # noqa: SIM115
        # A file created and rotated away before anyone looked is lost by every tailer (Filebeat
        # documents it); this test is about rotation *while following*, so let discovery happen.
        w.wait_log('"file-opened"', rotation + 2)
    for i in range(5):
        fh.write(vec.line("end") + noise(i))
    fh.close()
    w.wait_for(vec.written)
    assert w.term() == 0
    assert {d["log"]["file"]["path"] for d in w.docs()} == {str(log)}


def test_copytruncate_rotation_while_writing(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(4)
    # As Vector and Fluent Bit advise for copytruncate, the first rotated name is matched too, so
    # lines copied before the daemon read them are still scanned (from the copy).
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    w = Watch(tmp_path, [str(watch_dir / "app.log*")]).start()
    w.wait_log('"file-opened"')
    after_last: list[str] = []
    for rotation in range(3):
        for i in range(8):
            os.write(fd, noise(i) + vec.line(f"c{rotation}"))
            time.sleep(0.03)
        shutil.copyfile(log, watch_dir / f"app.log.{rotation + 1}")
        os.truncate(log, 0)
    for i in range(6):
        os.write(fd, vec.line("after") + noise(i))
        after_last.append(vec.written[-1])
        time.sleep(0.03)
    os.close(fd)
    w.wait_for(vec.written)
    # Lines written after the truncation are read from the truncated file itself, from offset 0.
    docs = w.docs()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        on_log = {d["vecleak"]["vector"]["sha256"] for d in docs if d["log"]["file"]["path"] == str(log)}
        if set(after_last) <= on_log:
            break
        time.sleep(0.2)
        docs = w.docs()
    assert set(after_last) <= on_log
    assert w.term() == 0
    assert "file-truncated" in w.stderr()


def test_deleted_and_recreated(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(5)
    append(log, noise(0) + vec.line() + vec.line())
    w = Watch(tmp_path, [str(log)]).start()
    w.wait_for(vec.written)
    for round_ in range(3):
        log.unlink()
        append(log, vec.line(f"new{round_}") + noise(1))
        w.wait_for(vec.written)
    assert w.term() == 0


def test_partial_last_line_waits_for_its_newline(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(6)
    line = vec.line()
    append(log, noise(0))
    w = Watch(tmp_path, [str(log)], "--flush-partial-after", "60").start()
    append(log, line[: len(line) // 2])
    # Give the daemon time to read the half line (it polls every 50 ms) and prove it held it back.
    deadline = time.monotonic() + 20
    while "file-opened" not in w.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    assert w.docs() == []
    append(log, line[len(line) // 2 :])
    w.wait_for(vec.written)
    doc = w.docs()[0]
    assert doc["vecleak"]["vector"]["dim"] == DIM and doc["vecleak"]["vector"]["truncated"] is False
    assert doc["vecleak"]["location"]["line"] == 2
    assert w.term() == 0


def test_ignore_marker_at_end_of_file_covers_the_line_written_after_it(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(8)
    append(log, noise(0))
    w = Watch(tmp_path, [str(log)], "--flush-partial-after", "60").start()
    w.wait_log("file-opened")
    append(log, b"# vecleak:ignore the next line is a known test vector\n")
    time.sleep(1.5)  # the daemon polls every 50 ms: it has read the marker line by now
    append(log, vec.line("known"))
    append(log, vec.line("leak"))
    w.wait_for(vec.written[1:])
    assert w.shas() == {vec.written[1]}
    assert w.term() == 0


def test_final_line_without_newline_is_flushed_after_timeout(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(7)
    append(log, noise(0) + vec.line().rstrip(b"\n"))
    w = Watch(tmp_path, [str(log)], "--flush-partial-after", "0.5").start()
    w.wait_for(vec.written)
    assert w.term() == 0


def test_sink_down_then_up(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(8)
    out_dir = tmp_path / "not-yet"
    w = Watch(tmp_path, [str(log)], output=out_dir / "alerts.jsonl").start()
    for i in range(10):
        append(log, noise(i) + vec.line())
    deadline = time.monotonic() + 30
    while "sink failed" not in w.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "sink failed" in w.stderr()
    for i in range(10):  # more data while the sink is down: reading pauses, nothing is dropped
        append(log, noise(i) + vec.line())
    time.sleep(0.5)
    out_dir.mkdir()
    w.wait_for(vec.written)
    assert w.term() == 0
    ids = [d["event"]["id"] for d in w.docs()]
    assert len(ids) == len(set(ids))


def test_long_vector_line_is_windowed(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(9)
    pad = b"x" * (3 * 1024 * 1024)
    append(log, b"2026-11-26 DEBUG blob=" + pad + b" " + vec.line())
    w = Watch(tmp_path, [str(log)], "--max-record", str(1024 * 1024)).start()
    w.wait_for(vec.written)
    assert w.term() == 0
    assert '"long-line"' in w.stderr()


def test_healthz_metrics_and_sighup_reload(tmp_path, watch_dir):
    log = watch_dir / "app.log"
    vec = Vectors(10)
    rules = tmp_path / "rules.yml"
    rules.write_text("id: test.first\ntitle: first\nlevel: low\nmatch:\n  dims: {min: 8}\n", encoding="utf-8")
    append(log, vec.line())
    w = Watch(tmp_path, [str(log)], "--rules", str(rules), "--listen", "127.0.0.1:0").start()
    w.wait_for(vec.written)
    port = int(re.search(r'"address": "127\.0\.0\.1:(\d+)"', w.stderr()).group(1))
    health = orjson.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read())
    assert health["status"] == "ok" and health["files"] == 1
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for name in (
        "vecleak_lines_total",
        "vecleak_bytes_total",
        "vecleak_findings_total",
        "vecleak_lag_bytes",
        "vecleak_lag_seconds",
        'vecleak_queue_depth{queue="analysis"}',
    ):
        assert name in metrics
    assert re.search(r"^vecleak_findings_total 1\.0$", metrics, re.M)

    rules.write_text(
        "id: test.second\ntitle: second\nlevel: high\nmatch:\n  dims: {min: 8}\n", encoding="utf-8"
    )
    w.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "rules reloaded" not in w.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    append(log, vec.line())
    w.wait_for(vec.written)
    assert w.term() == 0
    assert {d["rule"]["id"] for d in w.docs()} == {"test.first", "test.second"}


def test_rules_on_inverted_text_fire_after_enrichment(tmp_path, watch_dir):
    """A real MiniLM vector is inverted off the hot path; a text_regex rule on the reconstruction, which
    could not fire at detection time, then fires as a new alert with its own id, once."""
    pytest.importorskip("torch")
    import shutil

    from scanner.inversion.models import DEFAULT_MODEL, load_encoder
    from scanner.rules import default_rules_dir

    vec = load_encoder(DEFAULT_MODEL).embed_texts(["reset my password"])[0]
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    (rules / "secrets.yml").write_text(
        "id: test.inverted-password\ntitle: password in inverted text\nlevel: critical\n"
        "match:\n  text_regex: '(?i)password'\n"
    )
    config = tmp_path / "vecleak.yml"
    config.write_text("invert_sample: 1.0\ninvert_budget: 300\n")
    log = watch_dir / "app.log"
    log.write_bytes(f"2026-11-26 DEBUG query_embedding={vec.tolist()}\n".encode())
    w = Watch(tmp_path, [str(log)], "--config", str(config), "--rules", str(rules)).start()
    deadline = time.monotonic() + 240
    fired: list[dict] = []
    while time.monotonic() < deadline and w.alive():
        docs = w.docs()
        fired = [d for d in docs if d["rule"]["id"] == "test.inverted-password"]
        if fired and any(d["event"].get("action") == "enriched" for d in docs):
            break
        time.sleep(0.5)
    assert w.term() == 0
    assert fired, w.stderr()[-3000:]
    docs = w.docs()
    enriched = [d for d in docs if d["event"].get("action") == "enriched"]
    assert enriched and enriched[0]["vecleak"]["inversion"]["cosine"] >= 0.9
    assert "text_clear" not in enriched[0]["vecleak"]["inversion"]
    assert len({d["event"]["id"] for d in fired}) == 1 and len(fired) == 1
    assert fired[0]["event"]["severity"] == 95
