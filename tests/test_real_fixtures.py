"""Every vector listed in shared/fixtures/real/SOURCES.md is found, with its dimension, encoding and
count, in the real files (byte-exact copies of public recordings; nobody on this project wrote them).

The fixtures live beside the repository (``<repo>/../shared/fixtures/real``); ``VECLEAK_FIXTURES``
points elsewhere. In CI a copy of ``shared/`` sits beside the clone.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, alerts, run_cli, scan_paths

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real fixtures not found at {FIXTURES}")

# SOURCES.md row -> (file name fragment, {(dim, encoding): count}). Encodings are vecleak's names
# (README "Payload formats"); the dims and counts are SOURCES.md's "Vectors" column.
EXPECTED: dict[int, tuple[str, dict[tuple[int, str], int]]] = {
    1: ("test_embeddings__test_embeddings.yaml", {(1536, "base64-f32le"): 4}),
    2: ("test_azure_openai_embeddings.yaml", {(3072, "base64-f32le"): 2}),
    3: ("test_cohere_v2_embed_legacy.yaml", {(384, "json-array"): 6}),
    4: ("test_mistral_embeddings_legacy.yaml", {(1024, "json-array"): 1}),
    5: ("test_ollama_embeddings_legacy.yaml", {(4096, "json-array"): 1}),
    6: ("test_voyageai_embed_legacy.yaml", {(512, "base64-f32le"): 3}),
    7: (
        "test_pinecone_retrieval.yaml",
        {(1536, "base64-f32le"): 1, (1536, "json-array-pretty"): 1, (1536, "json-array"): 3},
    ),
    8: ("ruby-openai__spec__fixtures", {(1536, "json-array-pretty"): 1}),
    9: ("v6-spans__all-spans.json", {(1536, "json-in-string"): 2}),
    10: ("v6-spans__ai-embed-doEmbed.json", {(1536, "json-in-string"): 1}),
    11: ("test_embed_content_multiple_contents.yaml", {(3072, "json-array-pretty"): 2}),
    12: ("openinference-instrumentation-haystack", {(1536, "base64-f32le"): 2}),
    13: ("mrl_embeddings_batch.snap", {(128, "yaml-list"): 3}),
    14: ("sample_data_es_bulk.ndjson", {}),
    15: ("vector_type.out", {}),
    16: ("test_batch_embedding.yaml", {(1536, "json-array-pretty"): 3}),
}


def fixture(fragment: str) -> Path:
    matches = [p for p in FIXTURES.iterdir() if fragment in p.name]
    assert len(matches) == 1, (fragment, matches)
    return matches[0]


def line_of(path: Path, needle: bytes, nth: int = 0) -> int:
    lines = [i + 1 for i, text in enumerate(path.read_bytes().split(b"\n")) if needle in text]
    return lines[nth]


def test_every_fixture_is_covered():
    names = {p.name for p in FIXTURES.iterdir() if p.name != "SOURCES.md"}
    covered = {fixture(frag).name for frag, _ in EXPECTED.values()}
    assert names == covered


@pytest.mark.parametrize("row", sorted(EXPECTED))
def test_vectors_found_with_dim_encoding_and_count(row):
    fragment, expected = EXPECTED[row]
    findings, diagnostics = scan_paths(fixture(fragment))
    findings = [f for f in findings if f.kind == "embedding"]  # not the plaintext-beside-vector ones
    got = Counter((f.candidate.dim, f.candidate.encoding) for f in findings)
    assert dict(got) == expected
    assert all(not f.candidate.truncated for f in findings)
    assert [d for d in diagnostics if d.kind not in ("long-line",)] == []


@pytest.mark.parametrize("row", [r for r in sorted(EXPECTED) if r not in (5, 14, 15)])
def test_normalised_providers_give_unit_norm(row):
    findings, _ = scan_paths(fixture(EXPECTED[row][0]))
    norms = [float(np.linalg.norm(f.candidate.values)) for f in findings]
    assert norms and all(abs(n - 1.0) < 1e-3 for n in norms), norms


def test_ollama_legacy_vector_is_unnormalised_and_still_found():
    (finding,), _ = scan_paths(fixture(EXPECTED[5][0]))
    assert float(np.linalg.norm(finding.candidate.values)) == pytest.approx(143.65, abs=0.01)
    assert finding.candidate.precision == "f64-widened"


def test_precision_signatures():
    (mistral,), _ = scan_paths(fixture(EXPECTED[4][0]))
    assert mistral.candidate.precision == "fp16"
    cohere, _ = scan_paths(fixture(EXPECTED[3][0]))
    assert {f.candidate.precision for f in cohere} == {"fp16"}
    pinecone, _ = scan_paths(fixture(EXPECTED[7][0]))
    query = [f for f in pinecone if f.candidate.encoding == "json-array-pretty"]
    assert [f.candidate.precision for f in query] == ["f64-widened"]
    assert [f.candidate.key for f in query] == ["vector"]


def test_toy_and_tiny_vectors_raise_nothing():
    for row in (14, 15):
        findings, _ = scan_paths(fixture(EXPECTED[row][0]))
        assert findings == []


def test_line_numbers_point_at_the_payload():
    ruby = fixture(EXPECTED[8][0])
    (finding,), _ = scan_paths(ruby)
    assert finding.line == line_of(ruby, b'"embedding": [')
    assert finding.offset == ruby.read_bytes().index(b"[", ruby.read_bytes().index(b'"embedding": ['))

    spans = fixture(EXPECTED[9][0])
    findings, _ = scan_paths(spans)
    findings = [f for f in findings if f.kind == "embedding"]
    assert sorted(f.line for f in findings) == [
        line_of(spans, b'"ai.embeddings": [') + 1,
        line_of(spans, b'"ai.embedding": "['),
    ]
    assert {f.candidate.json_path for f in findings} == {"ai.embeddings[0]", "ai.embedding"}

    # A vector inside a gzipped !!binary body is located at the !!binary scalar.
    openai = fixture(EXPECTED[1][0])
    findings, _ = scan_paths(openai)
    assert sorted(f.line for f in findings) == [line_of(openai, b"!!binary", n) for n in range(4)]

    tei = fixture(EXPECTED[13][0])
    findings, _ = scan_paths(tei)
    assert sorted(f.line for f in findings) == [line_of(tei, b"- - ", n) for n in range(3)]


def test_the_same_vector_twice_hashes_the_same():
    findings, _ = scan_paths(fixture(EXPECTED[9][0]))
    assert len({f.sha256 for f in findings}) == 1
    tei, _ = scan_paths(fixture(EXPECTED[13][0]))
    assert len({f.sha256 for f in tei}) == 1
    litellm, _ = scan_paths(fixture(EXPECTED[16][0]))
    assert len({f.sha256 for f in litellm}) == 3


def test_cli_scan_of_the_fixture_directory():
    """``python -m scanner scan FIXTUREDIR --format jsonl`` reports the same vectors as the library.

    The CLI folds a vector repeated in one file into one finding (fixture 1 holds the same response
    twice), so it is compared by distinct (dim, encoding, sha256) per file.
    """
    res = run_cli("scan", str(FIXTURES), "--format", "jsonl")
    assert res.returncode == 3, res.stderr  # findings present
    cli: dict[str, set[tuple[int, str, str]]] = defaultdict(set)
    for doc in alerts(res.stdout):
        vector = doc["vecleak"]["vector"]
        cli[doc["log"]["file"]["path"]].add((vector["dim"], vector["encoding"], vector["sha256"]))
        assert "values" not in vector  # never the raw vector
    for fragment, expected in EXPECTED.values():
        path = fixture(fragment)
        findings, _ = scan_paths(path)
        assert cli.get(str(path), set()) == {
            (f.candidate.dim, f.candidate.encoding, f.sha256) for f in findings
        }, fragment
        assert {(d, e) for d, e, _ in cli.get(str(path), set())} == set(expected), fragment
    assert b"pipeline_error" not in res.stdout
