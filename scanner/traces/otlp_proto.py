"""OTLP protobuf: ``TracesData``/``LogsData`` files (same wire as the Export*ServiceRequest bodies).

Needs ``opentelemetry-proto`` (the ``otlp`` extra). Without it, protobuf trace files are scanned as
bytes like any other file, which still finds float text but loses the span identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import SpanView


def _pb() -> tuple[Any, Any] | None:
    try:
        from opentelemetry.proto.logs.v1 import logs_pb2
        from opentelemetry.proto.trace.v1 import trace_pb2
    except ImportError:
        return None
    return trace_pb2, logs_pb2


# An ArrayValue of doubles on the wire: per item, field 1 (values, length 9), then field 4
# (double_value, fixed64) and its 8 bytes. SDKs encode a float list attribute exactly so.
_ITEM = 11
_DOUBLE_ITEM = np.frombuffer(b"\x0a\x09\x21", dtype=np.uint8)
MIN_ITEMS = 16  # shorter arrays cannot be an embedding (detectors.MIN_DIM): left as plain lists


def doubles(array_value: Any) -> np.ndarray | None:
    """The items of an ``ArrayValue`` as float64, when every item is a ``double_value``; else None.

    Read straight from the wire bytes with numpy: converting 384 AnyValue messages to Python
    floats one by one costs ~100x more, and the vector is all the scanner wants from them.
    """
    raw = array_value.SerializeToString()
    n, rest = divmod(len(raw), _ITEM)
    if rest or n < MIN_ITEMS:
        return None
    grid = np.frombuffer(raw, dtype=np.uint8).reshape(n, _ITEM)
    if not (grid[:, :3] == _DOUBLE_ITEM).all():
        return None
    return np.ascontiguousarray(grid[:, 3:]).view("<f8").reshape(n).astype(np.float64)


def any_value(v: Any) -> Any:
    """A protobuf AnyValue as a plain Python value; a long array of doubles as a float64 ndarray."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        values = doubles(v.array_value)
        if values is not None:
            return values
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return key_values(v.kvlist_value.values)
    if which == "bytes_value":
        import base64

        return base64.b64encode(v.bytes_value).decode("ascii")
    return getattr(v, which)


def key_values(items: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


def _service(resource: Any) -> str | None:
    for kv in resource.attributes:
        if kv.key == "service.name" and kv.value.WhichOneof("value") == "string_value":
            return kv.value.string_value
    return None


def views_from_traces(msg: Any) -> list[SpanView]:
    views = []
    for rs in msg.resource_spans:
        service = _service(rs.resource)
        for ss in rs.scope_spans:
            for span in ss.spans:
                views.append(
                    SpanView(
                        service=service,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        name=span.name,
                        attributes=key_values(span.attributes),
                        events=[(ev.name, key_values(ev.attributes)) for ev in span.events],
                    )
                )
    return views


def views_from_logs(msg: Any) -> list[SpanView]:
    views = []
    for rl in msg.resource_logs:
        service = _service(rl.resource)
        for sl in rl.scope_logs:
            for log in sl.log_records:
                attrs = key_values(log.attributes)
                name = log.event_name or attrs.get("event.name") or ""
                views.append(
                    SpanView(
                        service=service,
                        trace_id=log.trace_id.hex(),
                        span_id=log.span_id.hex(),
                        name=str(name),
                        attributes=attrs,
                        body=any_value(log.body) if log.HasField("body") else None,
                        signal="log",
                    )
                )
    return views


class OtlpProto:
    name = "otlp-proto"

    def sniff(self, head: bytes) -> bool:
        # Field 1 (resource_spans / resource_logs), length-delimited; text never starts with 0x0a.
        return head[:1] == b"\x0a" and _pb() is not None

    def spans(self, data: bytes) -> list[SpanView] | None:
        pb = _pb()
        if pb is None:
            return None
        from google.protobuf.message import DecodeError

        trace_pb2, logs_pb2 = pb
        try:
            traces = trace_pb2.TracesData.FromString(data)
        except DecodeError:
            return None
        views = views_from_traces(traces)
        if views and all(len(v.trace_id) == 32 for v in views):
            return views
        try:
            logs = logs_pb2.LogsData.FromString(data)
        except DecodeError:
            return None
        lviews = views_from_logs(logs)
        return lviews or None


FORMAT = OtlpProto()
