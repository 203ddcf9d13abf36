"""Noise control and routing: ignore marker, per-rule outputs, grouping windows, rate limits."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from conftest import alerts, run_cli, unit_vectors
from sinkhelpers import Receiver, make_alerts

from scanner.engine import Engine
from scanner.model import Record, SourceRef
from scanner.noise import NoiseControl, parse_duration
from scanner.pipeline import Pipeline
from scanner.rules import load_rules
from scanner.sinks import open_sink
from scanner.sources.files import FileSource


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


# --- grouping and rate limits (injectable clock, no sleeps) ----------------------------------------


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _moved(alert, source: str):
    """The same finding seen in another source: another group key."""
    ref = SourceRef("file", source, f"file:{source}")
    return dataclasses.replace(alert, finding=dataclasses.replace(alert.finding, source=ref))


def _engine(tmp_path, clock, **noise):
    out = tmp_path / "alerts.jsonl"
    sink = open_sink(f"jsonl:{out}")
    engine = Engine(Pipeline(), load_rules(), [sink], noise=NoiseControl(clock=clock, **noise))
    return engine, out


def test_parse_duration():
    assert [parse_duration(x) for x in ("90", "60s", "5m", "1h", "250ms", "1.5m")] == [
        90.0, 60.0, 300.0, 3600.0, 0.25, 90.0,
    ]  # fmt: skip
    for bad in ("", "0s", "-5s", "5 minutes", "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_group_first_alert_at_once_rest_rolled_up_when_window_closes(tmp_path):
    clock = Clock()
    t0 = clock.now
    engine, out = _engine(tmp_path, clock, group_window=60.0)
    a = make_alerts(5)
    sent = []
    for dt_, alert in zip((0, 10, 20, 59.9, 61), a, strict=True):
        clock.now = t0 + dt_
        sent.append([x.event_id for x in engine.deliver(alert)])
    assert sent[0] == [a[0].event_id]  # paged on the first leak, not a window later
    assert sent[1:4] == [[], [], []]
    rollup_id = sent[4][0]
    assert sent[4] == [rollup_id, a[4].event_id]  # window closed: roll-up, then a new window opens
    clock.now = t0 + 70
    summary = engine.close()
    docs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [d["event"]["id"] for d in docs] == [a[0].event_id, rollup_id, a[4].event_id]
    roll = docs[1]
    assert roll["event"]["action"] == "grouped" and "action" not in docs[0]["event"]
    assert roll["vecleak"]["finding"]["count"] == 3
    group = roll["vecleak"]["group"]
    assert group["alerts"] == 3 and group["distinct_vectors"] == 3 and group["rate_limited"] == 0
    assert group["first_event_id"] == a[0].event_id and group["window_seconds"] == 60.0
    assert group["rule"] == "vecleak.log.embedding" and group["source"] == "/var/log/app/app.log"
    assert group["sample_sha256"] == [x.finding.sha256 for x in a[1:4]]
    assert roll["event"]["start"] < roll["event"]["end"]
    # Nothing is lost: the counts of what sinks received add up to the distinct alerts.
    assert sum(d["vecleak"]["finding"]["count"] for d in docs) == summary["alerts"] == 5
    assert summary["grouped"] == 3 and summary["rollups"] == 1 and summary["rate_limited"] == 0


def test_rollup_id_is_stable_for_the_same_group_and_window():
    a = make_alerts(3)

    def run(start: float) -> list[str]:
        clock = Clock(start)
        noise = NoiseControl(group_window=300.0, clock=clock)
        ids = []
        for alert in a:
            ids += [x.event_id for x in noise.admit(alert)[0]]
            clock.now += 1
        return ids + [x.event_id for x in noise.flush()]

    first = run(1_800_000_000.0)
    assert len(first) == 2 and first == run(1_800_000_000.0)  # a replay keeps the roll-up id
    assert run(1_800_000_001.0)[1] != first[1]  # another window: another roll-up id
    assert run(1_800_000_001.0)[0] == first[0]  # the first alert keeps its own finding-based id


def test_groups_are_per_source_model_rule_and_close_flushes(tmp_path):
    clock = Clock()
    engine, out = _engine(tmp_path, clock, group_window=3600.0)
    a = make_alerts(4)
    other = [_moved(x, "/var/log/other.log") for x in a[2:]]
    for alert in (a[0], other[0], a[1], other[1]):
        engine.deliver(alert)
        clock.now += 1
    summary = engine.close()  # the hour has not passed: close() still reports what was folded
    docs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    firsts = [d for d in docs if "action" not in d["event"]]
    rolls = [d for d in docs if d["event"].get("action") == "grouped"]
    assert [d["event"]["id"] for d in firsts] == [a[0].event_id, other[0].event_id]
    assert sorted(d["vecleak"]["group"]["source"] for d in rolls) == [
        "/var/log/app/app.log",
        "/var/log/other.log",
    ]
    assert all(d["vecleak"]["finding"]["count"] == 1 for d in rolls)
    assert all(d["vecleak"]["group"]["window_seconds"] < 3600 for d in rolls)  # ends at close
    assert summary["alerts"] == 4 and summary["grouped"] == 2 and summary["rollups"] == 2


def test_tick_sends_rollup_without_a_new_alert(tmp_path):
    clock = Clock()
    engine, _ = _engine(tmp_path, clock, group_window=60.0)
    a = make_alerts(2)
    engine.deliver(a[0])
    clock.now += 5
    engine.deliver(a[1])
    clock.now += 30
    assert engine.tick() == []  # window still open
    clock.now += 30
    (roll,) = engine.tick()
    assert roll.group is not None and roll.count == 1 and roll.group.first_event_id == a[0].event_id
    assert engine.tick() == [] and engine.close()["rollups"] == 1


def test_single_alert_window_sends_no_rollup(tmp_path):
    clock = Clock()
    engine, out = _engine(tmp_path, clock, group_window=60.0)
    engine.deliver(make_alerts(1)[0])
    clock.now += 120
    assert engine.tick() == [] and engine.close()["rollups"] == 0
    assert len(out.read_bytes().splitlines()) == 1


def test_rate_limit_counts_and_rolls_up_instead_of_dropping(tmp_path):
    clock = Clock()
    engine, out = _engine(tmp_path, clock, max_per_minute=2)
    a = make_alerts(6)
    for alert in a[:5]:  # a burst: the bucket holds 2
        engine.deliver(alert)
    assert [x.event_id for x in engine.sent] == [a[0].event_id, a[1].event_id]
    clock.now += 30  # refills one token (2 per minute)
    assert [x.event_id for x in engine.deliver(a[5])] == [a[5].event_id]
    summary = engine.close()
    docs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    roll = docs[-1]
    assert roll["event"]["action"] == "grouped"
    assert roll["vecleak"]["group"]["rate_limited"] == 3 and roll["vecleak"]["finding"]["count"] == 3
    assert roll["vecleak"]["group"]["first_event_id"] is None  # grouping off: no first alert
    assert summary["rate_limited"] == 3 and summary["grouped"] == 0 and summary["alerts"] == 6
    assert sum(d["vecleak"]["finding"]["count"] for d in docs) == 6


def test_rate_limit_with_grouping_folds_a_limited_first_alert(tmp_path):
    clock = Clock()
    engine, out = _engine(tmp_path, clock, group_window=60.0, max_per_minute=1)
    a = make_alerts(3)
    b = _moved(a[2], "/var/log/b.log")
    engine.deliver(a[0])  # group A: sent (the only token)
    engine.deliver(b)  # group B: no token -> folded, window opened without a first alert
    engine.deliver(a[1])  # group A: inside its window -> grouped (needs no token)
    summary = engine.close()
    rolls = {d["vecleak"]["group"]["source"]: d for d in map(orjson.loads, out.read_bytes().splitlines())
             if d["event"].get("action") == "grouped"}  # fmt: skip
    assert rolls["/var/log/b.log"]["vecleak"]["group"]["rate_limited"] == 1
    assert rolls["/var/log/b.log"]["vecleak"]["group"]["first_event_id"] is None
    assert rolls["/var/log/app/app.log"]["vecleak"]["group"]["first_event_id"] == a[0].event_id
    assert (summary["alerts"], summary["grouped"], summary["rate_limited"], summary["rollups"]) == (
        3,
        1,
        1,
        2,
    )


def test_noise_off_by_default_every_vector_reported(tmp_path):
    v = unit_vectors(5, 384, seed=31)
    (tmp_path / "app.log").write_text("".join(f"e={x.tolist()}\n" for x in v))
    res = run_cli("scan", str(tmp_path), "--format", "jsonl")
    docs = alerts(res.stdout)
    assert len({d["vecleak"]["vector"]["sha256"] for d in docs}) == 5
    assert not any(d["event"].get("action") == "grouped" for d in docs)


def test_cli_group_window_and_baseline_keep_folded_fingerprints(tmp_path):
    v = unit_vectors(5, 384, seed=32)
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    log.write_text("".join(f"e={x.tolist()}\n" for x in v))
    base = tmp_path / "base.json"
    res = run_cli("scan", str(log.parent), "--format", "jsonl", "--group-window", "1h",
                  "--max-alerts-per-minute", "100", "--write-baseline", str(base))  # fmt: skip
    assert res.returncode == 3, res.stderr
    docs = alerts(res.stdout)
    rolls = [d for d in docs if d["event"].get("action") == "grouped"]
    firsts = [d for d in docs if d["event"].get("action") != "grouped"]
    assert rolls and len(rolls) == len(firsts)  # one first alert and one roll-up per group
    assert all(d["vecleak"]["finding"]["count"] == 4 for d in rolls)
    assert all(d["vecleak"]["group"]["distinct_vectors"] == 4 for d in rolls)
    assert b"grouped" in res.stderr
    again = run_cli("scan", str(log.parent), "--format", "jsonl", "--baseline", str(base))
    assert again.returncode == 0 and alerts(again.stdout) == []  # folded alerts were baselined too
    bad = run_cli("scan", str(log.parent), "--group-window", "soon")
    assert bad.returncode == 2 and b"invalid duration" in bad.stderr


def test_serve_sends_rollup_when_window_ends_without_new_traffic(tmp_path):
    """``serve --otlp`` ticks its grouping windows: the roll-up arrives while the receiver idles."""
    import time
    import urllib.request

    from otlp_helpers import vecleak_serve

    vecs = unit_vectors(3, 384, seed=41)
    spans = [
        {
            "traceId": f"{i + 1:032x}",
            "spanId": f"{i + 1:016x}",
            "name": "CreateEmbeddings",
            "attributes": [
                {
                    "key": "embedding.embeddings.0.embedding.vector",
                    "value": {"arrayValue": {"values": [{"doubleValue": float(x)} for x in v]}},
                }
            ],
        }
        for i, v in enumerate(vecs)
    ]
    body = orjson.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]})
    out = tmp_path / "alerts.jsonl"
    with vecleak_serve(out, "--group-window", "1s") as port:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/traces", data=body, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(req, timeout=10).read()
        docs: list[dict] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # waits for an event, asserts no timing
            docs = alerts(out.read_bytes()) if out.exists() else []
            if any(d["event"].get("action") == "grouped" for d in docs):
                break
            time.sleep(0.2)
        rolls = [d for d in docs if d["event"].get("action") == "grouped"]
        assert rolls, docs
    assert all(d["vecleak"]["finding"]["count"] == 2 for d in rolls)
    assert all(d["vecleak"]["group"]["window_seconds"] == 1.0 for d in rolls)  # closed by the tick


def test_ignore_marker_on_the_line_before_survives_a_block_cut(tmp_path):
    """A block that would end right after the marker line is cut one line earlier instead."""
    v = unit_vectors(2, 384, seed=23)
    head = "".join(f"INFO request {i} served\n" for i in range(40))
    marked = "# vecleak:ignore next line is a known sample\n"
    (tmp_path / "app.log").write_text(head + marked + f"DEBUG a={v[0].tolist()}\nDEBUG b={v[1].tolist()}\n")
    cut_inside_vector_line = len(head) + len(marked) + 10
    source = FileSource([str(tmp_path / "app.log")], block_size=cut_inside_vector_line)
    records = [r for r in source.records() if isinstance(r, Record)]
    assert len(records) > 1  # the file really is read in several blocks
    engine = Engine(Pipeline(), load_rules(), [])
    engine.run(FileSource([str(tmp_path / "app.log")], block_size=cut_inside_vector_line).records())
    assert engine.stats.ignored == 1 and engine.stats.findings == 1
