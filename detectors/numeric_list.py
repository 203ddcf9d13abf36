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

import numpy as np
import orjson

from scanner.model import Candidate, Diagnostic, Record

from ._common import (
    PRECISION_SAMPLE,
    at_window_edge,
    bracket_matches,
    diagnostic_at,
    float32_and_precision,
    join_path,
    json_numbers,
    key_before,
    numeric_windows,
    parse_numbers,
    sibling_key,
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


# Within each window, trying ``_ARRAY`` at every ``[`` still costs seconds per GB: logs are full of
# short lists (top-5 scores, ``shape=[1, 384]``) that it matches item by item before failing. A match
# is a ``[`` then at least MIN_ITEMS - 1 commas, every byte before the last of them one that can sit
# inside a match. ``_START`` says just that; its literal ``[`` is found by a fast C scan and it fails
# within a few bytes everywhere but at a real array, so ``_ARRAY`` (or orjson) runs only there.
_INNER = rb"0-9.\-+eE \t\r\n\\nrtpfloaNiIy()"
_START = re.compile(rb"\[(?:[" + _INNER + rb"]*,){%d}" % (MIN_ITEMS - 1))
_STRIP = b" \t\r\n"
_SMALL = 64 * 1024


class _Parsed:
    """What ``_ARRAY.match`` would return for a closed array of plain JSON numbers, already parsed."""

    __slots__ = ("_start", "_end", "_body", "values")

    def __init__(self, start: int, end: int, body: bytes, values: np.ndarray) -> None:
        self._start, self._end, self._body, self.values = start, end, body, values

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end

    def group(self, index: int) -> bytes:
        return self._body if index == 1 else b"]"


def _matches(data: bytes, windowed: bool = False) -> Iterator[re.Match[bytes] | _Parsed]:
    """Every ``_ARRAY`` match of ``finditer`` over each numeric window, found the cheap way."""
    # _START's matches are whole runs of array bytes after a "[", with no "[" inside; an array
    # match starting there ends after the prefilter's own, so the next one starts further on.
    if not windowed and len(data) > _SMALL:
        for s, hi in bracket_matches(_START, data):
            m = _parsed(data, s.start(), hi) or _ARRAY.match(data, s.start(), hi)
            if m is not None:
                yield m
        return
    # A prefilter window (a few kilobytes around one array, or a run of vector lines) or a small
    # record: the block-wide shortcut (numeric windows, then their "[" openers) costs more here than
    # trying _START at each "[". Neither match holds a "[", so the next "[" is looked for (memchr)
    # after the array, not through it.
    n = len(data)
    pos = data.find(b"[")
    while pos != -1:
        s = _START.match(data, pos)
        if s is None:
            pos = data.find(b"[", pos + 1)
            continue
        m = _parsed(data, pos, n) or _ARRAY.match(data, pos, n)
        if m is not None:
            yield m
        pos = data.find(b"[", max(s.end(), m.end() if m is not None else 0))


def _parsed(data: bytes, start: int, hi: int) -> _Parsed | None:
    """The common case without the regex: ``[`` plain JSON numbers ``]``, parsed in C.

    With no quote, brace, inner bracket, ``u`` or ``s`` (true, false, null) between the brackets,
    whatever a JSON parser accepts is a flat list of JSON numbers and JSON whitespace: exactly the
    items the regex would match, closing bracket included. One memchr per test, then one C parse.
    """
    close = data.find(b"]", start, hi)
    if close == -1:
        return None
    chunk = data[start : close + 1]
    if b'"' in chunk or b"{" in chunk or chunk.find(b"[", 1) >= 0 or b"u" in chunk or b"s" in chunk:
        return None
    values = json_numbers(chunk)
    if values is None or values.size < MIN_ITEMS:
        return None  # the regex sees the same items (too few, or one out of range) and decides
    return _Parsed(start, close + 1, chunk[1:-1].strip(_STRIP), values)


class NumericListDetector:
    name = "numeric_list"
    openers = frozenset(("list", "ints"))

    def may_contain(self, data: bytes) -> bool:
        return bool(numeric_windows(data))

    def find(self, record: Record) -> Iterator[Candidate | Diagnostic]:
        data = record.data
        prev_end, prev_key = -1, None
        for m in _matches(data, record.windowed):
            plain = isinstance(m, _Parsed)  # JSON numbers only: no escapes, no np.float
            if plain:  # its fields, without four method calls per vector
                body, truncated, start, end = m._body, False, m._start, m._end
            else:
                body, truncated, start, end = m.group(1), m.group(2) is None, m.start(), m.end()
            if truncated and at_window_edge(record, end):
                continue  # the next window of this long line holds it whole
            multiline = b"\n" in body
            if plain:
                clean, values64 = body, m.values
            else:
                escaped = b"\\" in body or b"np.float" in body
                clean = _ESCAPES.sub(b" ", body) if escaped else body
                values64 = parse_numbers(clean)
                if values64 is None:
                    continue
            key = key_before(data, start) or sibling_key(data, prev_end, start, prev_key)
            prev_end, prev_key = end, key
            values32, precision = float32_and_precision(values64, clean)
            yield Candidate(
                values=values32,
                encoding=self._encoding(data, start, end, body, multiline, plain),
                start=start,
                end=end,
                json_path=join_path(record.path, key),
                key=key,
                truncated=truncated,
                precision=precision,
            )
            if truncated:
                yield diagnostic_at(
                    record, start, "truncated-array", f"array of {values64.size} numbers ends without ']'"
                )

    @staticmethod
    def _encoding(
        data: bytes, start: int, end: int, body: bytes, multiline: bool, plain: bool = False
    ) -> str:
        prev = data[start - 1 : start] if start else b""
        if prev == b'"' or prev == b"\\" or data[max(0, start - 2) : start] == b'\\"':
            # JSON text inside a JSON string (Vercel ``ai.embedding``, Jaeger tags): parsed twice.
            return "json-in-string"
        # A plain body (JSON numbers only) holds no "\\n" or "np.float": skip two 8 KB scans.
        if multiline or (not plain and b"\\n" in body):
            return "json-array-pretty"
        if not plain and b"np.float" in body:
            return "python-list"
        if b" " not in body and (prev == b"'" or data[max(0, start - 8) : start].endswith(b"vector ")):
            # psql output or a quoted SQL literal; the cast after it says which pgvector type.
            return "pgvector-halfvec" if data[end : end + 12].startswith(b"'::halfvec") else "pgvector"
        if prev in (b"=", b"(") or data[max(0, start - 2) : start] == b"= ":
            return "python-list"
        return "json-array"


DETECTOR = NumericListDetector()


def array_candidate(values64: np.ndarray, path: str) -> Candidate:
    """The candidate this detector would report for ``orjson.dumps(values64.tolist())`` at ``path``.

    For sources that hold the numbers already (a protobuf ``ArrayValue`` of doubles): the same
    values, encoding, path and precision as the text round trip, without printing and re-parsing
    every number. Precision reads only the first numbers' printed digits, so only those are printed.
    """
    values32, precision = float32_and_precision(values64, orjson.dumps(values64[:PRECISION_SAMPLE].tolist()))
    return Candidate(
        values=values32,
        encoding="json-array",
        start=0,
        end=0,  # no text was printed; nothing downstream reads a nested record's byte range
        json_path=path or None,
        key=None,
        precision=precision,
    )
