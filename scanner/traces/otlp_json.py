"""OTLP/JSON: ``{"resourceSpans": …}`` and ``{"resourceLogs": …}`` documents, one per file or per line.

The collector's file exporter writes one document per line; SDK encoders and ``curl`` dumps write one
document. Both shapes are accepted, as are the snake_case keys that protobuf's ``MessageToJson`` emits
with ``preserving_proto_field_name``. AnyValues become plain Python values (formats.md §3.6).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .base import SpanView, first_non_space, hex_id

_MARKERS = (b"resourceSpans", b"resourceLogs", b"resource_spans", b"resource_logs")


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


def any_value(v: Any) -> Any:
    """An OTLP/JSON AnyValue as a plain Python value (None for an empty or unknown one)."""
    if not isinstance(v, dict):
        return v
    for key, value in v.items():
        if key in ("stringValue", "string_value", "boolValue", "bool_value", "doubleValue", "double_value"):
            return value
        if key in ("intValue", "int_value"):
            try:
                return int(value)  # int64 is a JSON string in OTLP/JSON
            except (TypeError, ValueError):
                return value
        if key in ("arrayValue", "array_value"):
            return [any_value(x) for x in (value or {}).get("values", []) or []]
        if key in ("kvlistValue", "kvlist_value"):
            return key_values((value or {}).get("values", []) or [])
        if key in ("bytesValue", "bytes_value"):
            return value  # base64 text: the base64 detector may still decode floats from it
    return None


def key_values(items: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = any_value(item.get("value"))
    return out


def _service(resource: Any) -> str | None:
    if not isinstance(resource, dict):
        return None
    name = key_values(resource.get("attributes") or []).get("service.name")
    return name if isinstance(name, str) else None


def views_from_document(doc: Any) -> list[SpanView] | None:
    if not isinstance(doc, dict):
        return None
    resource_spans = _get(doc, "resourceSpans", "resource_spans")
    resource_logs = _get(doc, "resourceLogs", "resource_logs")
    if not isinstance(resource_spans, list) and not isinstance(resource_logs, list):
        return None
    views: list[SpanView] = []
    for rs in resource_spans or []:
        service = _service(rs.get("resource"))
        for ss in _get(rs, "scopeSpans", "scope_spans") or _get(rs, "instrumentationLibrarySpans", "_") or []:
            for span in ss.get("spans") or []:
                views.append(
                    SpanView(
                        service=service,
                        trace_id=hex_id(_get(span, "traceId", "trace_id"), 16),
                        span_id=hex_id(_get(span, "spanId", "span_id"), 8),
                        name=str(span.get("name", "")),
                        attributes=key_values(span.get("attributes") or []),
                        events=[
                            (str(ev.get("name", "")), key_values(ev.get("attributes") or []))
                            for ev in span.get("events") or []
                            if isinstance(ev, dict)
                        ],
                    )
                )
    for rl in resource_logs or []:
        service = _service(rl.get("resource"))
        for sl in _get(rl, "scopeLogs", "scope_logs") or []:
            for log in _get(sl, "logRecords", "log_records") or []:
                attrs = key_values(log.get("attributes") or [])
                name = _get(log, "eventName", "event_name") or attrs.get("event.name") or ""
                views.append(
                    SpanView(
                        service=service,
                        trace_id=hex_id(_get(log, "traceId", "trace_id"), 16),
                        span_id=hex_id(_get(log, "spanId", "span_id"), 8),
                        name=str(name),
                        attributes=attrs,
                        body=any_value(log.get("body")),
                        signal="log",
                    )
                )
    return views


def count_items(doc: dict[str, Any]) -> tuple[int, int, int, int]:
    """Malformed-id spans, malformed-id log records, all spans, all log records: what the receiver
    answers (``partial_success``) before any span is decoded. Raises on a body of the wrong shape."""
    bad_spans = bad_logs = spans = logs = 0
    for rs in _get(doc, "resourceSpans", "resource_spans") or []:
        scopes = _get(rs, "scopeSpans", "scope_spans") or _get(rs, "instrumentationLibrarySpans", "_") or []
        for ss in scopes:
            for span in ss.get("spans") or []:
                spans += 1
                if not _valid_id(_get(span, "traceId", "trace_id"), 16, False) or not _valid_id(
                    _get(span, "spanId", "span_id"), 8, False
                ):
                    bad_spans += 1
    for rl in _get(doc, "resourceLogs", "resource_logs") or []:
        for sl in _get(rl, "scopeLogs", "scope_logs") or []:
            for log in _get(sl, "logRecords", "log_records") or []:
                logs += 1
                if not _valid_id(_get(log, "traceId", "trace_id"), 16, True) or not _valid_id(
                    _get(log, "spanId", "span_id"), 8, True
                ):
                    bad_logs += 1
    return bad_spans, bad_logs, spans, logs


def _valid_id(value: Any, nbytes: int, optional: bool) -> bool:
    if value in (None, ""):
        return optional
    if not isinstance(value, str):
        return False
    if len(value) == nbytes * 2:
        try:
            return any(bytes.fromhex(value))
        except ValueError:
            return False
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == nbytes and any(raw)


class OtlpJson:
    name = "otlp-json"

    def sniff(self, head: bytes) -> bool:
        return first_non_space(head) == ord("{") and any(m in head for m in _MARKERS)

    def spans(self, data: bytes) -> list[SpanView] | None:
        try:
            return views_from_document(orjson.loads(data))
        except orjson.JSONDecodeError:
            pass
        views: list[SpanView] = []
        found = False
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                part = views_from_document(orjson.loads(line))
            except orjson.JSONDecodeError:
                part = None
            if part is None:
                return None  # not a JSON-lines export either: scan it as text
            found = True
            views.extend(part)
        return views if found else None


FORMAT = OtlpJson()
