"""numpy and torch prints of a vector: ``repr`` (``array([...], dtype=float32)``, ``tensor([...])``) and
``str`` (``[ 0.1 -0.2 ...]``, no commas), one line or wrapped over many.

Above 1000 elements both libraries summarise (formats.md §4.6): only the three edge items on each side
are left around ``...``. The vector cannot be recovered, but the leak is still a leak, so the edge
values are reported with ``truncated`` set, encoding ``numpy-summary``/``torch-summary``, and, when
numpy ≥ 2 printed ``shape=(N,)``, the declared dimension. A 2-D print reports each row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from scanner.model import Candidate, Record

from ._common import (
    at_window_edge,
    bracket_matches,
    call_starts,
    join_path,
    key_before,
    numeric_windows,
    precision_of,
    to_float32,
)

MIN_ITEMS = 16
# A summarised print keeps 3 edge items per side (numpy/torch ``edgeitems`` default).
MIN_EDGE = 2
# Reprs are short (≤1000 printed elements); a longer region is not one of them.
MAX_REPR = 256 * 1024

_NUM = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_HEAD = re.compile(rb"(array|tensor)\(\s*\[")
# The end of a repr: the brackets close, then keyword arguments, then the call's ``)``.
_TAIL = re.compile(
    rb"\]\s*(?:,\s*(?:shape=\(([\d,\s]*)\)|dtype=[\w.]+|device='[^']*'|requires_grad=\w+|grad_fn=<[^>]*>))*\s*\)"
)
_ROW = re.compile(rb"\[([^\[\]]*)\]")
_DTYPE = re.compile(rb"dtype=(?:torch\.)?(\w+)")
# ``str()`` of a vector: numbers separated by whitespace only, in brackets.
_STR = re.compile(rb"\[[ \t]*((?:" + _NUM + rb")(?:\s+(?:" + _NUM + rb"|\.\.\.)){%d,})\s*\]" % (MIN_EDGE * 2))
_TOKEN = re.compile(rb"[^\s,]+")


class NumpyReprDetector:
    name = "numpy_repr"
    openers = frozenset(("str", "call"))

    def may_contain(self, data: bytes) -> bool:
        return bool(numeric_windows(data))

    def find(self, record: Record) -> Iterator[Candidate]:
        data = record.data
        windows = numeric_windows(data)
        for head in _heads(data, windows):
            tail = _TAIL.search(data, head.end(), head.end() + MAX_REPR)
            if tail is None:
                continue
            encoding = "numpy-repr" if head.group(1) == b"array" else "torch-repr"
            declared = _last_dim(tail.group(1))
            dtype = _DTYPE.search(data, tail.start(), tail.end())
            key = key_before(data, head.start())
            rows = list(_ROW.finditer(data, head.end() - 1, tail.start() + 1))
            for row in rows:
                # A 1-D print spans the whole call, so it outranks the plain list inside it.
                start, end = (head.start(), tail.end()) if len(rows) == 1 else (row.start(), row.end())
                cand = _candidate(row.group(1), encoding, start, end, declared, record, key)
                if cand is not None:
                    if dtype is not None:
                        cand.hints["dtype"] = dtype.group(1).decode()
                    yield cand
        for m, _hi in bracket_matches(_STR, data):  # finditer over each numeric window, in one pass
            if at_window_edge(record, m.end()):
                continue
            key = key_before(data, m.start())
            cand = _candidate(m.group(1), "numpy-str", m.start(), m.end(), None, record, key)
            if cand is not None:
                yield cand


def _heads(data: bytes, windows: tuple[tuple[int, int], ...]) -> Iterator[re.Match[bytes]]:
    """``array([``/``tensor([`` openings in the windows, found with ``bytes.find`` (a regex without a
    literal prefix would be tried at every byte)."""
    # The same positions as a find of each word in every window, from the shared opener pass.
    starts = call_starts(data)
    for pos in starts:
        head = _HEAD.match(data, pos)
        if head is not None and (pos == 0 or not (data[pos - 1 : pos].isalnum() or data[pos - 1] == 0x5F)):
            yield head


def _candidate(
    body: bytes,
    encoding: str,
    start: int,
    end: int,
    declared: int | None,
    record: Record,
    key: str | None,
) -> Candidate | None:
    tokens = _TOKEN.findall(body)
    summarised = b"..." in tokens
    numbers = [t for t in tokens if t != b"..."]
    if len(numbers) < (MIN_EDGE * 2 if summarised else MIN_ITEMS):
        return None
    if summarised:
        # A different surface form from a full print: only the edge values survive.
        encoding = "torch-summary" if encoding.startswith("torch") else "numpy-summary"
    try:
        values64 = np.array(numbers).astype(np.float64)
    except ValueError:
        return None
    return Candidate(
        values=to_float32(values64),
        encoding=encoding,
        start=start,
        end=end,
        json_path=join_path(record.path, key),
        key=key,
        truncated=summarised,
        declared_dim=declared if summarised else None,
        precision=precision_of(values64, body),
    )


def _last_dim(shape: bytes | None) -> int | None:
    """The vector length from ``shape=(1536,)`` or ``shape=(2, 1536)``."""
    if not shape:
        return None
    dims = [int(x) for x in re.findall(rb"\d+", shape)]
    return dims[-1] if dims else None


DETECTOR = NumpyReprDetector()
