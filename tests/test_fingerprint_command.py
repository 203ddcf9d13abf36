"""``vecleak fingerprint FILE`` end to end on real fixtures, through register()/run()."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from fingerprint_support import FIXTURES, MINILM, needs_fixtures

from scanner.commands import fingerprint as command

PINECONE = "traceloop__openllmetry__packages__opentelemetry-instrumentation-pinecone__tests__cassettes__test_query__test_pinecone_retrieval.yaml"
TEI = "huggingface__text-embeddings-inference__router__tests__snapshots__test_http_embed__mrl_embeddings_batch.snap"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vecleak")
    command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fingerprint", *argv])
    return args.func(args)


@needs_fixtures
def test_prints_candidates_with_reasons_and_pooled_answer(capsys):
    assert run(str(FIXTURES / PINECONE)) == 0
    out = capsys.readouterr().out
    assert out.count("openai/text-embedding-ada-002 (100%)") >= 4
    assert "cosine" in out and "pooled (one source, one model): openai/text-embedding-ada-002" in out
    assert "-0.02775253914296627" not in out and "0.0277525" not in out  # never the raw values


@needs_fixtures
def test_json_output_marks_truncation(capsys):
    assert run("--json", str(FIXTURES / TEI)) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["dim"] == 128 and lines[0]["candidates"][0]["model"] == MINILM
    assert lines[0]["candidates"][0]["truncated_from"] == 384
    assert lines[-1]["pooled"][0]["model"] == MINILM


def test_npy_input_and_unknown_explanation(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 768)).astype(np.float32)
    np.save(tmp_path / "v.npy", x / np.linalg.norm(x, axis=1, keepdims=True))
    assert run(str(tmp_path / "v.npy")) == 0
    out = capsys.readouterr().out
    assert (
        out.count("npy, sha256") == 3
        and out.count(": unknown\n") == 4
        and "the size alone matches" in out
        and "pooled (one source, one model): unknown" in out
    )


def test_unreadable_and_empty_inputs(tmp_path, capsys):
    assert run(str(tmp_path / "missing.log")) == 1
    (tmp_path / "empty.log").write_bytes(b"no vectors here\n[1, 2, 3]\n")
    assert run(str(tmp_path / "empty.log")) == 0
    assert "0 vector(s)" in capsys.readouterr().out
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    assert run(str(tmp_path / "bad.npy")) == 0
    assert "not a readable .npy" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--brief", "--no-context-hints"])
@needs_fixtures
def test_flags(flag, capsys):
    assert run(flag, str(FIXTURES / PINECONE)) == 0
    out = capsys.readouterr().out
    assert "openai/text-embedding-ada-002" in out
    if flag == "--brief":
        assert "    - " not in out
    else:
        assert "seen next to the vector" not in out


@needs_fixtures
def test_through_the_real_cli(tmp_path):
    from conftest import run_cli

    proc = run_cli("fingerprint", "--brief", str(FIXTURES / TEI))
    assert proc.returncode == 0, proc.stderr
    assert b"sentence-transformers/all-MiniLM-L6-v2" in proc.stdout and b"truncated from 384" in proc.stdout


@needs_fixtures
def test_pipeline_findings_carry_the_fingerprint():
    from scanner.model import Record, SourceRef
    from scanner.pipeline import Pipeline

    path = FIXTURES / PINECONE
    result = Pipeline().scan(Record(path.read_bytes(), SourceRef("file", str(path), str(path))))
    assert result.findings
    assert all(
        f.model is not None and f.model.model == "openai/text-embedding-ada-002" for f in result.findings
    )


def test_summarised_print_is_named_only_by_its_context():
    from scanner.fingerprint import Fingerprinter
    from scanner.model import Candidate

    fp = Fingerprinter()
    part = np.array([0.1, -0.2, 0.3, 0.1, -0.05, 0.02], dtype=np.float32)
    bare = Candidate(values=part, encoding="numpy-repr", start=0, end=1, truncated=True, declared_dim=1536)
    named = Candidate(
        values=part,
        encoding="numpy-repr",
        start=0,
        end=1,
        truncated=True,
        declared_dim=1536,
        hints={"model": "text-embedding-3-small"},
    )
    out = fp.guess_batch([bare, named])
    assert out[0] == [] and out[1][0].model == "openai/text-embedding-3-small"
    assert fp.guess_batch([]) == []


def test_arrays_the_classifier_rejects_are_counted_not_fingerprinted(tmp_path, capsys):
    """A latency histogram and a softmax output are numbers, not embeddings: no model guess for them."""
    rng = np.random.default_rng(3)
    logits = rng.standard_normal(128)
    softmax = np.exp(logits) / np.exp(logits).sum()
    histogram = rng.integers(0, 500, 64)
    v = rng.standard_normal(384)
    v /= np.linalg.norm(v)
    log = "\n".join(
        [
            "2026-11-26T09:03:20.400Z INFO  [api] GET /v1/orders/1200 200 39ms",
            f"2026-11-26T09:03:20.400Z INFO  [metrics] latency_histogram={[int(x) for x in histogram]}",
            f"2026-11-26T09:03:30.770Z INFO  [ranker] softmax={[float(x) for x in softmax]}",
            f"2026-11-26T09:03:31.000Z DEBUG [embed] vector={[float(x) for x in v]}",
        ]
    )
    (tmp_path / "app.log").write_text(log + "\n")
    assert run("--brief", str(tmp_path / "app.log")) == 0
    out = capsys.readouterr().out
    assert "line 4: 384 dims" in out and "1 vector(s)" in out
    assert "64 dims" not in out and "128 dims" not in out and "llama3" not in out
    assert "2 numeric array(s) judged not embeddings" in out
    assert run("--json", str(tmp_path / "app.log")) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["dim"] for x in lines[:-1]] == [384] and lines[-1]["not_embeddings"] == 2
