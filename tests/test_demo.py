"""`vecleak demo`: real MiniLM vectors planted in five encodings are all found; decoys raise nothing."""

from __future__ import annotations

import os

from conftest import alerts, run_cli


def test_demo_finds_every_planted_vector_and_no_decoy(tmp_path):
    res = run_cli("demo", "--dir", str(tmp_path / "logs"), "--format", "jsonl", timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    found: dict[str, set[str]] = {}
    for doc in alerts(res.stdout):
        found.setdefault(os.path.basename(doc["log"]["file"]["path"]), set()).add(
            doc["vecleak"]["vector"]["sha256"]
        )
    assert {name: len(hashes) for name, hashes in found.items()} == {
        "app.log": 3,
        "http-debug.log": 3,
        "worker.log.1.gz": 1,
        "es-export.ndjson": 3,
    }
    encodings = {doc["vecleak"]["vector"]["encoding"] for doc in alerts(res.stdout)}
    assert {"python-list", "json-array", "base64-f32le", "base64-f32be", "numpy-repr"} <= encodings
