"""Replace vectors in OTLP payloads with a marker and their hash, so they never reach the trace store.

Redaction is structural, not a judgement: any numeric array of at least ``MIN_DIM`` values (an
``arrayValue``, a JSON-list string such as Vercel's ``ai.embedding``, or a list embedded in a longer
string such as ``output.value``) is replaced. Over-redacting a 16+ number array that was not an
embedding costs a debug detail; under-redacting leaks a user's input. The marker keeps the SHA-256
(of little-endian float32, the same hash alerts carry) and the dimension, so an alert and the redacted
span can still be tied together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from detectors import MIN_DIM
from detectors.numeric_list import DETECTOR as NUMERIC_LIST
from scanner.model import Record, SourceRef, vector_sha256

_SOURCE = SourceRef(kind="otlp", display="redact", identity="redact")


def marker(values: np.ndarray) -> str:
    return f"[vecleak:redacted sha256={vector_sha256(values)} dim={int(values.shape[0])}]"


def _numeric(items: list[Any]) -> np.ndarray | None:
    if len(items) < MIN_DIM:
        return None
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in items):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(items, dtype=np.float64).astype(np.float32)


def redact_text(text: str) -> tuple[str, int]:
    """The text with every embedded numeric list of MIN_DIM+ values replaced; and how many were."""
    if len(text) < 2 * MIN_DIM or "[" not in text:
        return text, 0
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            values = _numeric(orjson.loads(stripped))
        except (orjson.JSONDecodeError, TypeError):
            values = None
        if values is not None:
            return marker(values), 1
    data = text.encode("utf-8", "surrogatepass")
    spans = [
        (c.start, c.end, c.values)
        for c in NUMERIC_LIST.find(Record(data=data, source=_SOURCE))
        if c.values.shape[0] >= MIN_DIM and not c.truncated
    ]
    if not spans:
        return text, 0
    out = bytearray(data)
    for start, end, values in sorted(spans, reverse=True):
        out[start:end] = marker(values).encode()
    return out.decode("utf-8", "surrogatepass"), len(spans)


# ---- OTLP/JSON -------------------------------------------------------------------------------------


def redact_json(doc: Any) -> int:
    """Redact an OTLP/JSON document in place; returns the number of vectors replaced."""
    count = 0
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("value", "body") and isinstance(value, dict):
                    count += _redact_any_json(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(x for x in node if isinstance(x, dict | list))
    return count


def _redact_any_json(v: dict[str, Any]) -> int:
    if "stringValue" in v and isinstance(v["stringValue"], str):
        v["stringValue"], n = redact_text(v["stringValue"])
        return n
    if "arrayValue" in v:
        items = (v.get("arrayValue") or {}).get("values") or []
        plain = [_scalar_json(x) for x in items]
        values = _numeric(plain)
        if values is not None:
            v.clear()
            v["stringValue"] = marker(values)
            return 1
        return sum(_redact_any_json(x) for x in items if isinstance(x, dict))
    if "kvlistValue" in v:
        return sum(
            _redact_any_json(kv["value"])
            for kv in (v.get("kvlistValue") or {}).get("values") or []
            if isinstance(kv, dict) and isinstance(kv.get("value"), dict)
        )
    return 0


def _scalar_json(x: Any) -> Any:
    if isinstance(x, dict):
        if "doubleValue" in x:
            return x["doubleValue"]
        if "intValue" in x:
            try:
                return int(x["intValue"])
            except (TypeError, ValueError):
                return None
    return None


# ---- OTLP protobuf ---------------------------------------------------------------------------------


def redact_proto(msg: Any) -> int:
    """Redact an Export{Trace,Logs}ServiceRequest (or TracesData/LogsData) in place."""
    count = 0
    for rs in getattr(msg, "resource_spans", ()):
        for ss in rs.scope_spans:
            for span in ss.spans:
                count += sum(_redact_any_proto(kv.value) for kv in span.attributes)
                for ev in span.events:
                    count += sum(_redact_any_proto(kv.value) for kv in ev.attributes)
    for rl in getattr(msg, "resource_logs", ()):
        for sl in rl.scope_logs:
            for log in sl.log_records:
                count += sum(_redact_any_proto(kv.value) for kv in log.attributes)
                if log.HasField("body"):
                    count += _redact_any_proto(log.body)
    return count


def _redact_any_proto(v: Any) -> int:
    which = v.WhichOneof("value")
    if which == "string_value":
        v.string_value, n = redact_text(v.string_value)
        return n
    if which == "array_value":
        items = v.array_value.values
        plain = [_scalar_proto(x) for x in items]
        values = _numeric(plain)
        if values is not None:
            v.string_value = marker(values)  # setting the oneof clears the array
            return 1
        return sum(_redact_any_proto(x) for x in items)
    if which == "kvlist_value":
        return sum(_redact_any_proto(kv.value) for kv in v.kvlist_value.values)
    return 0


def _scalar_proto(x: Any) -> Any:
    which = x.WhichOneof("value")
    if which in ("double_value", "int_value"):
        return getattr(x, which)
    return None
