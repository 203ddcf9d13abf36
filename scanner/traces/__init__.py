"""Trace-aware source decoding: OTLP, Jaeger, Zipkin and SDK span dumps become per-attribute Records.

A trace file is one JSON (or protobuf) document in which a vector sits inside a span attribute, an
event attribute or a log body. Scanned as text, the finding would only say "line 1"; decoded, it says
which service, trace, span and attribute leaked it. So a trace-shaped document is decoded here into
:class:`SpanView` objects (one module per format, all behind :class:`TraceFormat` and
:data:`REGISTRY`), and :func:`records_for` turns each span's vector-capable values into Records whose
``context`` carries the span identity. The ordinary detectors then run on those Records unchanged.

Formats only parse structure; everything vector-aware (which values to scan, model-name hints, the
text recorded beside a vector) lives once, in this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np
import orjson

from scanner.model import Candidate, Diagnostic, Record, SourceRef

from .base import SpanView, first_non_space, hex_id

__all__ = [
    "REGISTRY",
    "SpanView",
    "TraceFormat",
    "batch_for",
    "decode",
    "document_records",
    "first_non_space",
    "hex_id",
    "records_for",
]

# A value shorter than this cannot hold a 16-d vector as text; skipping it keeps big spans cheap.
MIN_TEXT = 32
MIN_ITEMS = 16
MAX_DOCUMENT = 256 * 1024 * 1024


class TraceFormat(Protocol):
    """The one interface every trace document format implements."""

    name: str

    def sniff(self, head: bytes) -> bool:
        """Cheap test on the first bytes of a document; False means :meth:`spans` is not worth trying."""
        ...

    def spans(self, data: bytes) -> list[SpanView] | None:
        """Every span/log in the document, or None when the document is not of this format."""
        ...


def _registry() -> tuple[TraceFormat, ...]:
    from . import jaeger, otlp_json, otlp_proto, sdk_spans, zipkin

    return (otlp_json.FORMAT, jaeger.FORMAT, zipkin.FORMAT, sdk_spans.FORMAT, otlp_proto.FORMAT)


REGISTRY: tuple[TraceFormat, ...] = _registry()
"""Tried in order; JSON formats first because their sniff tests are exact, protobuf last."""


def may_be_trace(head: bytes) -> bool:
    return any(fmt.sniff(head) for fmt in REGISTRY)


def decode(data: bytes) -> tuple[str, list[SpanView]] | None:
    """The first format that recognises ``data``, with its spans; None when none does."""
    head = data[:65536]
    for fmt in REGISTRY:
        if not fmt.sniff(head):
            continue
        try:
            views = fmt.spans(data)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            views = None  # malformed for this format: let the next one (or plain text) try
        if views is not None:
            return fmt.name, views
    return None


def document_records(data: bytes, source: SourceRef) -> Iterator[Record | Diagnostic] | None:
    """Records for a whole trace document, or None so the caller scans it as plain text instead."""
    decoded = decode(data)
    if decoded is None:
        return None
    name, views = decoded
    return _with_format(records_for(views, source), name, data)


def _with_format(records: Iterator[Record], name: str, document: bytes) -> Iterator[Record]:
    """Tag each record with its format and, where its bytes appear verbatim in the document (string
    attributes in JSON exports), with the line and offset there, so alerts point into the file."""
    cursors: dict[bytes, int] = {}
    for record in records:
        record.context["trace_format"] = name
        needle = record.data[:96]
        if len(needle) >= 32:
            at = document.find(needle, cursors.get(needle, 0))
            if at >= 0:
                cursors[needle] = at + 1
                record.offset = at
                record.line = document.count(b"\n", 0, at) + 1
        yield record


# Attributes that name the embedding model (OpenInference, Vercel AI SDK, GenAI semconv).
MODEL_KEYS = (
    "embedding.model_name",
    "ai.model.id",
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model_name",
)
_OI_VECTOR = re.compile(r"^(embedding\.embeddings\.\d+\.embedding\.)vector$")


def text_beside(key: str, attributes: dict[str, Any]) -> tuple[str, str] | None:
    """The attribute that records the input text of the vector under ``key``, and that text.

    OpenInference: ``embedding.embeddings.N.embedding.text`` beside ``…N.embedding.vector``.
    Vercel AI SDK: ``ai.value`` beside ``ai.embedding``; ``ai.values[i]`` beside ``ai.embeddings[i]``.
    """
    m = _OI_VECTOR.match(key)
    if m:
        tkey = m.group(1) + "text"
        text = attributes.get(tkey)
    elif key == "ai.embedding":
        tkey, text = "ai.value", attributes.get("ai.value")
    elif key.startswith("ai.embeddings[") and key.endswith("]"):
        index = key[len("ai.embeddings[") : -1]
        values = attributes.get("ai.values")
        tkey = f"ai.values[{index}]"
        text = (
            values[int(index)]
            if isinstance(values, list) and index.isdigit() and int(index) < len(values)
            else None
        )
    else:
        return None
    if isinstance(text, str) and text.strip():
        return tkey, text
    return None


def records_for(views: Iterable[SpanView], source: SourceRef) -> Iterator[Record]:
    """One Record per value that could hold a vector, located by span identity."""
    for key, payload, context in _located(views):
        if isinstance(payload, np.ndarray):
            payload = orjson.dumps(payload.tolist())  # what the detectors read for any other list
        yield Record(data=payload, source=source, nested=True, path=key, context=context)


def batch_for(
    views: Iterable[SpanView], source: SourceRef
) -> tuple[list[Record], list[tuple[Record, Candidate]]]:
    """:func:`records_for`, split for :meth:`Engine.feed_batch`: Records for the detectors, and the
    arrays a decoder already holds as numbers (protobuf doubles), as candidates with their Records."""
    from detectors.numeric_list import array_candidate

    records: list[Record] = []
    decoded: list[tuple[Record, Candidate]] = []
    for key, payload, context in _located(views):
        if isinstance(payload, np.ndarray):
            record = Record(data=b"", source=source, nested=True, path=key, context=context)
            decoded.append((record, array_candidate(payload, key)))
        else:
            records.append(Record(data=payload, source=source, nested=True, path=key, context=context))
    return records, decoded


def _located(views: Iterable[SpanView]) -> Iterator[tuple[str, bytes | np.ndarray, dict[str, Any]]]:
    """Each vector-capable value of each span: its key, its bytes (or float64 array), its context."""
    for view in views:
        attrs = view.attributes
        hints: dict[str, Any] = {}
        for mkey in MODEL_KEYS:
            model = attrs.get(mkey)
            if isinstance(model, str) and model:
                hints["model"] = model
                break
        base: dict[str, Any] = {}
        if view.service:
            base["service.name"] = view.service
        for key, data, event in _vector_values(view):
            span = {"trace_id": view.trace_id, "span_id": view.span_id, "name": view.name, "attribute": key}
            if event is not None:
                span["event"] = event
            if view.signal != "span":
                span["signal"] = view.signal
            context: dict[str, Any] = {**base, "span": span}
            record_hints = dict(hints)
            if event is None:
                beside = text_beside(key, attrs)
                if beside is not None:
                    # The text is evidence for the fingerprinter (a round trip can confirm the model)
                    # and a leak of its own; the pipeline reports it as a second finding.
                    record_hints["text"] = beside[1]
                    context["plaintext"] = {"attribute": beside[0], "chars": len(beside[1])}
            if record_hints:
                context["hints"] = record_hints
            yield key, data, context


def _vector_values(view: SpanView) -> Iterator[tuple[str, bytes | np.ndarray, str | None]]:
    for key, value in view.attributes.items():
        for k, data in _render(key, value):
            yield k, data, None
    for event_name, attrs in view.events:
        for key, value in attrs.items():
            for k, data in _render(key, value):
                yield k, data, event_name
    if view.body is not None:
        for k, data in _render("body", view.body):
            yield k, data, None


def _render(key: str, value: Any) -> Iterator[tuple[str, bytes | np.ndarray]]:
    """The bytes the detectors should see for one attribute value, if it could hold a vector.

    A float64 ndarray (a protobuf array of doubles, see ``otlp_proto.doubles``) is passed through
    as it is: it is the vector already.
    """
    if isinstance(value, str):
        # Rendered as the JSON string it is, so a vector held in a string reads as json-in-string.
        if len(value) >= MIN_TEXT:
            yield key, _dumps(value)
    elif isinstance(value, np.ndarray):
        if value.ndim == 1 and value.size >= MIN_ITEMS:
            yield key, value
    elif isinstance(value, list):
        if not value:
            return
        if all(isinstance(x, str) for x in value):
            # Vercel's ai.embeddings: an array of JSON strings, one vector each.
            for i, item in enumerate(value):
                if len(item) >= MIN_TEXT:
                    yield f"{key}[{i}]", _dumps(item)
        elif len(value) >= MIN_ITEMS or any(isinstance(x, list | dict | np.ndarray) for x in value):
            yield key, _dumps(value)
    elif isinstance(value, dict):
        data = _dumps(value)
        if len(data) >= MIN_TEXT:
            yield key, data


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(value, default=str)
