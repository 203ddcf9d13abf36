"""``vecleak fingerprint FILE`` end to end on real fixtures, through register()/run()."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from scanner.commands import fingerprint as command

from .fingerprint_support import FIXTURES, MINILM, needs_fixtures

PINECONE = "traceloop__openllmetry__packages__opentelemetry-instrumentation-pinecone__tests__cassettes__test_query__test_pinecone_retrieval.yaml"
TEI = "huggingface__text-embeddings-inference__router__tests__snapshots__test_http_embed__mrl_embeddings_batch.snap"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vecleak")
    command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fingerprint", *argv])
    return args.run(args)


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
    assert run(str(tmp_path / "missing.log")) == 2
    (tmp_path / "empty.log").write_bytes(b"no vectors here\n[1, 2, 3]\n")
    assert run(str(tmp_path / "empty.log")) == 1
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    assert run(str(tmp_path / "bad.npy")) == 1
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
