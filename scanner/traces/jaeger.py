"""Jaeger JSON: the UI's/query API's ``{"data": [{"traceID", "spans", "processes"}]}`` export.

Jaeger exporters serialise array attributes as JSON-list strings (the OTel Jaeger exporter spec), so
a vector arrives as a string tag; span logs carry event fields the same way.
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import SpanView, first_non_space, hex_id


def _tags(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag in items or []:
        if isinstance(tag, dict) and isinstance(tag.get("key"), str):
            out[tag["key"]] = tag.get("value")
    return out


def _trace_views(trace: dict[str, Any]) -> list[SpanView]:
    processes = trace.get("processes") or {}
    views = []
    for span in trace.get("spans") or []:
        process = span.get("process") or processes.get(span.get("processID"), {}) or {}
        events = []
        for log in span.get("logs") or []:
            fields = _tags(log.get("fields"))
            events.append((str(fields.pop("event", "log")), fields))
        views.append(
            SpanView(
                service=process.get("serviceName"),
                trace_id=hex_id(span.get("traceID") or trace.get("traceID"), 16),
                span_id=hex_id(span.get("spanID"), 8),
                name=str(span.get("operationName", "")),
                attributes=_tags(span.get("tags")),
                events=events,
            )
        )
    return views


class Jaeger:
    name = "jaeger-json"

    def sniff(self, head: bytes) -> bool:
        return first_non_space(head) in (ord("{"), ord("[")) and b'"spanID"' in head

    def spans(self, data: bytes) -> list[SpanView] | None:
        doc = orjson.loads(data)
        traces = doc.get("data") if isinstance(doc, dict) else doc
        if isinstance(traces, dict):
            traces = [traces]
        if not isinstance(traces, list) or not all(isinstance(t, dict) and "spans" in t for t in traces):
            return None
        return [v for t in traces for v in _trace_views(t)]


FORMAT = Jaeger()
