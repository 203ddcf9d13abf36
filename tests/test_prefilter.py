"""The Hyperscan prefilter changes speed, never findings.

Every input here is scanned twice, once through the prefilter's windows and once with the detectors
on whole blocks, and the two must report the same vectors at the same places with the same problems.
"""

from __future__ import annotations

import base64
import gzip
import json
import os

import numpy as np
import pytest
from conftest import FIXTURES, unit_vectors
from test_fast_paths import _log_sample, random_text

from scanner import prefilter
from scanner.model import Record
from scanner.pipeline import Pipeline
from scanner.sources.files import FileSource

WITH = Pipeline()
WITHOUT = Pipeline(use_prefilter=False)


def _report(pipeline: Pipeline, path: str) -> tuple[list, list]:
    found, problems = [], []
    for item in FileSource([path], block_size=64 * 1024).records():
        if isinstance(item, Record):
            result = pipeline.scan(item)
            found += [
                (f.line, f.offset, f.sha256, f.candidate.encoding, f.candidate.truncated, f.kind)
                for f in result.findings
            ]
            # A cut-off list whose first two items are integers opens no window (a float vector has a
            # decimal point in one of them; shorter integer lists are histograms and ids), so its
            # truncated-array note is the one thing allowed to differ.
            problems += [
                (d.kind, d.line)
                for d in result.diagnostics
                if not (d.kind == "truncated-array" and _int_list(item, d))
            ]
    return sorted(found), sorted(problems)


def _int_list(record: Record, diag) -> bool:
    at = diag.offset - record.offset if diag.offset is not None and not record.nested else 0
    items = record.data[at : at + 400].partition(b"[")[2].replace(b"\\n", b" ").split(b",")[:2]
    return not any(b"." in item or b"nan" in item or b"inf" in item for item in items)


def _same(path: str) -> int:
    with_found, with_problems = _report(WITH, path)
    assert (with_found, with_problems) == _report(WITHOUT, path)
    return len(with_found)


def test_hyperscan_is_installed():
    # A dependency on x86-64 and arm64: without it scans are several times slower, so CI must notice.
    assert prefilter.available()


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FIXTURES.glob("*") if p.suffix != ".md") if FIXTURES.is_dir() else []
)
def test_real_fixtures(name):
    _same(str(FIXTURES / name))


def test_realistic_log_with_every_encoding(tmp_path):
    rng = np.random.default_rng(11)
    vs = unit_vectors(12, 384, seed=11)
    noise = _log_sample(3, 3000).split(b"\n")
    planted = [
        f"vec={vs[0].tolist()}",
        json.dumps({"embedding": [float(x) for x in vs[1]]}),
        json.dumps({"data": [{"embedding": base64.b64encode(vs[2].astype("<f4").tobytes()).decode()}]}),
        json.dumps({"doc_vector": base64.b64encode(vs[3].astype(">f4").tobytes()).decode()}),
        "emb: " + json.dumps({"embedding": [round(float(x), 6) for x in vs[4]]}, indent=2),
        f"doc embedding: {np.array2string(vs[5], separator=', ', threshold=10_000)}",
        f"summary: {vs[6]!r}",
        "pg: '[" + ",".join(f"{x:.6g}" for x in vs[7]) + "]'",
        json.dumps({"int8": [int(x) for x in np.clip(vs[8] * 400, -128, 127)]}),
        "- " + "\n- ".join(f"{x:.8f}" for x in vs[9]),
        json.dumps({"arrayValue": {"values": [{"doubleValue": float(x)} for x in vs[10]]}}),
        "str: " + str(vs[11]),
    ]
    lines = []
    for i, line in enumerate(noise):
        lines.append(line)
        if i % 200 == 100 and planted:
            lines.append(planted.pop(0))
    lines += planted
    path = tmp_path / "app.log"
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    assert _same(str(path)) >= 11
    with gzip.open(tmp_path / "app.log.gz", "wb") as fh:
        fh.write(path.read_bytes())
    _same(str(tmp_path / "app.log.gz"))
    del rng


@pytest.mark.parametrize("seed", range(6))
def test_random_number_lists_in_every_spelling(tmp_path, seed):
    path = tmp_path / f"r{seed}.log"
    path.write_bytes(random_text(np.random.default_rng(seed), 400))
    _same(str(path))


def test_bench_generator_sample(tmp_path):
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    import gen_logs

    out = tmp_path / "gen.log"
    gen_logs.main([str(out), "--size", "3"]) if hasattr(gen_logs, "main") else pytest.skip("no gen_logs.main")
    assert _same(str(out)) > 0


def test_a_prefilter_fault_costs_speed_not_findings(tmp_path, monkeypatch):
    path = tmp_path / "app.log"
    path.write_text(f"vec={unit_vectors(1, 384, seed=4)[0].tolist()}\n")
    expected, _ = _report(WITHOUT, str(path))

    def broken(data: bytes):
        raise RuntimeError("scratch space unavailable")

    monkeypatch.setattr(prefilter, "scan", broken)
    found, problems = _report(Pipeline(), str(path))
    assert found == expected and len(found) == 1
    assert [kind for kind, _ in problems] == ["prefilter-error"]


def test_pipelines_in_several_threads_take_turns_on_the_scanner(tmp_path):
    import threading

    vs = unit_vectors(40, 384, seed=5)
    path = tmp_path / "many.log"
    path.write_text("".join(f"line {i}\nvec={v.tolist()}\n" for i, v in enumerate(vs)))
    expected, _ = _report(WITH, str(path))
    results: list = []

    def worker() -> None:
        results.append(_report(Pipeline(), str(path)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [found for found, _ in results] == [expected] * 4


def test_ignore_markers_found_in_the_prefilter_pass_suppress_the_same_lines(tmp_path):
    vs = unit_vectors(6, 384, seed=9)
    lines = [
        f"a={vs[0].tolist()}  # vecleak:ignore fixture",
        "# vecleak:ignore the next line is a known sample",
        f"b={vs[1].tolist()}",
        f"c={vs[2].tolist()}",
        *[f"INFO filler line {i}" for i in range(3000)],  # the marker search spans blocks of 64 KB
        f"d={vs[3].tolist()} vecleak:ignore",
        f"e={vs[4].tolist()}",
        f"f={vs[5].tolist()}",
    ]
    path = tmp_path / "marked.log"
    path.write_text("\n".join(lines) + "\n")
    data = path.read_bytes()
    hits = prefilter.scan(data)
    expected = []
    at = data.find(prefilter.IGNORE_MARKER)
    while at >= 0:
        expected.append(at)
        at = data.find(prefilter.IGNORE_MARKER, at + 1)
    assert hits.markers == expected and len(expected) == 3
    found, _ = _report(WITH, str(path))
    # a (own line), b (line after a marker), d (own line) and e (line after d) are suppressed.
    assert [line for line, *_ in found] == [4, len(lines)]
    assert _same(str(path)) == 2
