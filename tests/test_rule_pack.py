"""Each rule of the shipped pack fires on a real-format input, and only the rule meant for it.

Inputs mimic what reaches logs in production: a Python list printed by an app, the OpenAI SDK's
base64 response body, Cohere's int8 ``embeddings_by_type``, a numpy repr with ``...``.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from conftest import alerts, run_cli, unit_vectors

from scanner.engine import Engine
from scanner.model import Record, SourceRef
from scanner.pipeline import Pipeline
from scanner.rules import load_rules


def _fired(tmp_path, text: str) -> dict[str, list[dict]]:
    (tmp_path / "app.log").write_text(text)
    res = run_cli("scan", str(tmp_path / "app.log"), "--format", "jsonl")
    out: dict[str, list[dict]] = {}
    for doc in alerts(res.stdout):
        out.setdefault(doc["rule"]["id"], []).append(doc)
    return out


def test_log_embedding(tmp_path):
    v = unit_vectors(1, 768, seed=31)[0]
    fired = _fired(tmp_path, f"2026-11-26 12:00:01 DEBUG retriever: query_embedding={v.tolist()}\n")
    assert "vecleak.log.embedding" in fired
    assert fired["vecleak.log.embedding"][0]["vecleak"]["vector"]["dim"] == 768


def test_log_base64_embedding_openai_response_body(tmp_path):
    v = unit_vectors(1, 1536, seed=32)[0]
    body = {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": 0,
                "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode(),
            }
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
    fired = _fired(tmp_path, "DEBUG httpx response body: " + json.dumps(body) + "\n")
    assert "vecleak.log.base64-embedding" in fired
    assert "vecleak.log.embedding" not in fired
    assert fired["vecleak.log.base64-embedding"][0]["vecleak"]["vector"]["encoding"].startswith("base64-")


def test_log_quantized_embedding_cohere_int8(tmp_path):
    v = unit_vectors(1, 1024, seed=33)[0]
    q = np.clip(np.round(v / np.abs(v).max() * 127), -128, 127).astype(int).tolist()
    body = {
        "id": "x",
        "embeddings": {"int8": [q]},
        "texts": ["redacted"],
        "response_type": "embeddings_by_type",
    }
    fired = _fired(tmp_path, "INFO cohere embed response " + json.dumps(body) + "\n")
    assert "vecleak.log.quantized-embedding" in fired, fired.keys()
    assert "vecleak.log.embedding" not in fired


def test_log_truncated_numpy_print(tmp_path):
    v = unit_vectors(1, 384, seed=34)[0]
    with np.printoptions(threshold=10, edgeitems=3, precision=8):
        text = repr(v)
    assert "..." in text
    fired = _fired(tmp_path, f"DEBUG emb = {text}\n")
    assert "vecleak.log.truncated-print" in fired, fired.keys()
    assert fired["vecleak.log.truncated-print"][0]["vecleak"]["vector"]["truncated"] is True
    assert "vecleak.log.embedding" not in fired


def test_model_unknown(tmp_path):
    v = unit_vectors(1, 384, seed=35)[0]  # a unit vector from no catalogued model
    fired = _fired(tmp_path, f"emb={v.tolist()}\n")
    assert "vecleak.model.unknown" in fired
    assert fired["vecleak.model.unknown"][0]["vecleak"]["fingerprint"]["model"] in (None, "unknown")


@pytest.mark.parametrize("pii,fires", [("email", True), (None, False)])
def test_inversion_pii(pii, fires):
    """The rule reads ``Finding.inversion`` as the inversion stage leaves it (masked text + PII spans).

    The enrich hook stands in for the inversion model here: this tests the rule, not the inverter.
    """
    v = unit_vectors(1, 384, seed=36)[0]

    def enrich(findings):
        for f in findings:
            spans = [{"type": pii, "start": 8, "end": 25}] if pii else []
            f.inversion = {
                "text": "contact [EMAIL] today",
                "text_clear": "contact a@b.example today",
                "pii": spans,
            }

    engine = Engine(Pipeline(), load_rules(), [], enrich=enrich)
    engine.feed(Record(f"e={v.tolist()}\n".encode(), SourceRef("file", "a.log", "a.log")))
    assert ("vecleak.inversion.pii" in {a.rule_id for a in engine.sent}) is fires


def test_trace_rules_on_real_vercel_spans(fixtures_dir):
    """The real Vercel AI SDK capture: vectors in span attributes, with the embedded text beside them."""
    spans = (
        fixtures_dir
        / "Arize-ai__openinference__js__packages__openinference-vercel__test____fixtures____v6-spans__all-spans.json"
    )
    res = run_cli("scan", str(spans), "--format", "jsonl")
    fired: dict[str, set[str]] = {}
    for doc in alerts(res.stdout):
        fired.setdefault(doc["rule"]["id"], set()).add(doc["vecleak"]["span"]["name"])
    assert fired["vecleak.trace.span-embedding"] == {"ai.embed", "ai.embed.doEmbed"}
    assert fired["vecleak.trace.plaintext-beside-vector"] == {"ai.embed", "ai.embed.doEmbed"}
    assert "vecleak.log.embedding" not in fired  # a trace file is telemetry, not an application log


def test_every_shipped_rule_has_a_test():
    tested = {
        "vecleak.log.embedding",
        "vecleak.log.base64-embedding",
        "vecleak.log.quantized-embedding",
        "vecleak.log.truncated-print",
        "vecleak.model.unknown",
        "vecleak.inversion.pii",
        "vecleak.trace.span-embedding",
        "vecleak.trace.plaintext-beside-vector",
    }
    shipped = {r.id for r in load_rules().rules}
    assert shipped <= tested, f"rules without a test: {sorted(shipped - tested)}"
