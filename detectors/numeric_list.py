"""Bracketed, comma-separated number lists: JSON arrays, Python lists, pgvector text, YAML flow lists.

One regex covers every spacing seen in real payloads: ``[0.1,0.2]`` (pgvector, compact JSON),
``[0.1, 0.2]`` (Python repr, ``json.dumps``), one number per line (pretty-printed JSON, Ruby VCR
block scalars), and the ``\\n`` and ``\\`` escapes of JSON folded into YAML double-quoted strings
(LiteLLM and Gemini cassettes). A run that stops without its closing bracket (a log line cut by a
shipper) is still reported, marked truncated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from scanner.model import Candidate, Diagnostic, Record

from ._common import (
    at_window_edge,
    diagnostic_at,
    join_path,
    key_before,
    numeric_windows,
    parse_numbers,
    precision_of,
    sibling_key,
    to_float32,
)

MIN_ITEMS = 16

_WS = rb"(?:[ \t\r\n]|\\[nrt]?)*"
_NUM = rb"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-?(?:nan|NaN|inf|Infinity)"
_ITEM = rb"(?:np\.float(?:16|32|64)\()?(?:" + _NUM + rb")\)?"
_ARRAY = re.compile(
    rb"\["
    + _WS
    + rb"("
    + _ITEM
    + rb"(?:"
    + _WS
    + rb","
    + _WS
    + _ITEM
    + rb"){%d,})" % (MIN_ITEMS - 1)
    + rb"("
    + _WS
    + rb",?"
    + _WS
    + rb"\])?"
)
_ESCAPES = re.compile(rb"\\[nrt]?|np\.float(?:16|32|64)\(|\)")


def _matches(data: bytes) -> Iterator[re.Match[bytes]]:
    for lo, hi in numeric_windows(data):
        yield from _ARRAY.finditer(data, lo, hi)


class NumericListDetector:
    name = "numeric_list"

    def may_contain(self, data: bytes) -> bool:
        return bool(numeric_windows(data))

    def find(self, record: Record) -> Iterator[Candidate | Diagnostic]:
        data = record.data
        prev_end, prev_key = -1, None
        for m in _matches(data):
            body = m.group(1)
            truncated = m.group(2) is None
            if truncated and at_window_edge(record, m.end()):
                continue  # the next window of this long line holds it whole
            multiline = b"\n" in body
            escaped = b"\\" in body or b"np.float" in body
            clean = _ESCAPES.sub(b" ", body) if escaped else body
            values64 = parse_numbers(clean)
            if values64 is None:
                continue
            start = m.start()
            key = key_before(data, start) or sibling_key(data, prev_end, start, prev_key)
            prev_end, prev_key = m.end(), key
            yield Candidate(
                values=to_float32(values64),
                encoding=self._encoding(data, start, m.end(), body, multiline),
                start=start,
                end=m.end(),
                json_path=join_path(record.path, key),
                key=key,
                truncated=truncated,
                precision=precision_of(values64, clean),
            )
            if truncated:
                yield diagnostic_at(
                    record, start, "truncated-array", f"array of {values64.size} numbers ends without ']'"
                )

    @staticmethod
    def _encoding(data: bytes, start: int, end: int, body: bytes, multiline: bool) -> str:
        prev = data[start - 1 : start] if start else b""
        if prev == b'"' or prev == b"\\" or data[max(0, start - 2) : start] == b'\\"':
            # JSON text inside a JSON string (Vercel ``ai.embedding``, Jaeger tags): parsed twice.
            return "json-in-string"
        if multiline or b"\\n" in body:
            return "json-array-pretty"
        if b"np.float" in body:
            return "python-list"
        if b" " not in body and (prev == b"'" or data[max(0, start - 8) : start].endswith(b"vector ")):
            # psql output or a quoted SQL literal; the cast after it says which pgvector type.
            return "pgvector-halfvec" if data[end : end + 12].startswith(b"'::halfvec") else "pgvector"
        if prev in (b"=", b"(") or data[max(0, start - 2) : start] == b"= ":
            return "python-list"
        return "json-array"


DETECTOR = NumericListDetector()
