"""Per-format detector tests with synthetic MiniLM-like vectors, plus the classifier's decoys.

Every payload form of formats.md §0 is written the way the real library writes it (json.dumps,
numpy's repr/str, struct byte orders, OTLP JSON shapes), then scanned through the real pipeline.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from conftest import unit_vectors

from detectors.base64_floats import decode
from scanner.model import Record, SourceRef, vector_sha256
from scanner.pipeline import Pipeline, ScanResult
from scanner.sources.files import open_text_stream

V384 = unit_vectors(1, 384, seed=7)[0]
V1536 = unit_vectors(1, 1536, seed=8)[0]


def scan_bytes(data: bytes) -> ScanResult:
    """Scan ``data`` as a file is scanned: cut into records by the real block reader."""
    pipeline, total = Pipeline(), ScanResult()
    for item in open_text_stream(data):
        if isinstance(item, Record):
            result = pipeline.scan(item)
            total.findings += result.findings
            total.diagnostics += result.diagnostics
            total.rejected += result.rejected
        else:
            total.diagnostics.append(item)
    return total


def scan_record(data: bytes) -> ScanResult:
    """Scan ``data`` as one record."""
    return Pipeline().scan(Record(data, SourceRef("memory", "t", "memory:t")))


def only(result, encoding: str | None = None):
    assert len(result.findings) == 1, [(f.candidate.encoding, f.candidate.dim) for f in result.findings]
    finding = result.findings[0]
    if encoding is not None:
        assert finding.candidate.encoding == encoding
    return finding


def b64(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.asarray(values).astype(dtype).tobytes()).decode()


def bf16_b64(values: np.ndarray) -> str:
    halves = (np.asarray(values, dtype=">f4").view(">u4") >> 16).astype(">u2")
    return base64.b64encode(halves.tobytes()).decode()


# ---- numeric lists ---------------------------------------------------------------------------------


def test_json_array_compact_and_spaced():
    line = json.dumps({"model": "m", "embedding": [float(x) for x in V384]}).encode() + b"\n"
    f = only(scan_bytes(line), "json-array")
    assert f.candidate.dim == 384
    assert f.candidate.key == "embedding"
    assert f.line == 1 and f.offset == line.index(b"[")
    np.testing.assert_array_equal(f.candidate.values, V384)
    assert f.candidate.values.dtype == np.float32


def test_pretty_printed_array_one_number_per_line_reports_the_opening_line():
    doc = json.dumps({"data": [{"object": "embedding", "embedding": [float(x) for x in V384]}]}, indent=2)
    f = only(scan_bytes(b"header\n" + doc.encode() + b"\n"), "json-array-pretty")
    opening = 1 + (b"header\n" + doc.encode()).split(b"\n").index(b'      "embedding": [')
    assert f.line == opening
    assert f.candidate.dim == 384


def test_float32_widened_to_float64_digits_and_fp16_exact_values():
    widened = [float(x) for x in V384]  # what .tolist() prints: 17 significant digits
    f = only(scan_record(json.dumps({"vector": widened}).encode()))
    assert f.candidate.precision == "f64-widened"
    fp16 = V384.astype(np.float16).astype(np.float32)
    f = only(scan_record(json.dumps({"embedding": [float(x) for x in fp16]}).encode()))
    assert f.candidate.precision == "fp16"
    shortest = "[" + ",".join(np.format_float_positional(x, unique=True) for x in V384) + "]"
    f = only(scan_record(b'{"embedding": ' + shortest.encode() + b"}"))
    assert f.candidate.precision == "f32"


def test_python_list_repr_and_numpy2_scalar_list():
    f = only(scan_record(f"emb = {[float(x) for x in V384]}\n".encode()), "python-list")
    assert f.candidate.dim == 384
    f = only(scan_record(f"emb = {list(V384[:64])}\n".encode()), "python-list")
    assert f.candidate.dim == 64
    np.testing.assert_array_equal(f.candidate.values, V384[:64])


def test_pgvector_text_and_halfvec_and_sparsevec():
    text = "[" + ",".join(np.format_float_positional(x, unique=True) for x in V384) + "]"
    f = only(scan_record(f"INSERT INTO items (embedding) VALUES ('{text}');\n".encode()), "pgvector")
    assert f.candidate.dim == 384
    f = only(scan_record(f"SELECT '{text}'::halfvec;\n".encode()), "pgvector-halfvec")
    sparse = "{" + ",".join(f"{i + 1}:{x:.6f}" for i, x in enumerate(V384)) + "}/384"
    f = only(scan_record(f"SELECT '{sparse}'::sparsevec;\n".encode()), "pgvector-sparsevec")
    assert f.candidate.dim == 384
    np.testing.assert_allclose(f.candidate.values, V384, atol=1e-6)


def test_json_inside_json_strings_single_and_double_escaped():
    inner = json.dumps([float(x) for x in V384])
    f = only(scan_record(json.dumps({"ai.embedding": inner}).encode()), "json-in-string")
    assert f.candidate.key == "ai.embedding"
    escaped = json.dumps({"output.value": json.dumps({"embedding": [float(x) for x in V384]})})
    f = only(scan_record(escaped.encode()))
    assert f.candidate.key == "embedding"
    twice = json.dumps(
        {"msg": json.dumps({"body": json.dumps({"embedding": [float(x) for x in V384]}, indent=2)})}
    )
    f = only(scan_record(twice.encode()), "json-array-pretty")
    assert f.candidate.key == "embedding"
    np.testing.assert_array_equal(f.candidate.values, V384)


def test_batch_of_rows_each_reported_with_the_key():
    rows = unit_vectors(3, 384, seed=3)
    body = json.dumps({"embeddings": {"float": [[float(x) for x in r] for r in rows]}}).encode()
    result = scan_record(body)
    assert len(result.findings) == 3
    assert {f.candidate.key for f in result.findings} == {"float"}
    for f, row in zip(sorted(result.findings, key=lambda f: f.offset), rows, strict=True):
        np.testing.assert_array_equal(f.candidate.values, row)


def test_cut_off_array_is_truncated_and_counted():
    text = json.dumps({"embedding": [float(x) for x in V384]})
    result = scan_bytes(text[: len(text) // 2].encode() + b"\n")
    f = only(result)
    assert f.candidate.truncated
    assert "truncated-array" in [d.kind for d in result.diagnostics]


# ---- base64 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("base64-f32le", lambda v: b64(v, "<f4")),
        ("base64-f32be", lambda v: b64(v, ">f4")),
        ("base64-f16le", lambda v: b64(v, "<f2")),
        ("base64-bf16be", bf16_b64),
    ],
)
@pytest.mark.parametrize("dim", [64, 384, 1536, 3072])
def test_base64_byte_order_and_width_are_decided_right(encoding, encode, dim):
    for seed in range(5):
        v = unit_vectors(1, dim, seed=seed * 31 + dim)[0]
        if seed == 1:
            v = v * 143.6  # an unnormalised vector (Ollama legacy), formats.md §2
        if seed == 2:
            v[3] = -0.6  # the outlier dimension real models have
        f = only(scan_record(json.dumps({"embedding": encode(v)}).encode()), encoding)
        assert f.candidate.dim == dim
        assert not f.candidate.truncated
        if "16" in encoding:
            np.testing.assert_allclose(f.candidate.values, v, rtol=1e-2, atol=1e-5)
        else:
            np.testing.assert_array_equal(f.candidate.values, v)


def test_fp16_exact_float32_base64_stays_float32():
    v = V1536.astype(np.float16).astype(np.float32)
    assert only(scan_record(b64(v, "<f4").encode())).candidate.encoding == "base64-f32le"
    assert only(scan_record(b64(v, ">f4").encode())).candidate.encoding == "base64-f32be"


def test_elasticsearch_big_endian_examples():
    encoding, values, leftover = decode(b"PwAAAEEgAABAwAAA", min_dim=1)
    assert encoding == "base64-f32be" and not leftover
    np.testing.assert_array_equal(values, [0.5, 10, 6])
    encoding, values, _ = decode(b"P8AAAEAAAADAUAAA", min_dim=1)
    assert encoding == "base64-f32be"
    np.testing.assert_array_equal(values, [1.5, 2.0, -3.25])


def test_base64_inside_escaped_json():
    body = json.dumps({"body": json.dumps({"data": [{"embedding": b64(V1536, "<f4")}]})})
    f = only(scan_record(body.encode()), "base64-f32le")
    assert f.candidate.key == "embedding" and f.candidate.dim == 1536


def test_cut_off_base64_is_truncated_and_counted():
    text = json.dumps({"embedding": b64(V1536, "<f4")})
    result = scan_bytes(text[:3001].encode() + b"\n")
    f = only(result, "base64-f32le")
    assert f.candidate.truncated
    assert f.candidate.dim < 1536
    assert "truncated-base64" in [d.kind for d in result.diagnostics]


def test_same_vector_hashes_identically_in_every_encoding():
    v = V384
    forms = [
        json.dumps({"embedding": [float(x) for x in v]}),
        json.dumps({"embedding": b64(v, "<f4")}),
        json.dumps({"embedding": b64(v, ">f4")}),
        json.dumps({"ai.embedding": json.dumps([float(x) for x in v])}),
        f"vec = {repr(v)}",
        "embedding:\n" + "".join(f"  - {float(x)!r}\n" for x in v),
        json.dumps(_otlp_span(v)),
    ]
    hashes = set()
    for text in forms:
        f = only(scan_record(text.encode() + b"\n"))
        hashes.add(f.sha256)
    assert hashes == {vector_sha256(v)}


# ---- numpy / torch ---------------------------------------------------------------------------------


def test_numpy_repr_full_and_multiline():
    f = only(scan_record(f"INFO query vector: {V384!r}\n".encode()), "numpy-repr")
    assert f.candidate.dim == 384 and not f.candidate.truncated
    np.testing.assert_allclose(f.candidate.values, V384, atol=5e-9)
    assert f.candidate.hints.get("dtype") == "float32"


def test_numpy_summary_is_truncated_with_declared_dim():
    text = f"INFO query vector: {V1536!r}\n"
    assert "..." in text and "shape=(1536,)" in text
    f = only(scan_record(text.encode()), "numpy-summary")
    assert f.candidate.truncated
    assert f.candidate.dim == 1536
    assert f.candidate.values.shape == (6,)
    np.testing.assert_allclose(f.candidate.values[:3], V1536[:3], atol=5e-9)


def test_numpy_str_without_commas_full_and_summarised():
    f = only(scan_record(f"v={V384}\n".encode()), "numpy-str")
    assert f.candidate.dim == 384 and not f.candidate.truncated
    f = only(scan_record(f"v={V1536}\n".encode()), "numpy-summary")
    assert f.candidate.truncated


def test_numpy_2d_repr_reports_each_row():
    rows = unit_vectors(2, 384, seed=11)
    result = scan_record(f"batch = {rows!r}\n".encode())
    assert [f.candidate.encoding for f in result.findings] == ["numpy-repr", "numpy-repr"]
    summary = scan_record(f"batch = {unit_vectors(2, 1536, seed=12)!r}\n".encode())
    assert len(summary.findings) == 2
    assert all(f.candidate.truncated and f.candidate.dim == 1536 for f in summary.findings)
    assert {f.candidate.encoding for f in summary.findings} == {"numpy-summary"}


def test_torch_repr_summary():
    text = "emb=tensor([ 0.0032, -0.0034,  0.0165,  ..., -0.0111,  0.0459, -0.0390], dtype=torch.float16)\n"
    f = only(scan_record(text.encode()), "torch-summary")
    assert f.candidate.truncated and f.candidate.hints["dtype"] == "float16"
    full = "emb=tensor([" + ", ".join(f"{x:.4f}" for x in V384) + "])\n"
    f = only(scan_record(full.encode()), "torch-repr")
    assert f.candidate.dim == 384 and not f.candidate.truncated


# ---- quantised, OTLP, YAML -------------------------------------------------------------------------


def _int8(v: np.ndarray) -> list[int]:
    return np.round(v / np.abs(v).max() * 127).astype(int).tolist()


def test_quantised_int_lists_only_under_embedding_keys():
    rows = unit_vectors(2, 384, seed=5)
    body = {
        "response_type": "embeddings_by_type",
        "embeddings": {
            "int8": [_int8(r) for r in rows],
            "uint8": [[x + 128 for x in _int8(r)] for r in rows],
            "ubinary": [np.packbits(r > 0).tolist() for r in rows],
            "binary": [(np.packbits(r > 0).astype(np.int16) - 128).tolist() for r in rows],
        },
    }
    result = scan_record(json.dumps(body).encode())
    got = sorted((f.candidate.encoding, f.candidate.dim) for f in result.findings)
    assert got == sorted(
        [("int8", 384)] * 2 + [("uint8", 384)] * 2 + [("ubinary", 384)] * 2 + [("binary", 384)] * 2
    )
    es_byte = only(scan_record(json.dumps({"my_vector": _int8(V384)}).encode()), "int8")
    assert es_byte.candidate.key == "my_vector"
    # The same integers under a key that does not say embedding are a histogram.
    assert scan_record(json.dumps({"counts": _int8(V384)}).encode()).findings == []


def _otlp_span(v: np.ndarray) -> dict:
    attr = {
        "key": "embedding.embeddings.0.embedding.vector",
        "value": {"arrayValue": {"values": [{"doubleValue": float(x)} for x in v]}},
    }
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "attributes": [attr]}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def test_otlp_array_attribute_compact_pretty_and_escaped():
    for text in (json.dumps(_otlp_span(V384)), json.dumps(_otlp_span(V384), indent=2)):
        f = only(scan_record(text.encode()), "otlp-array")
        assert f.candidate.key == "embedding.embeddings.0.embedding.vector"
        assert f.candidate.json_path == "embedding.embeddings.0.embedding.vector"
        np.testing.assert_array_equal(f.candidate.values, V384)
    f = only(scan_record(json.dumps({"line": json.dumps(_otlp_span(V384))}).encode()), "otlp-array")
    assert f.candidate.dim == 384


def test_otlp_log_body_kvlist_content():
    content = {
        "key": "content",
        "value": {"arrayValue": {"values": [{"doubleValue": float(x)} for x in V384]}},
    }
    body = {
        "kvlistValue": {
            "values": [
                {"key": "index", "value": {"intValue": "0"}},
                {"key": "message", "value": {"kvlistValue": {"values": [content]}}},
            ]
        }
    }
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"eventName": "gen_ai.choice", "body": body}]}]}]}
    f = only(scan_record(json.dumps(doc).encode()), "otlp-array")
    assert f.candidate.key == "content"


def test_yaml_block_lists_flat_and_nested():
    rows = unit_vectors(3, 128, seed=13)
    nested = "---\nsource: t\n---\n" + "".join(
        "".join(("- - " if i == 0 else "  - ") + f"{float(x)!r}\n" for i, x in enumerate(r)) for r in rows
    )
    result = scan_bytes(nested.encode())
    assert [(f.candidate.encoding, f.candidate.dim) for f in result.findings] == [("yaml-list", 128)] * 3
    assert [f.line for f in result.findings] == [4, 132, 260]
    flat = "embedding:\n" + "".join(f"  - {float(x)!r}\n" for x in V384)
    f = only(scan_bytes(flat.encode()), "yaml-list")
    assert f.candidate.key == "embedding" and f.line == 2


# ---- classifier: decoys are rejected, vectors are not -------------------------------------------------


def _rejected(values, key: str = "values") -> bool:
    result = scan_record(json.dumps({key: list(values)}).encode())
    return result.findings == [] and result.rejected >= 1


def test_random_unit_vector_is_still_reported():
    f = only(scan_record(json.dumps({"x": [float(x) for x in unit_vectors(1, 768, seed=99)[0]]}).encode()))
    assert f.score >= 0.5
    assert "unit norm" in f.reasons


def test_decoys_are_rejected():
    rng = np.random.default_rng(0)
    histogram = rng.poisson(20, 384).tolist()
    assert _rejected(histogram)
    assert _rejected(histogram, key="embedding")  # not int8: no negatives
    logits = rng.standard_normal(384)
    probs = np.exp(logits) / np.exp(logits).sum()
    assert _rejected(float(x) for x in probs.astype(np.float32))
    assert _rejected(float(x) for x in np.log(probs))  # log-probabilities: all negative
    pixels = (np.clip(np.cumsum(rng.normal(0, 4, 384)) + 128, 0, 255)).astype(int).tolist()
    assert _rejected(pixels)
    assert _rejected(pixels, key="embedding")
    assert _rejected(float(x) / 255 for x in pixels)  # normalised pixel row
    timestamps = (1_714_000_000 + np.cumsum(rng.integers(1, 60, 384))).tolist()
    assert _rejected(timestamps)
    assert _rejected(float(x) for x in 1_714_000_000.5 + np.cumsum(rng.random(384)))
    lonlat = np.column_stack([-122.4 + rng.normal(0, 0.01, 192), 37.77 + rng.normal(0, 0.01, 192)]).ravel()
    assert _rejected(float(x) for x in lonlat)  # interleaved coordinates
    xyz = np.column_stack([rng.normal(5, 0.1, 128), rng.normal(-3, 0.1, 128), rng.normal(0.5, 0.1, 128)])
    assert _rejected(float(x) for x in xyz.ravel())
    sine = np.sin(np.linspace(0, 8 * np.pi, 384)) * 0.05
    assert _rejected(float(x) for x in sine)  # a smooth signal, not independent dimensions
    assert _rejected([0.0] * 384)
    assert _rejected([0.5] * 384)


def test_random_base64_is_not_a_vector():
    rng = np.random.default_rng(1)
    for n in (256, 1536, 6144, 12288):
        blob = base64.b64encode(rng.bytes(n)).decode()
        assert scan_record(json.dumps({"embedding": blob}).encode()).findings == []
    # Base64 of text (a PEM body, a JWT) is not a vector either.
    text = base64.b64encode(b"The quick brown fox jumps over the lazy dog. " * 60).decode()
    assert scan_record(json.dumps({"data": text}).encode()).findings == []


def test_summaries_of_non_embeddings_are_rejected():
    ints = "idx = array([   0,    1,    2, ..., 1533, 1534, 1535], shape=(1536,))\n"
    assert scan_record(ints.encode()).findings == []
    points = (
        "pts = array([[ 0.1, 0.2],\n       [ 0.3, 0.4],\n       ...,\n       [ 0.5, 0.6]], shape=(5000, 2))\n"
    )
    assert scan_record(points.encode()).findings == []
