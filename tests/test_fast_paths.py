"""The hot path's shortcuts give the same answers as the plain code they replace.

numeric_list finds arrays through a translated-block prefilter and an orjson fast path, key_before
walks back before running its regex, and precision_of compares bytes: each is checked here against a
straightforward reference (the original implementation, kept below) on hand-picked edge cases and on
seeded random text built from the pieces real payloads are made of. Block boundaries are covered by
scanning through the real block reader with tiny blocks.
"""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import unit_vectors

from detectors import _common, base64_floats, numeric_list, vcr_binary
from scanner.model import Candidate, Record, SourceRef
from scanner.pipeline import Pipeline
from scanner.sources.files import FileSource, open_text_stream, read_stream

SRC = SourceRef(kind="memory", display="t", identity="memory:t")

# ---- reference implementations (the plain code the fast paths replaced) ----

_REF_DIGITS = re.compile(rb"\d+(?:\.\d+)?")


def ref_key_before(data: bytes, start: int, window: int = 160) -> str | None:
    m = _common._KEY_BEFORE.search(data, max(0, start - window), start)
    if not m:
        return None
    return (m.group(1) or m.group(2)).decode("utf-8", "replace")


def ref_msd(text: bytes, sample: int = _common.PRECISION_SAMPLE) -> float:
    counts = []
    for m in _REF_DIGITS.finditer(text, 0, min(len(text), sample * 24)):
        counts.append(len(m.group().replace(b".", b"").lstrip(b"0")))
        if len(counts) >= sample:
            break
    return float(np.mean(counts)) if counts else 0.0


def ref_precision(values64: np.ndarray, text: bytes | None = None) -> str:
    if values64.size == 0:
        return "unknown"
    finite = values64[np.isfinite(values64)]
    if finite.size == 0:
        return "unknown"
    with np.errstate(over="ignore"):
        as32 = finite.astype(np.float32)
        if np.array_equal(as32.astype(np.float16).astype(np.float32), as32):
            return "fp16"
    if text is not None:
        digits = ref_msd(text)
        if digits < 5:
            return "low"
        if np.array_equal(as32.astype(np.float64), finite):
            return "f64-widened" if digits >= 14 else "f32"
        return "f64" if digits >= 14 else "f32"
    return "f32" if np.array_equal(as32.astype(np.float64), finite) else "f64"


def ref_numeric(data: bytes) -> list[tuple]:
    """What numeric_list found before its fast paths: ``_ARRAY.finditer`` over each numeric window."""
    det = numeric_list.DETECTOR
    record = Record(data=data, source=SRC)
    out: list[tuple] = []
    prev_end, prev_key = -1, None
    for lo, hi in _common.numeric_windows(data):
        for m in numeric_list._ARRAY.finditer(data, lo, hi):
            body = m.group(1)
            truncated = m.group(2) is None
            if truncated and _common.at_window_edge(record, m.end()):
                continue
            escaped = b"\\" in body or b"np.float" in body
            clean = numeric_list._ESCAPES.sub(b" ", body) if escaped else body
            values64 = _common.parse_numbers(clean)
            if values64 is None:
                continue
            start = m.start()
            key = ref_key_before(data, start) or _common.sibling_key(data, prev_end, start, prev_key)
            prev_end, prev_key = m.end(), key
            with np.errstate(over="ignore", invalid="ignore"):
                values32 = values64.astype(np.float32)
            out.append(
                (
                    start,
                    m.end(),
                    det._encoding(data, start, m.end(), body, b"\n" in body),
                    key,
                    truncated,
                    ref_precision(values64, clean),
                    values32.tobytes(),
                )
            )
            if truncated:
                out.append(("diagnostic", start))
    return out


def fast_numeric(data: bytes) -> list[tuple]:
    out: list[tuple] = []
    for c in numeric_list.DETECTOR.find(Record(data=data, source=SRC)):
        if isinstance(c, Candidate):
            out.append((c.start, c.end, c.encoding, c.key, c.truncated, c.precision, c.values.tobytes()))
        else:
            out.append(("diagnostic", out[-1][0]))
    return out


# ---- corpora ----

EDGE_CASES = [
    b"[INFO] [26/Nov/2026:10:00:00 +0000] top-5 [0.1, 0.2, 0.3] shape=[5, 384]",
    b'{"embedding": [' + b", ".join(b"%d" % i for i in range(20)) + b"]}",
    b"vec = [" + b",".join(b"0.%d" % i for i in range(1, 17)) + b"]",
    b"vec = [" + b",".join(b"0.%d" % i for i in range(1, 16)) + b"]",  # 15 items: not enough
    b"v=[ " + b" , ".join(b"-0.%d" % i for i in range(1, 30)) + b" ]",
    b"x: [" + b", ".join(b"1." for _ in range(20)) + b"]",  # Python-only spelling
    b"x: [" + b", ".join(b".5" for _ in range(20)) + b",]",  # trailing comma
    b"x: [" + b", ".join(b"0.25" for _ in range(20)),  # cut off, no closing bracket
    b'"embedding": [\n' + b",\n".join(b"    0.0%d" % i for i in range(1, 25)) + b"\n  ]",
    b'"values": "[' + b",\\n ".join(b"0.%d" % i for i in range(10, 40)) + b']"',
    b"e = [" + b", ".join(b"np.float32(0.%d)" % i for i in range(10, 40)) + b"]",
    b"n = [" + b", ".join([b"nan", b"inf", b"-inf"] + [b"0.%d" % i for i in range(30)]) + b"]",
    b"big = [" + b", ".join(b"%d" % (10**25 + i) for i in range(20)) + b"]",
    b"e = [" + b", ".join(b"1.5e-05" for _ in range(20)) + b"]",
    b"f = [" + b", ".join(b"1e400" for _ in range(20)) + b"]",
    b"p = '[" + b",".join(b"0.%d" % i for i in range(10, 40)) + b"]'",
    b"vector [" + b",".join(b"0.%d" % i for i in range(10, 40)) + b"]",
    b"[[" + b", ".join(b"0.%d" % i for i in range(10, 40)) + b"], [1, 2]]",
    b"[1, 2, 3][" + b", ".join(b"0.%d" % i for i in range(10, 40)) + b"]",
    b'\\"embedding\\": [' + b", ".join(b"0.%d" % i for i in range(10, 40)) + b"]",
]


def random_text(rng: np.random.Generator, n: int) -> bytes:
    """Log-ish noise mixed with number lists in every spelling the detector knows."""
    keys = [
        b'"embedding": ',
        b"vec=",
        b"values: ",
        b"x = ",
        b"'data': ",
        b"",
        b"\\n",
        b'\\"v\\": ',
        b"[DEBUG] ",
    ]
    seps = [b",", b", ", b" ,", b",\n  ", b",\\n", b" , "]
    items = [
        lambda: b"%.6f" % rng.standard_normal(),
        lambda: repr(float(rng.standard_normal())).encode(),
        lambda: b"%d" % rng.integers(-5, 500),
        lambda: b"%.2e" % rng.standard_normal(),
        lambda: b"np.float32(%.4f)" % rng.standard_normal(),
        lambda: b"nan",
        lambda: b"1.",
        lambda: b"0.0",
        lambda: b"-0",
    ]
    parts = []
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            parts.append(
                rng.choice(
                    [b"INFO app: ", b"[WARN] ", b"1.2.3.4 - - [26/Nov/2026] ", b'{"a": [1, "x"]} ', b"\n"]
                )
            )
            continue
        count = int(rng.integers(10, 40))
        sep = seps[int(rng.integers(0, len(seps)))]
        pick = int(rng.integers(0, len(items)))
        vals = [items[pick]() if rng.random() < 0.9 else items[0]() for _ in range(count)]
        close = [b"]", b" ]", b"\n]", b",]", b""][int(rng.integers(0, 5))]
        parts.append(keys[int(rng.integers(0, len(keys)))] + b"[" + sep.join(vals) + close + b"\n")
    return b"".join(parts)


# ---- tests ----


@pytest.mark.parametrize("case", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_numeric_list_matches_reference_on_edge_cases(case: bytes) -> None:
    data = b"2026-11-26T10:00:00Z DEBUG app: " + case + b"\n"
    assert fast_numeric(data) == ref_numeric(data)


def test_numeric_list_matches_reference_on_random_text() -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        data = random_text(rng, 60)
        assert fast_numeric(data) == ref_numeric(data)


def test_key_before_matches_reference() -> None:
    rng = np.random.default_rng(5)
    alphabet = np.frombuffer(b"abcXYZ_09.-\"'\\ \t\n:=([{}n,", dtype=np.uint8)
    for _ in range(3000):
        data = bytes(rng.choice(alphabet, size=int(rng.integers(0, 200)))) + b"["
        start = len(data) - 1
        assert _common.key_before(data, start) == ref_key_before(data, start), data
    samples = [
        b'{"embedding": [',
        b"embedding=[",
        b'\\"vector\\": \\"[',
        b"key :\n  [",
        b"x" * 150 + b"_vector = [",
        b'"' + b"k" * 90 + b'": [',
        b"data:\\n[",
    ]
    for data in samples:
        assert _common.key_before(data, len(data) - 1) == ref_key_before(data, len(data) - 1)


def test_precision_and_digits_match_reference() -> None:
    rng = np.random.default_rng(3)
    vec = unit_vectors(1, 384)[0]
    cases = [
        (vec.astype(np.float64), str(vec.astype(np.float64).tolist()).encode()),
        (vec.astype(np.float64), orjson.dumps(vec.tolist())),
        (np.round(vec.astype(np.float64), 4), b", ".join(b"%.4f" % x for x in vec)),
        (vec.astype(np.float16).astype(np.float64), b"0.1, 0.2"),
        (rng.standard_normal(300), str(rng.standard_normal(300).tolist()).encode()),
        (np.arange(40, dtype=np.float64), b", ".join(b"%d" % i for i in range(40))),
        (np.array([1e39, 0.5] * 20), b"1e39, 0.5"),
        (np.array([np.nan, np.inf, 0.5, 0.25] * 10), b"nan, inf, 0.5, 0.25"),
        (np.array([70000.0, 0.5] * 10), b"70000.0, 0.5"),
        (np.array([np.nan] * 20), b"nan"),
        (np.array([-0.0, 0.0] * 10), b"-0.0, 0.0, 00.5, 0.000, 1.5e-05, np.float32(0.5), .05"),
        (np.array([], dtype=np.float64), b""),
        # fp16 edges: the first value exact but not the rest, all exact but one, the top of float16's
        # range, beyond it, subnormals
        (np.concatenate([[0.5], vec[1:].astype(np.float64)]), b"0.5, 0.1"),
        (np.concatenate([vec[:-1].astype(np.float16).astype(np.float64), [0.1]]), b"0.5, 0.1"),
        (np.array([65504.0, -0.5] * 10), b"65504.0, -0.5"),
        (np.array([65520.0, 0.5] * 10), b"65520.0, 0.5"),
        (np.array([6e-8, 5.960464477539063e-08, -1e-30] * 10), b"6e-8, 5.960464477539063e-08"),
    ]
    for values, text in cases:
        assert _common.precision_of(values, text) == ref_precision(values, text)
        assert _common.precision_of(values) == ref_precision(values)
        assert _common._mean_significant_digits(text) == pytest.approx(ref_msd(text), abs=1e-12)
        values32, _ = _common.float32_and_precision(values, text)
        with np.errstate(over="ignore", invalid="ignore"):
            assert values32.tobytes() == values.astype(np.float32).tobytes()


def test_vcr_prefilter_keeps_binary_blocks() -> None:
    assert vcr_binary.DETECTOR.may_contain(b"body: !!binary |\n  H4sI")
    assert not vcr_binary.DETECTOR.may_contain(b"Error! no binary here")


def _scan_all(data: bytes, block: int) -> list[tuple[int, str, int]]:
    source = FileSource(paths=[], block_size=block)
    pipeline = Pipeline()
    out = []
    for rec in read_stream(io.BytesIO(data), SRC, source):
        if isinstance(rec, Record):
            out += [(f.line, f.candidate.encoding, f.candidate.dim) for f in pipeline.scan(rec).findings]
    return out


def test_payloads_found_across_block_boundaries() -> None:
    """A vector straddling a block cut, a base64 payload and a pretty-printed array, tiny blocks."""
    vecs = unit_vectors(3, 384, seed=9)
    lines = [b"2026-11-26 INFO app: warming up [cache] %d" % i for i in range(50)]
    lines.append(b"DEBUG query embedding: " + str(vecs[0].astype(np.float64).tolist()).encode())
    lines += [b"INFO [req-1] ok %d" % i for i in range(20)]
    lines.append(b'{"object": "embedding", "embedding": "' + base64.b64encode(vecs[1].tobytes()) + b'"}')
    lines.append(b'{"embedding": [')
    lines += [b"    %r," % float(x) for x in vecs[2][:-1]] + [b"    %r" % float(vecs[2][-1]), b"  ]}"]
    lines += [b"INFO done %d" % i for i in range(20)]
    data = b"\n".join(lines) + b"\n"
    whole = _scan_all(data, 1 << 22)
    assert whole == [(51, "json-array", 384), (72, "base64-f32le", 384), (73, "json-array-pretty", 384)]
    for block in (1000, 4096, 7919):
        assert _scan_all(data, block) == whole


def test_pipeline_finds_planted_vectors_among_decoys() -> None:
    """The benchmark's own log, small: every planted vector, nothing else."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import gen_logs

    rng = np.random.default_rng(1)
    lines = [gen_logs.ordinary_line(rng).encode() for _ in range(3000)]
    vecs = unit_vectors(5, 384, seed=2)
    planted = []
    for i, v in enumerate(vecs):
        at = 400 * (i + 1)
        lines[at] = gen_logs.vector_line(rng, v).encode()
        planted.append(at)
    data = b"".join(lines)
    starts = np.cumsum([0] + [chunk.count(b"\n") for chunk in lines])
    want = {int(starts[i]) + 1 for i in planted}
    pipeline = Pipeline()
    found = set()
    for rec in open_text_stream(data):
        if isinstance(rec, Record):
            found |= {f.line for f in pipeline.scan(rec).findings}
    assert found == want
    assert base64_floats.DETECTOR.may_contain(data)


def test_significant_digits_match_reference_on_random_strings() -> None:
    rng = np.random.default_rng(21)
    alphabet = np.frombuffer(b"0000123456789..., -e np()", dtype=np.uint8)
    for _ in range(3000):
        text = bytes(rng.choice(alphabet, size=int(rng.integers(0, 300))))
        assert _common._mean_significant_digits(text) == pytest.approx(ref_msd(text), abs=1e-12), text
    for vec in unit_vectors(5, 384, seed=4):
        for text in (str(vec.astype(np.float64).tolist()).encode(), orjson.dumps(vec.tolist())):
            assert _common._mean_significant_digits(text) == pytest.approx(ref_msd(text), abs=1e-12)


def _log_sample(seed: int, n: int) -> bytes:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import gen_logs

    rng = np.random.default_rng(seed)
    return b"".join(gen_logs.ordinary_line(rng).encode() for _ in range(n))


def test_window_finditer_matches_per_window_finditer() -> None:
    """One block-wide pass gives the same matches as a finditer in every numeric window."""
    from detectors import numpy_repr, quantized, sparsevec

    rng = np.random.default_rng(8)
    sparse = b"{" + b",".join(b"%d:0.%d" % (i, i) for i in range(1, 30)) + b"}/384"
    texts = [random_text(rng, 80) for _ in range(10)] + [_log_sample(3, 3000)]
    texts.append(b"x = [" + b", ".join(b"%d" % i for i in range(40)) + b"] " + sparse + b"\n[ 0.1  0.2 " * 30)
    texts.append(
        b"z = np.array([" + b", ".join(b"0.%d" % i for i in range(20)) + b"]) torch.tensor(" * 3 + b"\n"
    )
    texts.append(b"v = [ 0.1 -0.2  3e-05\n 0.4 nan 0.6 ...  0.7 0.8]\n" * 5 + b"[1 2 3 4 5]\n[\x0b1,2,3]" * 5)
    for data in texts:
        windows = _common.numeric_windows(data)
        for pattern in (numeric_list._START, quantized._ARRAY, sparsevec._SPARSE, numpy_repr._STR):
            want = [
                (m.start(), m.end(), m.groups()) for lo, hi in windows for m in pattern.finditer(data, lo, hi)
            ]
            got = [(m.start(), m.end(), m.groups()) for m, _ in _common.window_finditer(pattern, data)]
            assert got == want
            shared = _common.brace_matches if pattern is sparsevec._SPARSE else _common.bracket_matches
            got = [(m.start(), m.end(), m.groups()) for m, _ in shared(pattern, data)]
            assert got == want
        calls = sorted(_common.window_find(data, b"array(") + _common.window_find(data, b"tensor("))
        assert _common.call_starts(data) == calls
        for needle in (b"array(", b"tensor(", b"- "):
            want_pos = []
            for lo, hi in windows:
                pos = data.find(needle, lo, hi)
                while pos != -1:
                    want_pos.append(pos)
                    pos = data.find(needle, pos + 1, hi)
            assert _common.window_find(data, needle) == want_pos


def test_numpy_heads_match_per_window_finds() -> None:
    from detectors import numpy_repr

    vec = b", ".join(b"%.4f" % x for x in unit_vectors(1, 40)[0])
    data = (
        _log_sample(4, 500)
        + b"x = array([" + vec + b"], dtype=float32) tensor([" + vec + b"]) mytensor([" + vec + b"])\n"
        + b"array(" + b"1, " * 40 + b"\n_array([" + vec + b"])\n"
    )  # fmt: skip
    windows = _common.numeric_windows(data)
    starts = _common.window_find(data, b"array(") + _common.window_find(data, b"tensor(")
    want = []
    for pos in sorted(starts):
        head = numpy_repr._HEAD.match(data, pos)
        if head is not None and (pos == 0 or not (data[pos - 1 : pos].isalnum() or data[pos - 1] == 0x5F)):
            want.append(head.span())
    assert [h.span() for h in numpy_repr._heads(data, windows)] == want
    assert len(want) == 2


def test_json_numbers_agrees_with_orjson_and_refuses_what_it_cannot_hold() -> None:
    import threading

    rng = np.random.default_rng(11)
    arrays = [
        rng.standard_normal(int(rng.integers(1, 500))) * 10.0 ** rng.integers(-8, 8) for _ in range(200)
    ]
    texts = [orjson.dumps(a.tolist()) for a in arrays] + [str(a.tolist()).encode() for a in arrays]
    texts += [b"[1, 2.5, -0.0, 3e-7, 0]", b"[ \n 1.0 ,\n 2 \n]", b"[]"]
    for text in texts:
        got = _common.json_numbers(text)
        assert got is not None and got.dtype == np.float64
        assert got.tobytes() == np.asarray(orjson.loads(text), dtype=np.float64).tobytes(), text[:60]
    for bad in (b"[1.5,", b"[1e400, 2]", b"[12345678901234567890123, 1]", b"1.5", b'["a"]', b"[nan]"):
        assert _common.json_numbers(bad) is None, bad
    # One parser per thread: concurrent parses never see each other's documents.
    failures: list[bytes] = []

    def work(seed: int) -> None:
        local = np.random.default_rng(seed)
        for _ in range(300):
            a = local.standard_normal(64)
            if not np.array_equal(_common.json_numbers(orjson.dumps(a.tolist())), a):
                failures.append(b"x")

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_base64_plausibility_early_exit_decides_as_the_full_count() -> None:
    def full_share(values: np.ndarray) -> float:
        with np.errstate(invalid="ignore", over="ignore"):
            m = np.abs(values.astype(np.float64))
            return float((np.isfinite(m) & ((m == 0) | ((m > 1e-9) & (m < 1e3)))).mean())

    rng = np.random.default_rng(5)
    samples = [
        np.frombuffer(rng.bytes(n * 4), dtype=dt)
        for n in (16, 40, 64, 384, 1536)
        for dt in ("<f4", ">f4", "<f2")
    ]
    vec = rng.standard_normal(384).astype(np.float32)
    samples += [vec, vec.astype(">f4"), vec.astype(np.float16)]
    spiked = vec.copy()
    spiked[:10] = 1e6  # misfits at the head, but few enough overall to pass
    samples.append(spiked)
    for values in samples:
        share, _ = base64_floats._plausibility(values)
        assert (share >= base64_floats._PLAUSIBLE) == (full_share(values) >= base64_floats._PLAUSIBLE)
    assert base64_floats._plausibility(spiked)[0] >= base64_floats._PLAUSIBLE
