"""SDK span dumps: Python ``span.to_json()`` / ConsoleSpanExporter output and JS ``ReadableSpan`` JSON.

Python writes ``{"name", "context": {"trace_id": "0x…", "span_id"}, "attributes", "events",
"resource": {"attributes"}}`` objects one after another, pretty-printed (so a vector is one number per
line); JS test fixtures (the Vercel AI SDK ones) write a list of ``{"name", "spanContext": {"traceId",
"spanId"}, "attributes", "events"}``. Attributes are already plain JSON values.
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import SpanView, first_non_space, hex_id

_MARKERS = (b'"spanContext"', b'"trace_id"')


def _view(span: Any) -> SpanView | None:
    if not isinstance(span, dict) or not isinstance(span.get("attributes", {}), dict):
        return None
    ctx = span.get("context") or span.get("spanContext")
    if not isinstance(ctx, dict):
        return None
    trace_id = ctx.get("trace_id") or ctx.get("traceId")
    span_id = ctx.get("span_id") or ctx.get("spanId")
    if not trace_id or not span_id:
        return None
    resource = span.get("resource") or {}
    rattrs = resource.get("attributes") if isinstance(resource, dict) else None
    service = rattrs.get("service.name") if isinstance(rattrs, dict) else None
    events = [
        (str(ev.get("name", "")), ev.get("attributes") or {})
        for ev in span.get("events") or []
        if isinstance(ev, dict) and isinstance(ev.get("attributes") or {}, dict)
    ]
    return SpanView(
        service=service if isinstance(service, str) else None,
        trace_id=hex_id(trace_id, 16),
        span_id=hex_id(span_id, 8),
        name=str(span.get("name", "")),
        attributes=dict(span.get("attributes") or {}),
        events=events,
    )


def _objects(text: str) -> list[Any] | None:
    """Concatenated JSON values (ConsoleSpanExporter writes one per span, no separator but a newline)."""
    import json

    decoder = json.JSONDecoder()
    out, pos, end = [], 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return out
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return None
        out.append(value)


class SdkSpans:
    name = "sdk-spans"

    def sniff(self, head: bytes) -> bool:
        return first_non_space(head) in (ord("{"), ord("[")) and any(m in head for m in _MARKERS)

    def spans(self, data: bytes) -> list[SpanView] | None:
        try:
            docs = [orjson.loads(data)]
        except orjson.JSONDecodeError:
            docs = _objects(data.decode("utf-8", "replace"))
            if docs is None:
                return None
        items: list[Any] = []
        for doc in docs:
            items.extend(doc if isinstance(doc, list) else [doc])
        views = [_view(s) for s in items]
        if not views or any(v is None for v in views):
            return None
        return views  # type: ignore[return-value]


FORMAT = SdkSpans()
