"""OTLP/JSON array attributes: ``{"arrayValue":{"values":[{"doubleValue":0.1},…]}}``.

This is how an OpenTelemetry exporter writes a float-list span attribute (OpenInference
``embedding.embeddings.N.embedding.vector``) and a log body's ``kvlistValue`` → ``arrayValue``
(OpenLLMetry ``gen_ai.choice`` events, formats.md §3.3, §3.6). It is a text-level detector that works
on any dump or log line holding OTLP JSON, escaped or not; it reports the attribute's ``key``. Span
identity for trace files is the trace source's job, not this module's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from scanner.model import Candidate, Record

from ._common import PRECISION_SAMPLE, join_path, precision_of, to_float32

MIN_ITEMS = 16
_Q = rb'\\*"'
_HEAD = re.compile(rb"arrayValue" + _Q + rb"\s*:\s*\{\s*" + _Q + rb"values" + _Q + rb"\s*:\s*\[")
_NUM = rb"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|NaN|-?Infinity"
# One element: {"doubleValue": 0.1} or {"intValue": "3"} (int64 is a JSON string in OTLP/JSON).
_ITEM = re.compile(
    rb"\{\s*"
    + _Q
    + rb"(?:doubleValue|intValue)"
    + _Q
    + rb"\s*:\s*(?:"
    + _Q
    + rb")?("
    + _NUM
    + rb")(?:"
    + _Q
    + rb")?\s*\}"
)
_HOLDER = re.compile(rb"(\w+)" + _Q + rb"\s*:\s*\{\s*" + _Q + rb"$")
_KEY = re.compile(rb"" + _Q + rb"key" + _Q + rb"\s*:\s*" + _Q + rb"([^\"\\]{1,200})" + _Q)
_KEY_WINDOW = 400


class OtlpArrayDetector:
    name = "otlp_array"
    openers = frozenset(("otlp",))

    def may_contain(self, data: bytes) -> bool:
        return b"arrayValue" in data

    def find(self, record: Record) -> Iterator[Candidate]:
        data = record.data
        for head in _HEAD.finditer(data):
            # Number elements hold no ``]``, so the first one closes the values list.
            close = data.find(b"]", head.end())
            end = close if close != -1 else len(data)
            region = data[head.end() : end]
            numbers = _ITEM.findall(region)
            if len(numbers) < MIN_ITEMS or len(numbers) != region.count(b"{"):
                continue  # too short, or a list of strings/kvlists
            values64 = np.array(numbers).astype(np.float64)
            key = _attribute_key(data, head.start())
            yield Candidate(
                values=to_float32(values64),
                encoding="otlp-array",
                start=head.start(),
                end=end + 1 if close != -1 else end,
                json_path=join_path(record.path, key),
                key=key,
                truncated=close == -1,
                precision=precision_of(values64, b",".join(numbers[:PRECISION_SAMPLE])),
            )


def _attribute_key(data: bytes, start: int) -> str | None:
    """The attribute's ``"key"`` when the array is its ``"value"``; else the field holding the array."""
    holder = _HOLDER.search(data, max(0, start - 64), start)
    if holder and holder.group(1) not in (b"value", b"values"):
        return holder.group(1).decode()  # e.g. a log record's "body"
    last = None
    for m in _KEY.finditer(data, max(0, start - _KEY_WINDOW), start):
        last = m
    return last.group(1).decode("utf-8", "replace") if last else None


DETECTOR = OtlpArrayDetector()
