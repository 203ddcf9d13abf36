"""A corpus of bad input: every file is scanned without a crash, each problem counted as a Diagnostic,
and vectors next to the damage are still found.

Tests run as root here, so "unreadable" uses cases that root cannot read either: a dangling symlink,
a FIFO (which must not block the scan), a path through a regular file, a missing file.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import scan_paths, unit_vectors

from scanner.sources.files import _gzip_reader

REPO = Path(__file__).resolve().parent.parent
V = unit_vectors(1, 384, seed=21)[0]
VECTOR_LINE = json.dumps({"msg": "embedded", "embedding": [float(x) for x in V]}).encode() + b"\n"


def kinds(diagnostics) -> list[str]:
    return [d.kind for d in diagnostics]


def test_invalid_utf8_is_counted_and_the_vector_still_found(tmp_path):
    path = tmp_path / "latin1.log"
    path.write_bytes(b"caf\xe9 \xff\xfe broken\n" + VECTOR_LINE)
    findings, diagnostics = scan_paths(path)
    assert kinds(diagnostics) == ["invalid-utf8"]
    assert diagnostics[0].line == 1
    assert [f.line for f in findings] == [2]


def test_nul_bytes(tmp_path):
    path = tmp_path / "nul.log"
    path.write_bytes(b"a\x00b\x00c\n" + VECTOR_LINE)
    findings, diagnostics = scan_paths(path)
    assert "nul-bytes" in kinds(diagnostics)
    assert len(findings) == 1


def test_binary_garbage(tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(np.random.default_rng(3).bytes(2 * 1024 * 1024))
    findings, diagnostics = scan_paths(path)
    assert findings == []
    assert {"invalid-utf8", "nul-bytes"} & set(kinds(diagnostics))


def test_huge_floats_are_judged_without_numpy_warnings(tmp_path):
    """Random bytes read as float32 (up to 3e38) overflow when squared; the classifier rejects them
    quietly, with nothing on stderr but the summary."""
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 2**32, (40, 384), dtype=np.uint64).astype(np.uint32).view(np.float32)
    noise = noise[np.isfinite(noise).all(axis=1)]
    lines = [json.dumps({"embedding": base64.b64encode(row.tobytes()).decode()}) for row in noise]
    lines += [f"measurements={[float(x) for x in row]}" for row in noise[:5]]
    path = tmp_path / "huge.log"
    path.write_text("\n".join(lines) + "\n" + VECTOR_LINE.decode())
    res = subprocess.run(
        [sys.executable, "-W", "default", "-m", "scanner", "scan", str(path), "--format", "jsonl"],
        capture_output=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 3, res.stderr  # the one real vector
    assert b"Warning" not in res.stderr, res.stderr.decode()
    alerts = [json.loads(x) for x in res.stdout.splitlines() if b'"alert"' in x]
    assert {a["vecleak"]["location"]["line"] for a in alerts} == {len(lines) + 1}


def test_empty_file_is_not_a_problem(tmp_path):
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    assert scan_paths(path) == ([], [])


def test_nan_and_inf_values_are_counted(tmp_path):
    few = [float(x) for x in V]
    few[10] = float("nan")
    many = [float("nan")] * 100 + [float("inf")] * 10 + [float(x) for x in V[110:]]
    path = tmp_path / "nan.log"
    path.write_text(
        json.dumps({"embedding": few}) + "\n" + json.dumps({"embedding": many}) + "\n", encoding="utf-8"
    )
    findings, diagnostics = scan_paths(path)
    assert [f.line for f in findings] == [1]  # one NaN among 384 is reported; 110 of 384 is not a vector
    assert any("NaN" in r for r in findings[0].reasons)
    non_finite = [d for d in diagnostics if d.kind == "non-finite"]
    assert [d.line for d in non_finite] == [1, 2]


def test_truncated_base64_vector(tmp_path):
    text = json.dumps({"data": [{"embedding": base64.b64encode(V.astype("<f4").tobytes()).decode()}]})
    path = tmp_path / "cut.log"
    path.write_bytes(text[:1500].encode() + b"\n" + VECTOR_LINE)
    findings, diagnostics = scan_paths(path)
    assert "truncated-base64" in kinds(diagnostics)
    assert [(f.candidate.encoding, f.candidate.truncated) for f in findings] == [
        ("base64-f32le", True),
        ("json-array", False),
    ]


def test_deeply_nested_json(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(
        b"[" * 100_000 + b"]" * 100_000 + b"\n" + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n"
    )
    with open(path, "ab") as fh:
        fh.write(VECTOR_LINE)
    findings, diagnostics = scan_paths(path)
    assert [f.line for f in findings] == [3]
    assert "detector-error" not in kinds(diagnostics)


def _cassette(body: bytes) -> bytes:
    encoded = base64.b64encode(body).decode()
    lines = textwrap.wrap(encoded, 76)
    return (
        "interactions:\n- response:\n    body:\n      string: !!binary |\n"
        + "".join(f"        {x}\n" for x in lines)
    ).encode()


def test_gzip_file_corrupt_and_truncated(tmp_path):
    good = gzip.compress(VECTOR_LINE * 50)
    truncated = tmp_path / "cut.log.gz"
    truncated.write_bytes(good[: len(good) // 2])
    corrupt = tmp_path / "corrupt.log.gz"
    corrupt.write_bytes(good[:20] + bytes(200) + good[220:])
    findings, diagnostics = scan_paths(truncated, corrupt)
    assert kinds(diagnostics).count("corrupt-compressed") == 2
    assert {d.source for d in diagnostics} == {str(truncated), str(corrupt)}
    # What came out before the damage was scanned.
    assert len([f for f in findings if f.source.display == str(truncated)]) >= 1


def test_vcr_binary_gzip_corrupt_and_truncated(tmp_path):
    body = gzip.compress(json.dumps({"data": [{"embedding": [float(x) for x in V]}]}).encode())
    path = tmp_path / "cassette.yaml"
    path.write_bytes(
        _cassette(body) + _cassette(body[: len(body) * 2 // 3]) + _cassette(body[:10] + bytes(40) + body[50:])
    )
    findings, diagnostics = scan_paths(path)
    assert "truncated-gzip" in kinds(diagnostics)
    assert "corrupt-gzip" in kinds(diagnostics)
    whole = [f for f in findings if not f.candidate.truncated]
    assert len(whole) == 1 and whole[0].line == 4


def test_unreadable_paths_root_proof(tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "missing-target")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "afile").write_bytes(b"x\n")
    good = tmp_path / "good.log"
    good.write_bytes(VECTOR_LINE)
    findings, diagnostics = scan_paths(
        tmp_path / "dangling", tmp_path / "fifo", tmp_path / "afile" / "child", tmp_path / "nope", good
    )
    assert kinds(diagnostics) == ["unreadable"] * 4
    assert len(findings) == 1


def test_fifo_inside_a_scanned_directory_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "good.log").write_bytes(VECTOR_LINE)
    findings, diagnostics = scan_paths(tmp_path)
    assert kinds(diagnostics) == ["unreadable"]
    assert len(findings) == 1


_LONG_LINE_CHILD = """
import resource, sys
from scanner.model import Record
from scanner.pipeline import Pipeline
from scanner.sources.files import FileSource
p = Pipeline(); found = []; kinds = []
for item in FileSource([sys.argv[1]]).records():
    if isinstance(item, Record):
        r = p.scan(item)
        found += [(f.line, f.offset, f.candidate.dim, f.candidate.truncated) for f in r.findings]
        kinds += [d.kind for d in r.diagnostics]
    else:
        kinds.append(item.kind)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forking parent (a pytest that
# has loaded torch), while VmHWM belongs to this process's own address space.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) // 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(repr((found, kinds, peak)))
"""


@pytest.mark.parametrize("where", ["middle", "window-edge"])
def test_50mb_line_memory_bounded_and_vector_found(tmp_path, where):
    """A 50 MB line is scanned in overlapping windows: bounded memory, and the vector inside is found
    once, whole, even where it straddles a window boundary."""
    size = 50 * 1024 * 1024
    vector = json.dumps({"embedding": [float(x) for x in V]}).encode()
    at = size // 2 if where == "middle" else 16 * 1024 * 1024 - len(vector) // 2
    filler = b"lorem ipsum dolor sit amet, "
    path = tmp_path / "long.log"
    with open(path, "wb") as fh:
        fh.write(b"first line\n")
        fh.write((filler * (at // len(filler) + 1))[:at])
        fh.write(vector)
        rest = size - at - len(vector)
        fh.write((filler * (rest // len(filler) + 1))[:rest])
        fh.write(b"\n" + VECTOR_LINE)
    out = subprocess.run(
        [sys.executable, "-c", _LONG_LINE_CHILD, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    found, kinds_seen, max_rss_mb = eval(out)  # noqa: S307 - our own child's repr output
    expected_offset = len(b"first line\n") + at + vector.index(b"[")
    assert (2, expected_offset, 384, False) in found
    assert [f for f in found if f[0] == 2] == [(2, expected_offset, 384, False)]
    assert (3, len(b"first line\n") + size + 1 + VECTOR_LINE.index(b"["), 384, False) in found
    assert kinds_seen.count("long-line") == 1
    # Windows are 16 MB; reading the 50 MB line whole would need several times 50 MB.
    assert max_rss_mb < 200, max_rss_mb


def _inflate_until_error(stream) -> tuple[bytes, type | None]:
    parts = []
    try:
        while part := stream.read1(256 * 1024):
            parts.append(part)
    except (OSError, EOFError, zlib.error) as exc:
        return b"".join(parts), type(exc)
    return b"".join(parts), None


@pytest.mark.parametrize("damage", ["none", "truncated", "corrupt", "bad-crc"])
def test_gzip_reader_recovers_what_zlib_recovers(tmp_path, damage):
    """The ISA-L reader is faster, but at damage it must give up exactly where zlib does."""
    rng = np.random.default_rng(5)
    text = b"".join(b"INFO %d " % i + rng.bytes(40).hex().encode() + b"\n" for i in range(60_000))
    good = gzip.compress(text, compresslevel=6)
    data = {
        "none": good,
        "truncated": good[: len(good) * 2 // 3],
        "corrupt": good[: len(good) // 2] + bytes(300) + good[len(good) // 2 + 300 :],
        "bad-crc": good[:-8] + bytes(4) + good[-4:],
    }[damage]
    path = tmp_path / "a.log.gz"
    path.write_bytes(data)
    with open(path, "rb") as raw:
        expected = _inflate_until_error(gzip.GzipFile(fileobj=raw, mode="rb"))
    with open(path, "rb") as raw:
        got = _inflate_until_error(_gzip_reader(raw))
    assert got[0] == expected[0]
    assert (got[1] is None) == (expected[1] is None)
    assert (damage == "none") == (expected[1] is None)
