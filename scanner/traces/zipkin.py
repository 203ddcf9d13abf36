"""Zipkin v2 JSON: a list of spans with ``traceId``, ``id``, ``localEndpoint`` and string ``tags``.

Vectors arrive as JSON-list strings in ``tags`` (the OTel Zipkin exporter spec) or in annotation values.
"""

from __future__ import annotations

import orjson

from .base import SpanView, first_non_space, hex_id


class Zipkin:
    name = "zipkin-json"

    def sniff(self, head: bytes) -> bool:
        return first_non_space(head) == ord("[") and b'"traceId"' in head and b'"id"' in head

    def spans(self, data: bytes) -> list[SpanView] | None:
        doc = orjson.loads(data)
        if not isinstance(doc, list) or not doc:
            return None
        if not all(isinstance(s, dict) and "traceId" in s and "id" in s for s in doc):
            return None
        views = []
        for span in doc:
            endpoint = span.get("localEndpoint") or {}
            tags = span.get("tags") or {}
            events = [
                ("annotation", {"value": a.get("value")})
                for a in span.get("annotations") or []
                if isinstance(a, dict)
            ]
            views.append(
                SpanView(
                    service=endpoint.get("serviceName") if isinstance(endpoint, dict) else None,
                    trace_id=hex_id(span.get("traceId"), 16),
                    span_id=hex_id(span.get("id"), 8),
                    name=str(span.get("name", "")),
                    attributes=dict(tags) if isinstance(tags, dict) else {},
                    events=events,
                )
            )
        return views


FORMAT = Zipkin()
