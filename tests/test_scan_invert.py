"""`vecleak scan --invert` end to end: real MiniLM vectors in a log, the real model, small budgets.

Each scan loads the model once (a few seconds on 2 cores); budgets are small so the whole file stays
around a minute. The texts are ones the fingerprinter attributes to MiniLM from the vector alone
(only findings whose top guess is a local model are inverted).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, alerts, default_sigint, gone, pool_workers, run_cli

pytest.importorskip("torch")

from scanner.inversion.models import DEFAULT_MODEL, load_encoder  # noqa: E402
from scanner.pii import find_pii, redact  # noqa: E402

EMAIL_TEXT = "contact john smith at john.smith@gmail.com"
OTHER_TEXTS = ["weather in paris", "how do i cancel my order"]
ENV = {"HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def vectors() -> dict[str, list[float]]:
    enc = load_encoder(DEFAULT_MODEL, "cpu", threads=2)
    texts = [EMAIL_TEXT, *OTHER_TEXTS]
    return {t: [round(float(x), 7) for x in v] for t, v in zip(texts, enc.embed_texts(texts), strict=True)}


def _write_log(path, vecs: list[list[float]]) -> None:
    with open(path, "w") as fh:
        for i, vec in enumerate(vecs):
            fh.write(
                json.dumps({"level": "debug", "msg": "query embedded", "req": i, "embedding": vec}) + "\n"
            )


def _inverted(docs: list[dict]) -> list[dict]:
    return [d for d in docs if "inversion" in d["vecleak"]]


def test_invert_samples_masks_and_fires_pii_rule(tmp_path, vectors):
    """Three vectors from one source, --invert-sample 1: only the first is inverted, masked."""
    log = tmp_path / "app.log"
    _write_log(log, [vectors[t] for t in (EMAIL_TEXT, *OTHER_TEXTS)])
    out = run_cli(
        "scan", str(log), "--format", "jsonl", "--invert", "--invert-sample", "1", "--invert-budget", "300",
        env=ENV,
    )  # fmt: skip
    assert out.returncode == 3, out.stderr
    assert b"john.smith@gmail.com" not in out.stdout and b"john smith" not in out.stdout.lower()
    assert b"waiting for 1 inversion(s)" in out.stderr and b"1 inverted" in out.stderr
    docs = alerts(out.stdout)
    ids = [d["event"]["id"] for d in docs]
    assert len(ids) == len(set(ids))  # one alert per id: held until inverted, never sent twice
    inv = _inverted(docs)
    assert len({d["vecleak"]["finding"]["id"] for d in inv}) == 1  # exactly one inverted
    assert {d["vecleak"]["location"]["line"] for d in inv} == {1}  # the first one
    assert len(inv) == len([d for d in docs if d["vecleak"]["location"]["line"] == 1])
    fields = inv[0]["vecleak"]["inversion"]
    assert fields["cosine"] >= 0.9
    assert "text_clear" not in fields and not fields.get("revealed")
    assert inv[0]["vecleak"]["fingerprint"]["confirmed"] is True
    # What the search found is data, not a fixed answer: the PII rule must agree with the PII found.
    pii_alerts = [d for d in docs if d["rule"]["id"] == "vecleak.inversion.pii"]
    if fields["pii"]:
        assert all("*" in p["value"] for p in fields["pii"])
        assert len(pii_alerts) == 1 and pii_alerts[0]["vecleak"]["level"] == "critical"
    else:
        assert not pii_alerts
    # The held detection alerts are exactly the ones a scan without --invert sends: none lost.
    plain = alerts(run_cli("scan", str(log), "--format", "jsonl").stdout)
    detection = [d["event"]["id"] for d in docs if d["rule"]["id"] != "vecleak.inversion.pii"]
    assert sorted(detection) == sorted(d["event"]["id"] for d in plain)


def test_reveal_goes_to_stdout_only(tmp_path, vectors):
    log = tmp_path / "app.log"
    _write_log(log, [vectors[EMAIL_TEXT]])
    saved = tmp_path / "alerts.jsonl"
    out = run_cli(
        "scan", str(log), "--format", "jsonl", "--invert", "--invert-budget", "300", "--reveal",
        "--output", f"jsonl:{saved}", env=ENV,
    )  # fmt: skip
    assert out.returncode == 3, out.stderr
    shown = _inverted(alerts(out.stdout))[0]["vecleak"]["inversion"]
    stored = _inverted(alerts(saved.read_bytes()))[0]["vecleak"]["inversion"]
    assert shown["revealed"] is True and "revealed" not in stored
    clear = shown["text"]
    items = find_pii(clear)
    assert [p["value"] for p in shown["pii"]] == [it.value for it in items]
    assert stored["text"] == redact(clear, items)  # the file got the masked form of the same text
    if items:
        assert clear != stored["text"]
        assert all(it.value not in saved.read_text() for it in items)
    assert clear.encode() not in out.stderr  # progress and summary lines never carry the text


def test_invert_without_torch_says_how_to_install(tmp_path, vectors):
    log = tmp_path / "app.log"
    _write_log(log, [vectors[OTHER_TEXTS[0]]])
    # A real interpreter in which torch cannot be imported (sys.modules[name] = None hides it).
    code = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['vecleak', *sys.argv[1:]];"
        "from scanner.cli import main; sys.exit(main())"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code, "scan", str(log), "--invert"],
        capture_output=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert out.returncode == 1
    assert b"pip install 'vecleak[invert]'" in out.stderr
    assert out.stdout == b""


def test_reveal_needs_invert(tmp_path, vectors):
    log = tmp_path / "app.log"
    _write_log(log, [vectors[OTHER_TEXTS[0]]])
    out = run_cli("scan", str(log), "--reveal")
    assert out.returncode == 1 and b"--invert" in out.stderr


def test_bounded_queue_delivers_every_held_alert_once(tmp_path):
    from scanner.engine import Engine
    from scanner.enrichment import SampledInversion
    from scanner.model import Record, SourceRef
    from scanner.pipeline import Pipeline
    from scanner.rules import load_rules
    from scanner.sinks import open_sink

    enc = load_encoder(DEFAULT_MODEL, "cpu", threads=2)
    texts = ["weather in paris", "how do i cancel my order", "hello world", "weather in paris today"]
    vecs = [[round(float(x), 7) for x in v] for v in enc.embed_texts(texts)]
    log = tmp_path / "a.log"
    _write_log(log, vecs + vecs[:1])  # the last line repeats the first vector
    out = tmp_path / "out.jsonl"
    from scanner.inversion import InversionEnricher

    calls: list[str] = []

    class Counting(InversionEnricher):
        def enrich(self, finding):
            calls.append(finding.sha256)
            return super().enrich(finding)

    # The real inverter at a small budget: the queue (one slot) and delivery are what is under test.
    enricher = Counting(device="cpu", budget=100)
    sampler = SampledInversion(enricher, sample=3, queue_size=1)
    engine = Engine(Pipeline(), load_rules(None), [open_sink(f"jsonl:{out}")], inversion=sampler)
    src = SourceRef("file", str(log), str(log))
    for i, line in enumerate(log.read_bytes().splitlines(keepends=True)):
        engine.feed(Record(line, src, line=i + 1))
    engine.wait_inversions()
    engine.close(1)
    docs = alerts(out.read_bytes())
    ids = [d["event"]["id"] for d in docs]
    assert len(ids) == len(set(ids))
    attributed = {d["vecleak"]["location"]["line"] for d in docs if d["vecleak"]["fingerprint"]["model"]}
    sampled = sorted(attributed - {5})[:3]  # the first three distinct attributed vectors
    assert len(calls) == len(sampled) == engine.stats.inverted
    enriched_lines = sorted({d["vecleak"]["location"]["line"] for d in docs if d["vecleak"].get("inversion")})
    assert enriched_lines == sampled
    assert all(0 < d["vecleak"]["inversion"]["cosine"] <= 1 for d in docs if d["vecleak"].get("inversion"))
    assert engine.stats.duplicates >= 1  # the repeat of a held vector is a duplicate, not a new alert


def test_invert_with_jobs_2_same_as_jobs_1(tmp_path, vectors):
    """--invert reads each sampled vector's values in the main process: workers send them along, so
    the inverted alerts are those of the serial scan."""
    log = tmp_path / "app.log"
    _write_log(log, [vectors[t] for t in (EMAIL_TEXT, *OTHER_TEXTS)])
    runs = _scans_with(log, "--jobs", ("1", "2"), "--invert-sample", "1")
    assert len(_inverted(runs[0])) >= 1
    assert runs[1] == runs[0]


def _scans_with(log, flag: str, values: tuple[str, ...], *extra: str) -> list[list[dict]]:
    """The alerts of ``scan --invert`` on ``log`` with ``flag`` at each of ``values``, less the
    fields that say when and how long."""
    runs = []
    for value in values:
        out = run_cli(
            "scan", str(log), "--format", "jsonl", "--invert", "--invert-budget", "100", flag, value,
            *extra, env=ENV,
        )  # fmt: skip
        assert out.returncode == 3, out.stderr
        docs = alerts(out.stdout)
        for doc in docs:
            doc.pop("@timestamp", None)
            doc["vecleak"].get("inversion", {}).pop("seconds", None)  # how long it took
        runs.append(docs)
    return runs


def test_worker_threads_hand_back_in_submission_order():
    """With two worker threads the first finding finishes last; it is still handed back first,
    and ``completed`` holds the later ones back until it is done."""
    import threading
    import time
    from types import SimpleNamespace

    from scanner.enrichment import Pending, SampledInversion

    first_may_finish = threading.Event()

    class Timed:
        def enrich(self, finding):
            if finding.name == "first":
                first_may_finish.wait(10)
            return {"name": finding.name}

    sampler = SampledInversion(Timed(), workers=2)
    for name in ("first", "second", "third"):
        sampler.submit(Pending(SimpleNamespace(name=name)))
    early = []
    deadline = time.monotonic() + 0.5  # ample for the later two, which return at once
    while time.monotonic() < deadline:
        early += sampler.completed()
        time.sleep(0.01)
    assert early == []
    first_may_finish.set()
    assert [item.fields["name"] for item in sampler.wait()] == ["first", "second", "third"]
    sampler.close()


def test_invert_jobs_2_delivers_the_alerts_of_invert_jobs_1(tmp_path, vectors):
    """Three sampled vectors inverted two at a time, in worker processes: a later one can finish
    first, yet the alerts come out as one thread gives them. (The two runs' torch threads differ,
    two against one a worker; the search counts evaluations, and the texts are the same.)"""
    log = tmp_path / "app.log"
    _write_log(log, [vectors[t] for t in (EMAIL_TEXT, *OTHER_TEXTS)])
    runs = _scans_with(log, "--invert-jobs", ("1", "2"))
    assert {d["vecleak"]["location"]["line"] for d in _inverted(runs[0])} == {1, 2, 3}
    assert runs[1] == runs[0]


def test_ctrl_c_stops_the_inversion_workers_at_once(tmp_path, vectors):
    """Ctrl-C while ``--invert-jobs`` workers load or invert: the scan exits without waiting for
    their vectors, and none is left behind."""
    log = tmp_path / "app.log"
    _write_log(log, [vectors[t] for t in (EMAIL_TEXT, *OTHER_TEXTS)])
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "scanner", "scan", str(log), "--invert", "--invert-jobs", "2"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, preexec_fn=default_sigint
    )
    try:
        deadline = time.monotonic() + 60
        while len(workers := pool_workers(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers) == 2
        time.sleep(2)  # into their loads
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        assert all(gone(pid, 10) for pid in workers)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("flag", "want"), [([], False), (["--invert-first-guess"], True)])
def test_invert_first_guess_reaches_the_enricher(flag, want):
    """``scan --invert-first-guess`` is the scan's spelling of ``invert --first-guess``."""
    from scanner.cli import build_parser
    from scanner.commands.scan import _sampled_inversion

    args = build_parser().parse_args(["scan", "app.log", "--invert", *flag])
    enricher = _sampled_inversion(args)._enricher()
    assert enricher.first_guess is want


def test_daemon_config_passes_first_guess_only_when_set(tmp_path, monkeypatch):
    """``invert_first_guess: true`` in the watch config reaches the default enricher; a custom
    factory gets only the options that are set, so one written before them keeps working."""
    import sys
    import types

    from scanner.daemon import load_config, load_enricher

    config = tmp_path / "vecleak.yml"
    config.write_text("invert_first_guess: true\n")
    cfg = load_config(str(config), {}, env={})
    assert cfg.invert_first_guess is True
    assert load_enricher(None, cfg.invert_budget, cfg.invert_first_guess).first_guess is True
    assert load_enricher(None).first_guess is False

    seen = []
    custom = types.ModuleType("custom_enricher")
    custom.make = lambda **options: seen.append(options) or object()
    monkeypatch.setitem(sys.modules, "custom_enricher", custom)
    load_enricher("custom_enricher:make")
    load_enricher("custom_enricher:make", 300, True)
    assert seen == [{}, {"budget": 300, "first_guess": True}]
