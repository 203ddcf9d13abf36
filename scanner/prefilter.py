"""One compiled pass per block that says where a vector payload can be, so detectors read kilobytes,
not megabytes.

Each detector has a cheap pure-Python gate of its own, but each gate is another full pass over the
block (a translate, a regex scan), and passes add up to seconds per gigabyte. Hyperscan matches every
payload opener at once, in compiled SIMD code, in well under a second per gigabyte. The detectors
then run unchanged on small windows around the hits.

The patterns are a superset of what the detectors match: every detector match starts with one of
them (``tests/test_prefilter.py`` holds the detectors' own test inputs to that). Without Hyperscan
(``pip install hyperscan``; x86-64 and arm64 wheels) :func:`scan` returns None and the pipeline
scans whole blocks as before: slower, same findings.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any, NamedTuple

IGNORE_MARKER = b"vecleak:ignore"

# Bytes that may sit between "[" and each comma of a 16-item list (numbers, signs, exponents, NaN and
# inf spellings, np.float32(...) wrappers, whitespace and the \n escapes of JSON folded into YAML).
_LIST = rb"0-9.\-+eE \t\r\n\x0b\x0c\\nrtpfloaNiIy()"
_WS = rb"[ \t\r\n\\nrt]*"
_FLOAT = rb"(?:np\.float\d\d\()?-?(?:\d*\.\d|\d+\.|nan|NaN|inf|Inf)"
_INT = rb"(?:np\.float\d\d\()?-?\d+\)?"
_PATTERNS: tuple[tuple[str, bytes], ...] = (
    # Float lists (JSON, Python, pgvector, numpy repr rows): 16 items, one of the first two with a
    # decimal point or a NaN/inf spelling. Integer lists (histograms, ids) open no window...
    (
        "list",
        rb"\["
        + _WS
        + rb"(?:"
        + _FLOAT
        + rb"|"
        + _INT
        + _WS
        + rb","
        + _WS
        + _FLOAT
        + rb")(?:["
        + _LIST
        + rb"]*,){14}",
    ),
    # ...unless they are long enough to be a quantised embedding (the quantized detector's minimum).
    ("ints", rb"\[\s*-?\d+(?:\s*,\s*-?\d+){47}"),
    ("str", rb"\[[ \t]*-?\d*\.\d+(?:[eE][-+]?\d+)?[ \t\r\n]+-?\d*\.\d"),  # numpy str(): "[ 0.1 -0.2 ..."
    ("yaml", rb"\n[ \t]*- -?\d+\.\d+[ \t]*\r?\n[ \t]*- -?\d"),  # YAML block lists, one number a line
    ("call", rb"(?:array|tensor)\("),  # numpy/torch reprs, summarised ones too
    ("otlp", rb"arrayValue"),
    ("vcr", rb"!!binary"),
    ("sparse", rb"\{\d+:"),
    # Not a payload: the pipeline's suppression marker, found in this pass rather than by a search
    # of its own over every block (a quarter of a second per gigabyte).
    ("marker", re.escape(IGNORE_MARKER)),
)
# Base64 runs get a database of their own whose callback stops the scan at each run: the scan then
# resumes after the run, so a 16 KB base64 vector costs one callback, not sixteen thousand.
_BASE64 = rb"[A-Za-z0-9+/]{168}"
_B64_RUN = re.compile(rb"[A-Za-z0-9+/]*={0,2}")

BEFORE = 256  # key_before looks back 160 bytes for the key a payload sits under
AFTER = 160  # numpy's "], shape=(2, 1536), dtype=float32)", a sparsevec's "}/384"
MAX_PAYLOAD = 1 << 20  # a window around an unclosed "[" ends here; a 4096-d float64 list is ~100 KB
_CONTINUATION = frozenset(b" \t]}),-")

_engine: Any = None
_lock = threading.Lock()


def available() -> bool:
    return _load() is not None


def _load() -> Any:
    global _engine
    if _engine is None:
        try:
            import hyperscan
        except ImportError:
            _engine = False
            return None
        try:
            main = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            main.compile(
                expressions=[p for _, p in _PATTERNS],
                ids=list(range(len(_PATTERNS))),
                elements=len(_PATTERNS),
                flags=[0] * len(_PATTERNS),
            )
            b64 = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            b64.compile(expressions=[_BASE64], ids=[0], elements=1, flags=[0])
        except hyperscan.error:  # e.g. a CPU without the instructions the library needs
            _engine = False
            return None
        _engine = (main, b64, hyperscan.ScanTerminated)
    return _engine or None


class Hits(NamedTuple):
    """What one pass over a block found."""

    windows: list[tuple[int, int, frozenset[str]]]
    """Sorted, disjoint ``(start, end, kinds)`` windows that hold every payload, with the kinds of
    hit inside each."""
    markers: list[int]
    """Offsets of every ``vecleak:ignore`` marker."""


def scan(data: bytes) -> Hits | None:
    """Windows and markers of ``data``; None when Hyperscan is not installed (scan the whole block)."""
    engine = _load()
    if engine is None:
        return None
    # A database's scratch space serves one scan at a time: pipelines in several threads take turns.
    with _lock:
        return _scan(data, engine)


def _scan(data: bytes, engine: Any) -> Hits:
    main, b64, terminated = engine
    view = memoryview(data)
    spans: list[tuple[int, int, str]] = []
    markers: list[int] = []
    hits: list[tuple[int, int]] = []

    def on_match(kind: int, _start: int, end: int, _flags: int, _ctx: Any) -> None:
        hits.append((kind, end))

    main.scan(view, match_event_handler=on_match)
    n = len(data)
    for kind, end in hits:
        name = _PATTERNS[kind][0]
        if name == "marker":
            markers.append(end - len(IGNORE_MARKER))
        elif name in ("list", "ints", "str"):
            start = data.rfind(b"[", 0, end)
            close = data.find(b"]", end, min(n, end + MAX_PAYLOAD))
            spans.append((start, (close if close != -1 else min(n, end + MAX_PAYLOAD)) + 1, name))
        elif name == "call":
            start = end - 7
            close = data.find(
                b")", data.find(b"]", end, min(n, end + MAX_PAYLOAD)) + 1, min(n, end + MAX_PAYLOAD)
            )
            spans.append((start, close + 1 if close != -1 else min(n, end + MAX_PAYLOAD), name))
        elif name in ("otlp", "sparse"):
            close = data.find(b"}" if name == "sparse" else b"]", end, min(n, end + MAX_PAYLOAD))
            spans.append((end - 10, close + 1 if close != -1 else min(n, end + MAX_PAYLOAD), name))
        else:  # yaml and vcr: an indented block that runs until a line no longer continues it
            start = data.rfind(b"\n", 0, end - 1) + 1 if name == "yaml" else end - 8
            spans.append((start, _block_end(data, end), name))
    spans.extend(_base64_runs(data, view, b64, terminated))
    if not spans:
        return Hits([], markers)
    spans.sort()
    merged: list[tuple[int, int, frozenset[str]]] = []
    for start, end, kind in spans:
        lo, hi = max(0, start - BEFORE), min(n, end + AFTER)
        # End on a line end (within reason), so a window never cuts through the middle of a
        # neighbouring payload and reports it as cut off.
        eol = data.find(b"\n", hi, min(n, hi + 4096))
        hi = n if eol == -1 and n - hi < 4096 else (eol + 1 if eol != -1 else hi)
        if merged and lo <= merged[-1][1]:
            last_lo, last_hi, last_kinds = merged[-1]
            merged[-1] = (last_lo, max(hi, last_hi), last_kinds | {kind})
        else:
            merged.append((lo, hi, frozenset((kind,))))
    return Hits(merged, markers)


def _base64_runs(
    data: bytes, view: memoryview, db: Any, terminated: type[Exception]
) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    found: list[int] = []

    def on_match(_kind: int, _start: int, end: int, _flags: int, _ctx: Any) -> bool:
        found.append(end)
        return True  # stop: the run's end is found below, and the scan resumes there

    pos = 0
    n = len(data)
    while pos < n:
        found.clear()
        with contextlib.suppress(terminated):  # raised when the callback stops the scan
            db.scan(view[pos:], match_event_handler=on_match)
        if not found:
            break
        start = pos + found[0] - 168
        end = _B64_RUN.match(data, start).end()
        runs.append((start, end, "base64"))
        pos = end + 1
    return runs


def _block_end(data: bytes, pos: int) -> int:
    """End of the line holding ``pos`` and of every following line that continues it (indented, or a
    closing bracket): a pretty-printed array, a YAML list, a ``!!binary`` block scalar."""
    n = len(data)
    limit = min(n, pos + MAX_PAYLOAD)
    nl = data.find(b"\n", pos, limit)
    while nl != -1 and nl + 1 < limit and data[nl + 1] in _CONTINUATION:
        nl = data.find(b"\n", nl + 1, limit)
    return limit if nl == -1 else nl + 1
