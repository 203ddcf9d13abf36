"""`vecleak scan` end to end through the real CLI: the jsonl contract, exit codes, baselines."""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import json
import lzma
import os
import stat

import numpy as np
from conftest import alerts, jsonl, run_cli, unit_vectors


def _log(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_jsonl_contract_fields(tmp_path):
    v = unit_vectors(1, 384)[0]
    _log(
        tmp_path,
        "app.log",
        "2026-11-26 INFO start\n" * 3 + f"2026-11-26 DEBUG query_embedding={v.tolist()}\n",
    )
    res = run_cli("scan", str(tmp_path), "--format", "jsonl")
    assert res.returncode == 3, res.stderr
    found = alerts(res.stdout)
    assert found, res.stdout
    doc = found[0]
    assert doc["log"]["file"]["path"] == os.path.join(str(tmp_path), "app.log")
    assert doc["vecleak"]["location"]["line"] == 4
    assert doc["vecleak"]["vector"]["dim"] == 384
    assert doc["vecleak"]["vector"]["encoding"] == "python-list"
    assert doc["vecleak"]["vector"]["truncated"] is False
    expected = hashlib.sha256(v.astype("<f4").tobytes()).hexdigest()
    assert doc["vecleak"]["vector"]["sha256"] == expected
    assert "model" in doc["vecleak"]["fingerprint"] and 0 <= doc["vecleak"]["fingerprint"]["confidence"] <= 1
    assert doc["rule"]["id"].startswith("vecleak.")
    assert 0 <= doc["event"]["severity"] <= 100


def test_same_vector_same_hash_across_encodings(tmp_path):
    v = unit_vectors(1, 256, seed=3)[0]
    b64 = base64.b64encode(v.astype("<f4").tobytes()).decode()
    _log(tmp_path, "a.log", f"vec={v.tolist()}\n")
    _log(tmp_path, "b.log", json.dumps({"embedding": b64}) + "\n")
    res = run_cli("scan", str(tmp_path), "--format", "jsonl")
    hashes = {
        d["vecleak"]["vector"]["encoding"]: d["vecleak"]["vector"]["sha256"] for d in alerts(res.stdout)
    }
    assert hashes["python-list"] == hashes["base64-f32le"]


def test_raw_vector_never_printed(tmp_path):
    v = unit_vectors(1, 384, seed=5)[0]
    _log(tmp_path, "app.log", f"emb={v.tolist()}\n")
    for fmt in ("jsonl", "table"):
        res = run_cli("scan", str(tmp_path), "--format", fmt)
        out = res.stdout.decode() + res.stderr.decode()
        for x in v[:20]:
            assert f"{float(x):.6f}"[:-1] not in out


def test_no_findings_exit_zero_and_decoys(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.random(100)
    _log(
        tmp_path,
        "decoys.log",
        f"hist={list(map(int, rng.integers(0, 99, 64)))}\n"
        f"probs={(probs / probs.sum()).tolist()}\n"
        f"ts={[1764147600.5 + k for k in range(50)]}\n"
        "plain line with [1, 2, 3]\n",
    )
    res = run_cli("scan", str(tmp_path), "--format", "jsonl")
    assert res.returncode == 0, res.stdout
    assert alerts(res.stdout) == []


def test_fail_on_threshold(tmp_path):
    _log(tmp_path, "app.log", f"vec={unit_vectors(1, 384)[0].tolist()}\n")
    assert run_cli("scan", str(tmp_path), "--fail-on", "critical", "--format", "jsonl").returncode == 0
    assert run_cli("scan", str(tmp_path), "--fail-on", "high", "--format", "jsonl").returncode == 3
    assert run_cli("scan", str(tmp_path), "--fail-on", "bogus").returncode == 1


def test_baseline_suppresses_known_findings(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    vs = unit_vectors(2, 384, seed=9)
    (logs / "app.log").write_text(f"a={vs[0].tolist()}\n")
    base = tmp_path / "baseline.json"
    first = run_cli("scan", str(logs), "--format", "jsonl", "--write-baseline", str(base))
    assert alerts(first.stdout)
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o600
    text = base.read_text()
    assert "0." not in text.replace('"version": 1', "")  # hashes only, no numbers from the vector
    # The known vector moves down a line (finding ids do not depend on line numbers); a new one appears.
    (logs / "app.log").write_text(f"new line\na={vs[0].tolist()}\nb={vs[1].tolist()}\n")
    second = run_cli("scan", str(logs), "--format", "jsonl", "--baseline", str(base))
    found = alerts(second.stdout)
    assert {d["vecleak"]["location"]["line"] for d in found} == {3}


def test_stdin_and_compressed(tmp_path):
    v = unit_vectors(1, 384, seed=2)[0]
    line = f"x={v.tolist()}\n".encode()
    res = run_cli("scan", "-", "--format", "jsonl", stdin=b"hello\n" + line)
    found = alerts(res.stdout)
    assert found and found[0]["log"]["file"]["path"] == "-" and found[0]["vecleak"]["location"]["line"] == 2
    with gzip.open(tmp_path / "old.log.1.gz", "wb") as fh:
        fh.write(b"a\nb\n" + line)
    res = run_cli("scan", str(tmp_path / "old.log.1.gz"), "--format", "jsonl")
    assert {d["vecleak"]["location"]["line"] for d in alerts(res.stdout)} == {3}


def test_bzip2_and_xz_logs(tmp_path):
    v = unit_vectors(1, 384, seed=2)[0]
    text = b"a\nb\n" + f"x={v.tolist()}\n".encode()
    (tmp_path / "old.log.2.bz2").write_bytes(bz2.compress(text))
    (tmp_path / "old.log.3.xz").write_bytes(lzma.compress(text))
    res = run_cli("scan", str(tmp_path), "--format", "jsonl")
    assert res.returncode == 3, res.stderr
    found = {
        (os.path.basename(d["log"]["file"]["path"]), d["vecleak"]["location"]["line"])
        for d in alerts(res.stdout)
    }
    assert found == {("old.log.2.bz2", 3), ("old.log.3.xz", 3)}


def test_include_exclude_globs(tmp_path):
    v = unit_vectors(1, 384)[0].tolist()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "keep.log").write_text(f"v={v}\n")
    (tmp_path / "sub" / "skip.txt").write_text(f"v={v}\n")
    res = run_cli("scan", str(tmp_path), "--include", "*.log", "--format", "jsonl")
    assert {os.path.basename(d["log"]["file"]["path"]) for d in alerts(res.stdout)} == {"keep.log"}
    res = run_cli("scan", str(tmp_path), "--exclude", "sub/keep.log", "--format", "jsonl")
    assert {os.path.basename(d["log"]["file"]["path"]) for d in alerts(res.stdout)} == {"skip.txt"}


def test_missing_path_is_a_counted_diagnostic(tmp_path):
    res = run_cli("scan", str(tmp_path / "nope.log"), "--format", "jsonl")
    docs = jsonl(res.stdout)
    assert [d["error"]["type"] for d in docs if d["event"]["kind"] == "pipeline_error"] == ["unreadable"]
    assert res.returncode == 0
