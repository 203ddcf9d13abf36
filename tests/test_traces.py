"""Trace files and the OTLP receiver, driven by the real OpenTelemetry SDK and its real exporters."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import orjson
import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from scanner.model import vector_sha256
from tests.conftest import FIXTURES, alerts, run_cli, scan_paths, unit_vectors
from tests.otlp_helpers import Capture, vecleak_serve

SERVICE = "rag-api"


def _planted(seed: int) -> dict[str, np.ndarray]:
    v = unit_vectors(4, 384, seed=seed)
    return {"oi": v[0], "vercel": v[1], "event": v[2], "log": v[3]}


def _emit_spans(provider: TracerProvider, vecs: dict[str, np.ndarray]) -> dict[str, tuple[str, str, str]]:
    """OpenInference, Vercel AI SDK and OpenLLMetry-style spans; returns sha -> (trace, span, attribute)."""
    tracer = provider.get_tracer("test")
    where: dict[str, tuple[str, str, str]] = {}
    with tracer.start_as_current_span("CreateEmbeddings") as span:
        span.set_attribute("openinference.span.kind", "EMBEDDING")
        span.set_attribute("embedding.model_name", "all-MiniLM-L6-v2")
        span.set_attribute("embedding.embeddings.0.embedding.text", "my account number is 4411")
        span.set_attribute("embedding.embeddings.0.embedding.vector", [float(x) for x in vecs["oi"]])
        ctx = span.get_span_context()
        where[vector_sha256(vecs["oi"])] = (
            f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", "embedding.embeddings.0.embedding.vector"
        )  # fmt: skip
    with tracer.start_as_current_span("ai.embed") as span:
        span.set_attribute("ai.model.id", "text-embedding-3-small")
        span.set_attribute("ai.value", '"where is my parcel"')
        span.set_attribute("ai.embedding", json.dumps([float(x) for x in vecs["vercel"]]))
        ctx = span.get_span_context()
        where[vector_sha256(vecs["vercel"])] = (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", "ai.embedding")
    with tracer.start_as_current_span("chroma.query") as span:
        span.add_event(
            "db.query.embeddings", {"db.query.embeddings.vector": [float(x) for x in vecs["event"]]}
        )
        ctx = span.get_span_context()
        where[vector_sha256(vecs["event"])] = (
            f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", "db.query.embeddings.vector"
        )  # fmt: skip
    return where


def _emit_log(provider: LoggerProvider, vec: np.ndarray) -> None:
    """OpenLLMetry's gen_ai.choice log event: the vector in the body's message.content."""
    provider.get_logger("openllmetry").emit(
        body={"index": 0, "message": {"content": [float(x) for x in vec]}},
        event_name="gen_ai.choice",
        attributes={"gen_ai.system": "openai"},
    )


def _emit_all(
    vecs: dict[str, np.ndarray], spans: SpanExporter, logs: LogRecordExporter
) -> dict[str, tuple[str, str, str]]:
    """Send the planted spans, then the planted log record, through real SDK providers into the
    ``spans`` / ``logs`` exporters; each provider is shut down, which flushes it."""
    tp = TracerProvider(resource=_resource())
    tp.add_span_processor(SimpleSpanProcessor(spans))
    where = _emit_spans(tp, vecs)
    tp.shutdown()
    lp = LoggerProvider(resource=_resource())
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    _emit_log(lp, vecs["log"])
    lp.shutdown()
    return where


def _resource() -> Resource:
    return Resource.create({"service.name": SERVICE})


def _by_sha(docs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in docs:
        out.setdefault(d["vecleak"]["vector"]["sha256"], []).append(d)
    return out


def _assert_identity(docs: list[dict], where: dict[str, tuple[str, str, str]]) -> None:
    found = _by_sha([d for d in docs if d["vecleak"]["finding"]["kind"] == "embedding"])
    for sha, (trace_id, span_id, attribute) in where.items():
        assert sha in found, f"planted vector {attribute} not reported"
        doc = found[sha][0]
        assert doc["service"]["name"] == SERVICE
        assert doc["vecleak"]["span"]["trace_id"] == trace_id
        assert doc["vecleak"]["span"]["span_id"] == span_id
        assert doc["vecleak"]["span"]["attribute"] == attribute
        assert doc["vecleak"]["span"]["name"]


def _wait_for(path: Path, pred, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    docs: list[dict] = []
    while time.monotonic() < deadline:
        if path.exists():
            docs = [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
            if pred(docs):
                return docs
        time.sleep(0.1)
    return docs


# ---- trace files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_capture() -> tuple[list, list, dict, np.ndarray]:
    spans_mem = InMemorySpanExporter()
    logs_mem = InMemoryLogRecordExporter()
    vecs = _planted(1)
    where = _emit_all(vecs, spans_mem, logs_mem)
    return list(spans_mem.get_finished_spans()), list(logs_mem.get_finished_logs()), where, vecs["log"]


def _scan(path: Path) -> list[dict]:
    proc = run_cli("scan", "--format", "jsonl", str(path))
    assert proc.returncode == 3, proc.stderr.decode()
    return alerts(proc.stdout)


def test_console_exporter_span_file(sdk_capture, tmp_path: Path) -> None:
    spans, _, where, _ = sdk_capture
    path = tmp_path / "console.txt"
    path.write_text("".join(s.to_json() + "\n" for s in spans))  # what ConsoleSpanExporter writes
    _assert_identity(_scan(path), where)


def test_otlp_json_and_protobuf_files(sdk_capture, tmp_path: Path) -> None:
    spans, logs, where, log_vec = sdk_capture
    j = tmp_path / "traces.json"
    j.write_text(MessageToJson(encode_spans(spans)))  # the SDK's encoder, protobuf's JSON mapping
    _assert_identity(_scan(j), where)
    pb = tmp_path / "traces.pb"
    pb.write_bytes(encode_spans(spans).SerializeToString())
    _assert_identity(_scan(pb), where)
    lj = tmp_path / "logs.json.gz"
    lj.write_bytes(gzip.compress(MessageToJson(encode_logs(logs)).encode()))
    docs = _by_sha(_scan(lj))
    log_doc = docs[vector_sha256(log_vec)][0]
    assert log_doc["service"]["name"] == SERVICE
    assert log_doc["vecleak"]["span"]["name"] == "gen_ai.choice"
    assert log_doc["vecleak"]["span"]["attribute"] == "body"


def test_plaintext_beside_vector_and_model_hint(sdk_capture, tmp_path: Path) -> None:
    spans, _, _, _ = sdk_capture
    path = tmp_path / "traces.pb"
    path.write_bytes(encode_spans(spans).SerializeToString())
    docs = _scan(path)
    plain = [d for d in docs if d["rule"]["id"] == "vecleak.trace.plaintext-beside-vector"]
    attrs = {d["vecleak"]["span"]["attribute"] for d in plain}
    assert attrs == {"embedding.embeddings.0.embedding.text", "ai.value"}
    for d in plain:  # located at the text's key, not at the vector's beside it
        assert d["vecleak"]["vector"]["key"] == d["vecleak"]["span"]["attribute"], d["vecleak"]
        assert d["vecleak"]["span"]["vector_attribute"] != d["vecleak"]["span"]["attribute"]
    assert all(d["vecleak"]["finding"]["kind"] == "plaintext-beside-vector" for d in plain)
    text = path.read_bytes()
    for d in docs:  # alerts name the leak; they never repeat the text or the vector
        assert b"account number" in text and "account number" not in json.dumps(d)
    assert {d["rule"]["id"] for d in docs} >= {"vecleak.trace.span-embedding"}
    assert not any(d["rule"]["id"] == "vecleak.log.embedding" for d in docs)


def test_jaeger_and_zipkin_files(tmp_path: Path) -> None:
    v = unit_vectors(2, 256, seed=7)
    as_str = [json.dumps([float(x) for x in row]) for row in v]  # exporters stringify arrays
    jaeger = {"data": [{"traceID": "5b8aa5a2d2c872e8321cf37308d69df2", "processes": {"p1": {"serviceName": SERVICE}},
              "spans": [{"traceID": "5b8aa5a2d2c872e8321cf37308d69df2", "spanID": "051581bf3cb55c13",
                         "operationName": "embed", "processID": "p1",
                         "tags": [{"key": "embedding.embeddings.0.embedding.vector", "type": "string", "value": as_str[0]}],
                         "logs": []}]}]}  # fmt: skip
    zipkin = [{"traceId": "5b8aa5a2d2c872e8321cf37308d69df2", "id": "5fb397be34d26b51", "name": "embed",
               "localEndpoint": {"serviceName": SERVICE}, "tags": {"ai.embedding": as_str[1]}}]  # fmt: skip
    (tmp_path / "jaeger.json").write_text(json.dumps(jaeger, indent=2))
    (tmp_path / "zipkin.json").write_text(json.dumps(zipkin))
    _assert_identity(
        _scan(tmp_path / "jaeger.json"),
        {vector_sha256(v[0]): ("5b8aa5a2d2c872e8321cf37308d69df2", "051581bf3cb55c13", "embedding.embeddings.0.embedding.vector")},
    )  # fmt: skip
    _assert_identity(
        _scan(tmp_path / "zipkin.json"),
        {vector_sha256(v[1]): ("5b8aa5a2d2c872e8321cf37308d69df2", "5fb397be34d26b51", "ai.embedding")},
    )


def test_real_vercel_ai_sdk_fixtures() -> None:
    files = sorted(FIXTURES.glob("Arize-ai__openinference__js__*v6-spans__*.json"))
    if not files:
        pytest.skip("real fixtures not present")
    for path in files:
        docs = [d for d in _scan(path) if d["vecleak"]["finding"]["kind"] == "embedding"]
        assert docs, path.name
        for d in docs:
            span = d["vecleak"]["span"]
            assert len(span["trace_id"]) == 32 and len(span["span_id"]) == 16
            assert span["attribute"] in ("ai.embedding", "ai.embeddings[0]")
            assert d["vecleak"]["vector"]["dim"] == 1536


def test_text_after_a_too_big_trace_document_is_still_scanned(tmp_path: Path, monkeypatch) -> None:
    """A file that starts like a trace export but is over the document limit is scanned as text:
    all of it, not just the part read to try decoding it."""
    from scanner import traces

    monkeypatch.setattr(traces, "MAX_DOCUMENT", 50_000)
    v = unit_vectors(1, 384, seed=8)[0]
    path = tmp_path / "export.jsonl"
    filler = "".join(f"2026-11-26 INFO line {i}\n" for i in range(10_000))  # ~260 KB
    path.write_text('{"resourceSpans": []}\n' + filler + f"DEBUG emb={v.tolist()}\n")
    findings, _ = scan_paths(path)
    assert [f.line for f in findings] == [10_002]


def test_non_trace_json_still_scanned_as_text(tmp_path: Path) -> None:
    v = unit_vectors(1, 384, seed=3)[0]
    path = tmp_path / "app.log"
    path.write_text('{"msg": "embedded", "embedding": ' + json.dumps([float(x) for x in v]) + "}\n")
    docs = _scan(path)
    assert docs and "span" not in docs[0]["vecleak"]


# ---- the receiver -------------------------------------------------------------------------------


def test_receiver_with_real_sdk_exporters(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    vecs = _planted(2)
    with vecleak_serve(out) as port:
        where = _emit_all(
            vecs,
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", compression=Compression.Gzip),
            OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs"),
        )
        everything = {*where, vector_sha256(vecs["log"])}
        docs = _wait_for(out, lambda ds: everything <= set(_by_sha(ds)))
    _assert_identity(docs, where)
    log_doc = _by_sha(docs)[vector_sha256(vecs["log"])][0]
    assert log_doc["vecleak"]["span"]["name"] == "gen_ai.choice"
    assert log_doc["vecleak"]["source"]["kind"] == "otlp"
    assert any(d["rule"]["id"] == "vecleak.trace.plaintext-beside-vector" for d in docs)


def _post(port: int, path: str, body: bytes, ctype: str = "application/json", **headers: str):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method="POST", headers={"Content-Type": ctype, **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_receiver_status_codes_and_partial_success(sdk_capture, tmp_path: Path) -> None:
    spans, _, where, _ = sdk_capture
    doc = json.loads(MessageToJson(encode_spans(spans)))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "not-an-id"
    with vecleak_serve(tmp_path / "a.jsonl") as port:
        assert _post(port, "/v1/metrics", b"{}")[0] == 404
        assert _post(port, "/v1/traces", b"{}", "text/plain")[0] == 415
        assert _post(port, "/v1/traces", b"{not json")[0] == 400
        assert _post(port, "/v1/traces", b"\x0a\xff\xff", "application/x-protobuf")[0] == 400
        status, headers, body = _post(
            port, "/v1/traces", gzip.compress(json.dumps(doc).encode()), **{"Content-Encoding": "gzip"}
        )
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert json.loads(body)["partialSuccess"]["rejectedSpans"] == 1
        status, _, body = _post(
            port, "/v1/traces", encode_spans(spans).SerializeToString(), "application/x-protobuf"
        )
        assert status == 200 and body == b""  # an empty ExportTraceServiceResponse: full success


def test_receiver_refuses_with_503_when_queue_full() -> None:
    import threading

    from scanner.otlp.receiver import OtlpReceiver

    release = threading.Event()
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab" * 16, "spanId": "cd" * 8,
                       "name": "x", "attributes": [{"key": "k", "value": {"stringValue": "v" * 300}}]}]}]}]}).encode()  # fmt: skip
    # Room for two waiting bodies (the queue weighs raw bytes) while the worker holds the first.
    recv = OtlpReceiver("127.0.0.1", 0, lambda _s, _v: release.wait(30), queue_bytes=2 * len(body))
    recv.start()
    try:
        port = recv.address[1]
        statuses = [_post(port, "/v1/traces", body) for _ in range(6)]
        codes = [s for s, _, _ in statuses]
        assert codes[0] == 200 and 503 in codes  # the worker is blocked: the queue fills, then 503
        assert all(h.get("Retry-After") for s, h, _ in statuses if s == 503)
    finally:
        release.set()
        recv.stop()


def test_redacting_proxy_forwards_no_vector(tmp_path: Path) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from scanner.traces import otlp_proto
    from scanner.traces.base import SpanView

    capture = Capture()
    out = tmp_path / "alerts.jsonl"
    vecs = _planted(3)
    try:
        with vecleak_serve(out, "--forward", f"http://127.0.0.1:{capture.port}", "--redact") as port:
            where = _emit_all(
                vecs,
                OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"),
                OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs"),
            )
            deadline = time.monotonic() + 30
            while len(capture.requests) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            docs = _wait_for(out, lambda ds: set(where) <= set(_by_sha(ds)))
    finally:
        capture.close()
    _assert_identity(docs, where)  # scanned as well as forwarded
    views: list[SpanView] = []
    for path, _ctype, body in capture.requests:
        if path == "/v1/traces":
            views += otlp_proto.views_from_traces(ExportTraceServiceRequest.FromString(body))
        else:
            views += otlp_proto.views_from_logs(ExportLogsServiceRequest.FromString(body))
    assert {v.name for v in views} == {"CreateEmbeddings", "ai.embed", "chroma.query", "gen_ai.choice"}
    forwarded = json.dumps([[v.attributes, v.events, v.body] for v in views])
    for vec in vecs.values():
        assert f"sha256={vector_sha256(vec)} dim=384" in forwarded
        assert repr(float(vec[5])) not in forwarded
    assert "embedding.model_name" in forwarded and "all-MiniLM-L6-v2" in forwarded  # the rest is intact
    redacted = forwarded.count("[vecleak:redacted")
    assert redacted == 4


# ---- the receiver's fast path -------------------------------------------------------------------


def test_protobuf_double_arrays_decode_to_the_detector_candidate(sdk_capture) -> None:
    """A protobuf array of doubles is read as numbers, not printed and re-parsed, and judged the same."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    from detectors.numeric_list import DETECTOR, array_candidate
    from scanner.model import Record, SourceRef
    from scanner.traces import otlp_proto

    rng = np.random.default_rng(5)
    f32 = rng.standard_normal(384).astype(np.float32)
    for values in (f32.astype(np.float64), rng.standard_normal(64), np.round(rng.standard_normal(32), 2)):
        v = AnyValue()
        v.array_value.values.extend(AnyValue(double_value=float(x)) for x in values)
        decoded = otlp_proto.any_value(v)
        assert isinstance(decoded, np.ndarray) and np.array_equal(decoded, values)
        text = orjson.dumps(values.tolist())
        (want,) = DETECTOR.find(Record(data=text, source=SourceRef("t", "t", "t"), nested=True, path="k"))
        got = array_candidate(decoded, "k")
        assert np.array_equal(got.values, want.values)
        assert (got.encoding, got.json_path, got.precision) == (want.encoding, want.json_path, want.precision)
    ints, short, mixed = AnyValue(), AnyValue(), AnyValue()
    ints.array_value.values.extend(AnyValue(int_value=i) for i in range(32))
    short.array_value.values.extend(AnyValue(double_value=0.5) for _ in range(8))
    mixed.array_value.values.extend([AnyValue(double_value=0.5)] * 31 + [AnyValue(string_value="x")])
    assert otlp_proto.any_value(ints) == list(range(32))
    assert otlp_proto.any_value(short) == [0.5] * 8
    assert otlp_proto.any_value(mixed) == [0.5] * 31 + ["x"]


def test_batch_scan_finds_what_record_by_record_scan_finds(sdk_capture) -> None:
    spans, _, where, _ = sdk_capture
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from scanner.model import SourceRef
    from scanner.pipeline import Pipeline
    from scanner.traces import batch_for, otlp_proto, records_for

    msg = ExportTraceServiceRequest.FromString(encode_spans(spans).SerializeToString())
    views = otlp_proto.views_from_traces(msg)
    source = SourceRef("otlp", "t", "t")
    pipeline = Pipeline()
    one_by_one = [f for r in records_for(views, source) for f in pipeline.scan(r).findings]
    records, decoded = batch_for(views, source)
    assert decoded  # the OpenInference and event vectors arrived as protobuf doubles
    batched = pipeline.scan_batch(records, decoded).findings

    def summary(f):
        return (f.finding_id, f.kind, f.candidate.encoding, f.candidate.precision, f.score,
                [(g.model, round(g.confidence, 6)) for g in f.fingerprint], f.record_context)  # fmt: skip

    assert sorted(map(summary, batched), key=str) == sorted(map(summary, one_by_one), key=str)
    assert {f.sha256 for f in batched if f.kind == "embedding"} == set(where)


def test_receiver_answers_before_scanning_with_partial_success() -> None:
    """200 and ``partial_success`` come from the checks on arrival, while the worker is still busy."""
    import threading

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    from scanner.otlp.receiver import OtlpReceiver

    release = threading.Event()
    seen: list[tuple[str, list]] = []

    def on_views(signal: str, views: list) -> None:
        release.wait(30)
        seen.append((signal, views))

    recv = OtlpReceiver("127.0.0.1", 0, on_views)
    recv.start()
    try:
        port = recv.address[1]
        req = ExportTraceServiceRequest()
        spans = req.resource_spans.add().scope_spans.add().spans
        for i, (trace_id, span_id) in enumerate(
            [(b"\x01" * 16, b"\x02" * 8), (b"\x00" * 16, b"\x02" * 8), (b"\x01" * 3, b"\x02" * 8), (b"\x01" * 16, b"")]
        ):  # fmt: skip
            span = spans.add(trace_id=trace_id, span_id=span_id, name=f"s{i}")
            kv = span.attributes.add(key="embedding.embeddings.0.embedding.vector")
            kv.value.array_value.values.extend([type(kv.value)(double_value=0.1 * j) for j in range(32)])
        status, _, body = _post(port, "/v1/traces", req.SerializeToString(), "application/x-protobuf")
        assert status == 200
        answer = ExportTraceServiceResponse.FromString(body)
        assert answer.partial_success.rejected_spans == 3  # all-zero, short and missing ids
        assert answer.partial_success.error_message
        logs = ResourceLogs(
            scope_logs=[ScopeLogs(log_records=[LogRecord(), LogRecord(trace_id=b"\x05" * 5)])]
        )
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        status, _, body = _post(
            port, "/v1/logs", ExportLogsServiceRequest(resource_logs=[logs]).SerializeToString(), "application/x-protobuf"
        )  # fmt: skip
        assert status == 200
        assert (
            ExportLogsServiceResponse.FromString(body).partial_success.rejected_log_records == 1
        )  # ids optional
        assert (
            _post(port, "/v1/traces", b'{"resourceSpans": [1]}')[0] == 400
        )  # wrong shape: checked on arrival
        assert not seen  # both were answered while the worker was still held
        assert recv.counters.spans == 4 and recv.counters.logs == 2 and recv.counters.invalid_items == 4
    finally:
        release.set()
        recv.stop()
    assert [s for s, _ in seen] == ["traces", "logs"]
    traces = seen[0][1]
    assert [v.name for v in traces] == ["s0", "s1", "s2", "s3"]
    vector = traces[0].attributes["embedding.embeddings.0.embedding.vector"]
    assert isinstance(vector, np.ndarray) and vector.shape == (32,)
