"""Sinks against real receivers and real schemas: OCSF 2006, SARIF 2.1.0, CEF, webhook, HEC, syslog."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from pathlib import Path

import jsonschema
import orjson
import pytest
from conftest import run_cli, unit_vectors
from sinkhelpers import Receiver, Rsyslog, free_port, make_alerts, make_tls_files, rsyslogd

from scanner.ecs import alert_to_ecs
from scanner.formats import alert_to_cef
from scanner.sinks import open_sink
from scanner.sinks.spool import Spooled
from scanner.sinks.webhook import WebhookTransport, verify

SCHEMAS = Path(__file__).parent / "schemas"


def _log_with_vectors(tmp_path: Path, n: int = 3) -> Path:
    vecs = unit_vectors(n, 384, seed=11)
    path = tmp_path / "app.log"
    path.write_text("".join(f"2026-11-26 DEBUG req={i} embedding={v.tolist()}\n" for i, v in enumerate(vecs)))
    return path


# --- formats on stdout, validated -----------------------------------------------------------------


def test_ocsf_lines_validate_against_class_2006_schema(tmp_path):
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

    from scanner.formats import OCSF_VERSION

    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(OCSF_VERSION)).get_class_schema("data_security_finding")
    _log_with_vectors(tmp_path)
    res = run_cli("scan", str(tmp_path), "--format", "ocsf")
    assert res.returncode == 3, res.stderr
    docs = [orjson.loads(x) for x in res.stdout.splitlines()]
    assert len(docs) >= 3
    for doc in docs:
        jsonschema.Draft202012Validator(schema).validate(doc)
        assert doc["class_uid"] == 2006 and doc["type_uid"] == 200601
        assert doc["file"]["path"].endswith("app.log")
    assert "embedding=[" not in res.stdout.decode()


def test_sarif_document_validates_against_official_schema(tmp_path):
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    _log_with_vectors(tmp_path)
    res = run_cli("scan", str(tmp_path), "--format", "sarif")
    assert res.returncode == 3, res.stderr
    doc = orjson.loads(res.stdout)
    jsonschema.Draft7Validator(schema).validate(doc)
    run = doc["runs"][0]
    assert len(run["results"]) >= 3
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] in (1, 2, 3)
        assert len(result["partialFingerprints"]["vecleakFindingFingerprint/v1"]) == 64


def test_sarif_with_no_findings_is_still_a_valid_document(tmp_path):
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    (tmp_path / "clean.log").write_text("nothing to see\n")
    res = run_cli("scan", str(tmp_path), "--format", "sarif")
    assert res.returncode == 0
    doc = orjson.loads(res.stdout)
    jsonschema.Draft7Validator(schema).validate(doc)
    assert doc["runs"][0]["results"] == []


def _cef_parse(line: str) -> tuple[list[str], dict[str, str]]:
    parts = re.split(r"(?<!\\)\|", line, maxsplit=7)
    ext: dict[str, str] = {}
    for m in re.finditer(r"(\w+)=((?:\\.|[^\\])*?)(?=\s\w+=|$)", parts[7]):
        ext[m.group(1)] = re.sub(
            r"\\(.)", lambda g: {"n": "\n", "r": "\r"}.get(g.group(1), g.group(1)), m.group(2)
        )
    return parts[:7], ext


def test_cef_lines_one_per_alert(tmp_path):
    _log_with_vectors(tmp_path)
    res = run_cli("scan", str(tmp_path), "--format", "cef")
    lines = res.stdout.decode().splitlines()
    assert len(lines) >= 3
    for line in lines:
        header, ext = _cef_parse(line)
        assert header[0] == "CEF:0" and header[1] == "vecleak"
        assert 0 <= int(header[6]) <= 10
        assert len(ext["cs1"]) == 64 and ext["cs1Label"] == "vectorSha256"
        assert ext["cn1"] == "384"
        assert ext["filePath"].endswith("app.log")


def test_cef_escapes_separators():
    alert = make_alerts(1)[0]
    alert.rule_title = "pipe | back\\slash = eq\nnewline"
    header, ext = _cef_parse(alert_to_cef(alert))
    assert header[5] == "pipe \\| back\\\\slash = eq newline"
    assert ext["msg"] == "pipe | back\\slash = eq\nnewline"


# --- webhook and HEC against a real HTTP server ----------------------------------------------------


def test_webhook_signed_and_delivered_via_cli(tmp_path):
    rx = Receiver()
    try:
        _log_with_vectors(tmp_path)
        env = {"VECLEAK_WEBHOOK_SECRET": "s3cret", "VECLEAK_SPOOL_DIR": str(tmp_path / "spool")}
        res = run_cli(
            "scan",
            str(tmp_path / "app.log"),
            "--format",
            "jsonl",
            "--output",
            f"webhook:{rx.url}/hook",
            env=env,
        )
        assert res.returncode == 3, res.stderr
        stdout_ids = {orjson.loads(x)["event"]["id"] for x in res.stdout.splitlines() if b'"alert"' in x}
        assert len(rx.requests) == len(stdout_ids) >= 3
        got = set()
        for path, headers, body in rx.requests:
            assert path == "/hook"
            assert verify(b"s3cret", headers["X-Vecleak-Timestamp"], body, headers["X-Vecleak-Signature"])
            assert not verify(b"wrong", headers["X-Vecleak-Timestamp"], body, headers["X-Vecleak-Signature"])
            doc = orjson.loads(body)
            assert doc["event"]["id"] == headers["X-Vecleak-Event-Id"]
            got.add(doc["event"]["id"])
        assert got == stdout_ids
    finally:
        rx.stop()


def test_webhook_refuses_without_secret(tmp_path):
    _log_with_vectors(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "VECLEAK_WEBHOOK_SECRET"}
    res = run_cli("scan", str(tmp_path), "--output", "webhook:http://127.0.0.1:9/x", env=env)
    assert res.returncode == 1 and b"VECLEAK_WEBHOOK_SECRET" in res.stderr


def test_hec_event_endpoint_and_token(tmp_path, monkeypatch):
    rx = Receiver()
    try:
        alerts = make_alerts(2)
        monkeypatch.setenv("VECLEAK_HEC_TOKEN", "tok-123")
        sink = open_sink(f"hec:{rx.url}", spool_dir=str(tmp_path / "spool"), index="dlp")
        for a in alerts:
            sink.send(a)
        sink.close({})
        assert len(rx.requests) == 2
        for (path, headers, body), a in zip(rx.requests, alerts, strict=True):
            assert path == "/services/collector/event"
            assert headers["Authorization"] == "Splunk tok-123"
            doc = orjson.loads(body)
            assert doc["sourcetype"] == "vecleak:alert" and doc["index"] == "dlp"
            assert isinstance(doc["time"], float)
            assert doc["event"]["event"]["id"] == a.event_id
            assert doc["fields"]["vector_sha256"] == a.finding.sha256
    finally:
        rx.stop()


# --- spool: outage, bounds, permissions -----------------------------------------------------------


def _outage(tmp_path: Path, outage_s: float, n: int) -> None:
    """Alerts stream while the receiver is down for ``outage_s``; after it returns each arrives once."""
    alerts = make_alerts(n)
    port = free_port()
    spool = tmp_path / "spool"
    sink = Spooled(
        WebhookTransport(f"http://127.0.0.1:{port}/h", b"k", timeout=2.0),
        str(spool),
        base_delay=0.2,
        max_delay=2.0,
        close_timeout=30.0,
    )
    rx: list[Receiver] = []

    def come_back() -> None:
        time.sleep(outage_s)
        rx.append(Receiver(port=port))

    threading.Thread(target=come_back, daemon=True).start()
    interval = outage_s * 1.5 / n  # stream across the outage and past it
    for a in alerts:
        sink.send(a)
        time.sleep(interval)
    sink.close({})
    assert rx, "receiver never came back"
    try:
        ids = [h["X-Vecleak-Event-Id"] for _, h, _ in rx[0].requests]
        assert sorted(ids) == sorted(a.event_id for a in alerts)  # all, and each exactly once
        assert len(set(ids)) == len(ids)
        assert ids == [a.event_id for a in alerts]  # and in order
        assert sink.spooled > 0 and sink.failures > 0
        assert not list(spool.glob("*.msg"))
    finally:
        rx[0].stop()


def test_outage_short_every_alert_exactly_once(tmp_path):
    _outage(tmp_path, outage_s=3.0, n=20)


@pytest.mark.skipif(not os.environ.get("VECLEAK_SLOW_TESTS"), reason="30 s outage; set VECLEAK_SLOW_TESTS=1")
def test_outage_30s_every_alert_exactly_once(tmp_path):
    _outage(tmp_path, outage_s=30.0, n=60)


def test_spool_survives_restart_and_is_private(tmp_path):
    alerts = make_alerts(3)
    port = free_port()
    spool = tmp_path / "spool"
    sink = Spooled(WebhookTransport(f"http://127.0.0.1:{port}/h", b"k"), str(spool), close_timeout=0.5)
    for a in alerts:
        sink.send(a)
    sink.close({})
    files = sorted(spool.glob("*.msg"))
    assert len(files) == 3
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    rx = Receiver(port=port)
    try:
        again = Spooled(WebhookTransport(f"http://127.0.0.1:{port}/h", b"k"), str(spool), close_timeout=10)
        again.close({})
        assert [h["X-Vecleak-Event-Id"] for _, h, _ in rx.requests] == [a.event_id for a in alerts]
        assert not list(spool.glob("*.msg"))
    finally:
        rx.stop()


def test_spool_is_bounded(tmp_path):
    alerts = make_alerts(5)
    sink = Spooled(
        WebhookTransport(f"http://127.0.0.1:{free_port()}/h", b"k"),
        str(tmp_path / "s"),
        max_files=2,
        close_timeout=0.2,
    )
    for a in alerts:
        sink.send(a)
    sink.close({})
    assert len(list((tmp_path / "s").glob("*.msg"))) == 2
    assert sink.dropped == 3


def test_server_error_is_retried_not_lost(tmp_path):
    rx = Receiver(status=503)
    try:
        sink = Spooled(
            WebhookTransport(rx.url, b"k"),
            str(tmp_path / "s"),
            base_delay=0.1,
            max_delay=0.3,
            close_timeout=10,
        )
        alert = make_alerts(1)[0]
        sink.send(alert)
        time.sleep(0.5)
        rx.status = 200
        sink.close({})
        ids = [h["X-Vecleak-Event-Id"] for _, h, _ in rx.requests]
        assert ids.count(alert.event_id) >= 2  # refused with 503, then accepted
        assert not list((tmp_path / "s").glob("*.msg"))
    finally:
        rx.stop()


# --- syslog into a real rsyslogd --------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsyslog_binary() -> str:
    binary = rsyslogd()
    if not binary:
        pytest.skip("rsyslogd not installed and cannot be installed (needs root + apt-get)")
    return binary


def _check_5424(line: str, alert, fmt: str) -> None:
    m = re.match(r"<(\d+)>1 (\S+) (\S+) vecleak (\d+) (\S+) (\[vecleak@32473 [^\]]*\]) (.*)$", line)
    assert m, line
    assert int(m.group(1)) == 13 * 8 + 3  # log audit, error (rule level high)
    assert f'id="{alert.event_id}"' in m.group(6)
    if fmt == "cef":
        assert m.group(5) == "CEF" and m.group(7).startswith("CEF:0|vecleak|vecleak|")
    else:
        assert orjson.loads(m.group(7))["event"]["id"] == alert.event_id


@pytest.mark.parametrize("proto,fmt", [("udp", "json"), ("tcp", "json"), ("tcp", "cef")])
def test_syslog_udp_tcp_into_rsyslog(rsyslog_binary, tmp_path, proto, fmt):
    udp, tcp = free_port(2), free_port()
    rs = Rsyslog(rsyslog_binary, tmp_path, udp=udp, tcp=tcp)
    try:
        alerts = make_alerts(3)
        port = udp if proto == "udp" else tcp
        sink = open_sink(f"syslog+{proto}://127.0.0.1:{port}?format={fmt}", spool_dir=str(tmp_path / "spool"))
        for a in alerts:
            sink.send(a)
        sink.close({})
        lines = rs.lines(3)
        assert len(lines) == 3, lines
        for line, a in zip(lines, alerts, strict=True):
            _check_5424(line, a, fmt)
    finally:
        rs.stop()


def test_syslog_tls_into_rsyslog(rsyslog_binary, tmp_path, monkeypatch):
    ca, cert, key = make_tls_files(tmp_path)
    port = free_port()
    rs = Rsyslog(rsyslog_binary, tmp_path, tls=(port, ca, cert, key))
    try:
        monkeypatch.setenv("VECLEAK_SYSLOG_CA", str(ca))
        alerts = make_alerts(2)
        sink = open_sink(f"syslog+tls://127.0.0.1:{port}", spool_dir=str(tmp_path / "spool"))
        for a in alerts:
            sink.send(a)
        sink.close({})
        lines = rs.lines(2)
        assert len(lines) == 2, lines
        for line, a in zip(lines, alerts, strict=True):
            _check_5424(line, a, "json")
    finally:
        rs.stop()


def test_syslog_tcp_reconnects_after_rsyslog_restart(rsyslog_binary, tmp_path):
    tcp, udp = free_port(), free_port(2)
    rs = Rsyslog(rsyslog_binary, tmp_path, udp=udp, tcp=tcp)
    alerts = make_alerts(4)
    sink = open_sink(
        f"syslog+tcp://127.0.0.1:{tcp}", spool_dir=str(tmp_path / "spool"), base_delay=0.2, close_timeout=15
    )
    try:
        sink.send(alerts[0])
        sink.send(alerts[1])
        assert len(rs.lines(2)) == 2
        rs.stop()
        time.sleep(0.5)
        sink.send(alerts[2])  # collector down: spooled
        rs = Rsyslog(rsyslog_binary, tmp_path, udp=udp, tcp=tcp)
        sink.send(alerts[3])
        sink.close({})
        ids = [re.search(r'id="([0-9a-f]+)"', x).group(1) for x in rs.lines(4)]
        assert ids == [a.event_id for a in alerts]
    finally:
        rs.stop()


def test_no_sink_renders_raw_vectors():
    alert = make_alerts(1)[0]
    raw = str(round(float(alert.finding.candidate.values[0]), 6))
    for rendered in (orjson.dumps(alert_to_ecs(alert)).decode(), alert_to_cef(alert)):
        assert raw not in rendered


def test_reveal_seals_clear_text_to_the_soc_key_only(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from scanner.reveal import unseal

    soc = X25519PrivateKey.generate()
    pub = tmp_path / "soc.pub.pem"
    pub.write_bytes(
        soc.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    alert = make_alerts(1)[0]
    alert.finding.inversion = {"text": "mail [EMAIL]", "text_clear": "mail jane@corp.example", "pii": []}
    rx = Receiver()
    try:
        monkeypatch.setenv("VECLEAK_WEBHOOK_SECRET", "k")
        plain = open_sink(f"webhook:{rx.url}", spool_dir=str(tmp_path / "s1"))
        plain.send(alert)
        plain.close({})
        sealed = open_sink(f"webhook:{rx.url}", spool_dir=str(tmp_path / "s2"), reveal_public_key=str(pub))
        sealed.send(alert)
        sealed.close({})
        default_body, reveal_body = rx.requests[0][2], rx.requests[1][2]
        assert b"jane@corp.example" not in default_body and b"jane@corp.example" not in reveal_body
        assert "text_sealed" not in orjson.loads(default_body)["vecleak"]["inversion"]
        box = orjson.loads(reveal_body)["vecleak"]["inversion"]["text_sealed"]
        assert unseal(soc, box, alert.event_id) == "mail jane@corp.example"
        with pytest.raises(Exception):  # noqa: B017 - bound to its alert id (AEAD associated data)
            unseal(soc, box, "another-alert")
        with pytest.raises(Exception):  # noqa: B017 - and to the SOC key
            unseal(X25519PrivateKey.generate(), box, alert.event_id)
    finally:
        rx.stop()


# --- dead letters: permanent rejections are not retried forever ------------------------------------


@pytest.mark.parametrize("status", [403, 400])
def test_permanent_rejection_goes_to_dead_letter(tmp_path, monkeypatch, capfd, status):
    rx = Receiver(status=status)
    try:
        monkeypatch.setenv("VECLEAK_HEC_TOKEN", "wrong-token")
        alerts = make_alerts(3)
        spool = tmp_path / "spool"
        sink = open_sink(f"hec:{rx.url}", spool_dir=str(spool), base_delay=0.05, close_timeout=5)
        sink.send(alerts[0])
        sink.send(alerts[1])
        rx.status = 200  # fixed (e.g. the token was rotated): later alerts flow, nothing is stuck
        sink.send(alerts[2])
        sink.close({})
        ids = [orjson.loads(b)["fields"]["event_id"] for _, _, b in rx.requests]
        assert ids == [a.event_id for a in alerts]  # each tried exactly once: no retry loop
        assert sink.dead == 2 and sink.dead_statuses == {status: 2} and sink.delivered == 1
        dead = sorted((spool / "dead").glob("*.msg"))
        assert [f.name.split("-", 1)[1][:-4] for f in dead] == [alerts[0].event_id, alerts[1].event_id]
        assert stat.S_IMODE((spool / "dead").stat().st_mode) == 0o700
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in dead)
        assert not list(spool.glob("*.msg"))
        err = capfd.readouterr().err
        assert f"hec: receiver rejected alert {alerts[0].event_id} with HTTP {status}" in err
        assert f"hec: 2 alert(s) rejected by the receiver (HTTP {status} x2)" in err
        assert "wrong-token" not in err
    finally:
        rx.stop()


def test_spooled_alert_rejected_on_retry_moves_to_dead_letter(tmp_path):
    """Spooled during an outage, then the receiver comes back refusing it: dead-lettered, not stuck."""
    alerts = make_alerts(2)
    port = free_port()
    spool = tmp_path / "s"
    sink = Spooled(WebhookTransport(f"http://127.0.0.1:{port}/h", b"k"), str(spool), close_timeout=0.3)
    for a in alerts:
        sink.send(a)
    sink.close({})
    assert len(list(spool.glob("*.msg"))) == 2
    rx = Receiver(port=port, status=401)
    try:
        again = Spooled(WebhookTransport(f"http://127.0.0.1:{port}/h", b"k"), str(spool), close_timeout=10)
        again.close({})
        assert [h["X-Vecleak-Event-Id"] for _, h, _ in rx.requests] == [a.event_id for a in alerts]
        assert again.dead == 2 and not list(spool.glob("*.msg"))
        assert len(list((spool / "dead").glob("*.msg"))) == 2
    finally:
        rx.stop()


@pytest.mark.parametrize("status", [429, 408])
def test_busy_statuses_are_retried_not_dead_lettered(tmp_path, status):
    rx = Receiver(status=status)
    try:
        sink = Spooled(WebhookTransport(rx.url, b"k"), str(tmp_path / "s"), base_delay=0.05, close_timeout=10)
        alert = make_alerts(1)[0]
        sink.send(alert)
        time.sleep(0.3)
        rx.status = 200
        sink.close({})
        assert sink.dead == 0 and sink.delivered == 1
        assert [h["X-Vecleak-Event-Id"] for _, h, _ in rx.requests].count(alert.event_id) >= 2
    finally:
        rx.stop()


# --- reveal on HEC and syslog ----------------------------------------------------------------------


def _soc_key(tmp_path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    soc = X25519PrivateKey.generate()
    pub = tmp_path / "soc.pub.pem"
    pub.write_bytes(
        soc.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return soc, pub


def _revealable_alert():
    alert = make_alerts(1)[0]
    alert.finding.inversion = {"text": "mail [EMAIL]", "text_clear": "mail jane@corp.example", "pii": []}
    return alert


def test_reveal_on_hec_is_opt_in_and_sealed(tmp_path, monkeypatch):
    from scanner.reveal import unseal

    soc, pub = _soc_key(tmp_path)
    alert = _revealable_alert()
    rx = Receiver()
    try:
        monkeypatch.setenv("VECLEAK_HEC_TOKEN", "t")
        monkeypatch.delenv("VECLEAK_REVEAL_PUBLIC_KEY", raising=False)
        for spool, extra in (("s1", {}), ("s2", {"reveal_public_key": str(pub)})):
            sink = open_sink(f"hec:{rx.url}", spool_dir=str(tmp_path / spool), **extra)
            sink.send(alert)
            sink.close({})
        monkeypatch.setenv("VECLEAK_REVEAL_PUBLIC_KEY", str(pub))  # the env var opts in every sink
        sink = open_sink(f"hec:{rx.url}", spool_dir=str(tmp_path / "s3"))
        sink.send(alert)
        sink.close({})
        bodies = [b for _, _, b in rx.requests]
        assert all(b"jane@corp.example" not in b for b in bodies)
        assert "text_sealed" not in orjson.loads(bodies[0])["event"]["vecleak"]["inversion"]
        for body in bodies[1:]:
            box = orjson.loads(body)["event"]["vecleak"]["inversion"]["text_sealed"]
            assert unseal(soc, box, alert.event_id) == "mail jane@corp.example"
    finally:
        rx.stop()


def test_reveal_on_syslog_json_and_cef_into_rsyslog(rsyslog_binary, tmp_path):
    from scanner.reveal import unseal

    soc, pub = _soc_key(tmp_path)
    alert = _revealable_alert()
    udp, tcp = free_port(2), free_port()
    rs = Rsyslog(rsyslog_binary, tmp_path, udp=udp, tcp=tcp)
    try:
        for fmt in ("json", "cef"):
            sink = open_sink(
                f"syslog+tcp://127.0.0.1:{tcp}?format={fmt}",
                spool_dir=str(tmp_path / f"spool-{fmt}"),
                reveal_public_key=str(pub),
            )
            sink.send(alert)
            sink.close({})
        plain = open_sink(f"syslog+tcp://127.0.0.1:{tcp}", spool_dir=str(tmp_path / "spool-plain"))
        plain.send(alert)
        plain.close({})
        lines = rs.lines(3)
        assert len(lines) == 3, lines
        assert all("jane@corp.example" not in x for x in lines)
        json_msg = orjson.loads(lines[0].split("] ", 1)[1])
        box = json_msg["vecleak"]["inversion"]["text_sealed"]
        assert unseal(soc, box, alert.event_id) == "mail jane@corp.example"
        m = re.search(r"vecleakTextSealed=(\{.*?\})(?: \w+=|$)", lines[1])
        assert m, lines[1]
        cef_value = re.sub(r"\\(.)", r"\1", m.group(1))  # CEF escapes = and \ in values
        assert unseal(soc, orjson.loads(cef_value), alert.event_id) == "mail jane@corp.example"
        assert "text_sealed" not in lines[2] and "vecleakTextSealed" not in lines[2]
    finally:
        rs.stop()


@pytest.mark.parametrize(
    ("module", "env"), [("hec", "VECLEAK_HEC_TOKEN"), ("webhook", "VECLEAK_WEBHOOK_SECRET")]
)
def test_http_sinks_take_their_secret_from_env_and_need_an_http_url(module, env, monkeypatch, tmp_path):
    import importlib

    sink = importlib.import_module(f"scanner.sinks.{module}")
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(ValueError, match=re.escape(f"${env}")):
        sink.open("https://siem.example/collect", spool=str(tmp_path / "spool"))
    monkeypatch.setenv(env, "s3cret")
    with pytest.raises(ValueError, match="must be an http"):
        sink.open("ftp://siem.example/collect", spool=str(tmp_path / "spool"))
