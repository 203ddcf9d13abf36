"""The shape every trace format decodes to, and id helpers the format modules share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SpanView:
    """One span or log record, flattened to plain Python values: all a format decoder must produce.

    ``attributes`` hold str/int/float/bool, lists and dicts (OTLP ``kvlistValue`` becomes a dict).
    ``events`` are ``(event name, attributes)``; ``body`` is a log record's body, if any.
    """

    service: str | None
    trace_id: str
    span_id: str
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    body: Any = None
    signal: str = "span"


_HEX = re.compile(r"^[0-9a-fA-F]+$")


def hex_id(value: Any, nbytes: int) -> str:
    """A trace/span id as lowercase hex, whether it came as hex, 0x-hex, base64 or raw bytes."""
    import base64
    import binascii

    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, int):
        return f"{value:0{nbytes * 2}x}"
    if not isinstance(value, str) or not value:
        return ""
    text = value[2:] if value.startswith("0x") else value
    if len(text) == nbytes * 2 and _HEX.match(text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text
    return raw.hex() if len(raw) == nbytes else text


def first_non_space(head: bytes) -> int:
    stripped = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    return stripped[0] if stripped else -1
