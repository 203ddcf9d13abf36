"""Noise control and routing: the inline ignore marker, per-rule outputs."""

from __future__ import annotations

from conftest import alerts, run_cli, unit_vectors
from sinkhelpers import Receiver

from scanner.engine import Engine
from scanner.model import Record, SourceRef
from scanner.pipeline import Pipeline
from scanner.rules import load_rules


def test_ignore_marker_on_line_and_line_before(tmp_path):
    v = unit_vectors(3, 384, seed=21)
    (tmp_path / "app.log").write_text(
        f"DEBUG a={v[0].tolist()}  # vecleak:ignore test fixture\n"
        "# vecleak:ignore next line is a known sample\n"
        f"DEBUG b={v[1].tolist()}\n"
        "INFO unrelated\n"
        f"DEBUG c={v[2].tolist()}\n"
    )
    res = run_cli("scan", str(tmp_path), "--format", "jsonl")
    lines = {d["vecleak"]["location"]["line"] for d in alerts(res.stdout)}
    assert lines == {5}


def test_ignore_marker_counted_in_summary():
    v = unit_vectors(1, 384, seed=22)[0]
    engine = Engine(Pipeline(), load_rules(), [])
    engine.feed(Record(f"x={v.tolist()} vecleak:ignore\n".encode(), SourceRef("file", "a", "a")))
    assert engine.stats.findings == 0 and engine.stats.ignored == 1
    assert engine.close()["ignored"] == 1


def test_rule_outputs_route_to_named_sinks(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "id: t.to-webhook\ntitle: to webhook\nlevel: high\noutputs: [webhook]\nmatch: {dims: {min: 64}}\n"
        "---\nid: t.to-jsonl\ntitle: to file\nlevel: low\noutputs: [jsonl]\nmatch: {dims: {min: 64}}\n"
    )
    v = unit_vectors(1, 384, seed=23)[0]
    (tmp_path / "app.log").write_text(f"e={v.tolist()}\n")
    rx = Receiver()
    try:
        env = {"VECLEAK_WEBHOOK_SECRET": "k", "VECLEAK_SPOOL_DIR": str(tmp_path / "spool")}
        out = tmp_path / "alerts.jsonl"
        res = run_cli(
            "scan", str(tmp_path / "app.log"), "--rules", str(rules), "--format", "jsonl",
            "--output", f"webhook:{rx.url}", "--output", f"jsonl:{out}", env=env,
        )  # fmt: skip
        assert {d["rule"]["id"] for d in alerts(res.stdout)} == {"t.to-webhook", "t.to-jsonl"}
        assert [h["X-Vecleak-Event-Id"] for _, h, _ in rx.requests] == [
            d["event"]["id"] for d in alerts(res.stdout) if d["rule"]["id"] == "t.to-webhook"
        ]
        assert {d["rule"]["id"] for d in alerts(out.read_bytes())} == {"t.to-jsonl"}
    finally:
        rx.stop()
