"""Helpers shared by the detectors: number parsing, precision, and the key a payload sits under."""

from __future__ import annotations

import re
import struct
import threading
from bisect import bisect_right
from collections.abc import Iterator
from itertools import repeat

import numpy as np
import orjson
import simdjson

from scanner.model import Diagnostic, Record

# Keys under which real payloads carry vectors (formats.md §0 A, F, G, J).
EMBEDDING_KEY = re.compile(
    rb"(?i)(embed|vector|values?$|^data$|^float$|predicted_value|^content$|^int8$|^uint8$|^u?binary$|^ai\.embeddings?$)"
)

_KEY_BEFORE = re.compile(
    rb"""(?:\\*["']([^"'\\\n]{1,80})\\*["']\s*:|([A-Za-z_][\w.\-]{0,80})\s*[=:])\s*(?:\\*["']|\\+n|\s|[\(\[{])*$"""
)


def key_before(data: bytes, start: int, window: int = 160) -> str | None:
    """The JSON key, ``key=`` or ``key:`` that introduces the payload starting at ``start``.

    Called once per candidate, so it must be cheap: searching ``_KEY_BEFORE`` over the whole window
    costs ~30 us (an attempt, and backtracking, at every identifier byte). The match has to end at
    ``start``, so we first walk back over what may follow a key (quotes, spaces, brackets, escaped
    ``\\n``) and give up unless ``:`` or ``=`` sits there; then the same regex runs from the
    earliest byte the key could start at. Same answers, tested against the plain search.
    """
    lo = max(0, start - window)
    pos = start
    while pos > lo:
        c = data[pos - 1]
        if c in _SEP_SIMPLE:
            pos -= 1
            if c in _QUOTES:  # \\*["']
                while pos > lo and data[pos - 1] == 0x5C:
                    pos -= 1
        elif c == 0x6E and pos - 1 > lo and data[pos - 2] == 0x5C:  # \\+n
            pos -= 1
            while pos > lo and data[pos - 1] == 0x5C:
                pos -= 1
        else:
            break
    if pos <= lo or data[pos - 1] not in _ASSIGN:
        return None
    q = pos - 1
    while q > lo and data[q - 1] in _SPACES:
        q -= 1
    # The earliest byte a match can start at: a quoted key (no quote, backslash or newline inside,
    # at most 80 bytes, backslashes before either quote) or an identifier of at most 81 bytes.
    k = q
    if data[q - 1] in _QUOTES:
        k = q - 1
        while k > lo and data[k - 1] == 0x5C:
            k -= 1
        stop = k - 81
        while k > lo and k > stop and data[k - 1] not in _NOT_KEY:
            k -= 1
        k -= 1  # the opening quote
        while k > lo and data[k - 1] == 0x5C:
            k -= 1
    else:
        stop = q - 81
        while k > lo and k > stop and data[k - 1] in _IDENT:
            k -= 1
    m = _KEY_BEFORE.search(data, max(lo, k), start)
    if not m:
        return None
    raw = m.group(1) or m.group(2)
    return raw.decode("utf-8", "replace")


_SEP_SIMPLE = frozenset(b"\"' \t\n\r\x0b\x0c([{")
_QUOTES = frozenset(b"\"'")
_ASSIGN = frozenset(b":=")
_SPACES = frozenset(b" \t\n\r\x0b\x0c")
_NOT_KEY = frozenset(b"\"'\\\n")
_IDENT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


_SIBLING_GAP = re.compile(rb"(?:\s|\\n)*,(?:\s|\\n)*")


def sibling_key(data: bytes, prev_end: int, start: int, prev_key: str | None) -> str | None:
    """The key of the previous array when this one is its next sibling (``"int8": [[..], [..]]``).

    ``key_before`` only sees the nearest key; the second row of a list of lists has ``],`` before it.
    """
    if prev_key is None or prev_end < 0 or start - prev_end > 64:
        return None
    gap_start = prev_end + 1 if data[prev_end : prev_end + 1] == b"]" else prev_end
    return prev_key if _SIBLING_GAP.fullmatch(data, gap_start, start) else None


def is_embedding_key(key: str | None) -> bool:
    return bool(key) and bool(EMBEDDING_KEY.search(key.encode()))


def parse_numbers(text: bytes) -> np.ndarray | None:
    """Parse a comma-separated run of numbers (no brackets) into float64; None if any is malformed.

    orjson is ~4x faster than split+float for the common JSON-valid case; the fallback handles
    Python-only spellings such as ``1.`` and ``.5``.
    """
    try:
        return np.asarray(orjson.loads(b"[" + text + b"]"), dtype=np.float64)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        pass
    try:
        return np.array(
            [float(x) for x in text.replace(b"\n", b" ").split(b",") if x.strip()], dtype=np.float64
        )
    except ValueError:
        return None


def precision_of(values64: np.ndarray, text: bytes | None = None) -> str:
    """How the numbers were printed: a strong hint to which model and stack produced them.

    - ``fp16``: every value is exactly representable in float16 (Mistral, Cohere).
    - ``f64-widened``: float32 values printed with float64 digits (``.tolist()``, Pinecone, Ollama).
    - ``f32``: shortest float32 repr (OpenAI float JSON).
    - ``low``: fewer than 5 significant digits (numpy/torch print precision, toy data).
    - ``f64``: genuine float64 values.
    """
    return float32_and_precision(values64, text)[1]


def float32_and_precision(values64: np.ndarray, text: bytes | None = None) -> tuple[np.ndarray, str]:
    """``(to_float32(values64), precision_of(values64, text))`` for the price of one.

    Per vector on the hot path, where every numpy call counts (about a microsecond each whatever the
    size): one dot product (else ``abs().max()``) tells whether all values are finite and within
    float16/float32 range,
    the float32 copy serves both answers, arrays compare as bytes, np.errstate only when needed.
    """
    if values64.size == 0:
        return to_float32(values64), "unknown"
    if values64.dtype is _F64 and float(_DOT(values64, values64)) <= _HALF_SQUARE:
        # The common case in one BLAS call: all finite (NaN or inf would make the sum NaN or inf)
        # and none beyond float16's range (an integer sum could wrap: float64 only). The first value settles "not fp16" for almost every
        # real vector, in Python, before a cast of them all.
        finite = values64
        values32 = as32 = values64.astype(np.float32)
        first = float(as32[0])
        if (
            _HALF.unpack(_HALF.pack(first))[0] == first
            and as32.astype(np.float16).astype(np.float32).tobytes() == as32.tobytes()
        ):
            return values32, "fp16"
    else:
        big = float(_MAX(_ABS(values64)))
        if big < 3.0e38:  # all finite (NaN or inf would make the max NaN or inf), none overflows float32
            finite = values64
            as32 = values64.astype(np.float32)
            values32 = as32
        else:
            values32 = to_float32(values64)
            finite = values64[np.isfinite(values64)]
            if finite.size == 0:
                return values32, "unknown"
            big = float(_MAX(_ABS(finite)))
            as32 = to_float32(finite)
        # Equality of finite arrays as bytes (memcmp) is equality of values here: no NaN, and a cast
        # never flips the sign of a zero. A few leading values settle "not fp16" for almost every
        # real vector, so all are cast only when those pass.
        head = as32[:8]
        if big <= 65504.0:
            if (
                head.astype(np.float16).astype(np.float32).tobytes() == head.tobytes()
                and as32.astype(np.float16).astype(np.float32).tobytes() == as32.tobytes()
            ):
                return values32, "fp16"
        else:
            with np.errstate(over="ignore"):
                if np.array_equal(as32.astype(np.float16).astype(np.float32), as32):
                    return values32, "fp16"
    exact32 = as32.astype(np.float64).tobytes() == finite.tobytes()
    if text is not None:
        digits = _mean_significant_digits(text)
        if digits < 5:
            return values32, "low"
        if exact32:
            return values32, "f64-widened" if digits >= 14 else "f32"
        return values32, "f64" if digits >= 14 else "f32"
    return values32, "f32" if exact32 else "f64"


_MAX = np.maximum.reduce
_ABS = np.abs
_DOT = np.dot
_F64 = np.dtype(np.float64)
_HALF = struct.Struct("<e")
# A sum of squares below this bounds every value well inside float16's range (65504), whatever the
# rounding of the sum.
_HALF_SQUARE = 65000.0**2
_DIGITS = re.compile(rb"\d+(?:\.\d+)?")
_LEADING_ZEROS = re.compile(rb" (0+(?:\.0*)?)")
_DIGITS_AND_DOTS = bytes(c if c in b"0123456789." else 0x20 for c in range(256))


# Eight numbers tell float64 digits (~17) from float32 (~8) and print precision (~4) as well as
# sixty-four do (the same label on every real fixture vector), for a third of the cost per vector.
PRECISION_SAMPLE = 8


def _mean_significant_digits(text: bytes, sample: int = PRECISION_SAMPLE) -> float:
    """Mean significant digits of the first ``sample`` numbers (``0.00123`` has 3).

    Per vector, so the common case avoids a regex pass (``_DIGITS`` costs ~10 ns a byte): every byte
    but digits and dots becomes a space and ``split`` yields the digit runs. When each run is a plain
    ``123`` or ``0.0123`` those runs are exactly ``_DIGITS``' tokens, and stripping leading zeros
    and dots counts the significant digits; anything else (``1.2.3``, ``.5``, ``5.``) takes the regex.
    """
    window = text[: min(len(text), sample * 24)]
    runs = window.translate(_DIGITS_AND_DOTS).split(None, sample)
    del runs[sample:]
    if not runs:
        return 0.0
    joined = b" " + b" ".join(runs) + b" "
    if b"." not in joined or (
        b" ." not in joined and b". " not in joined and b".." not in joined.translate(None, b"0123456789")
    ):
        stripped = b"".join(map(bytes.lstrip, runs, repeat(b"0.", len(runs))))
        return (len(stripped) - stripped.count(b".")) / len(runs)
    tokens = _DIGITS.findall(text, 0, min(len(text), sample * 24))
    del tokens[sample:]
    if not tokens:
        return 0.0
    joined = b" " + b" ".join(tokens)
    digits = len(joined) - len(tokens) - joined.count(b".")
    zeros = b"".join(_LEADING_ZEROS.findall(joined))
    return (digits - len(zeros) + zeros.count(b".")) / len(tokens)


_parsers = threading.local()


def json_numbers(array: bytes) -> np.ndarray | None:
    """A flat JSON array of numbers as float64 (read-only), or None when it does not parse.

    simdjson writes the doubles straight into one buffer: half the cost of orjson's list of Python
    floats and numpy's copy of it, on every vector. A parser serves one document at a time, so each
    thread keeps its own and lets go of the document before returning. The caller makes sure there
    is nothing but numbers between the brackets (simdjson would flatten nested arrays).
    """
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    try:
        doc = parser.parse(array)
    except (ValueError, RuntimeError):  # not JSON, a number out of double range, a 20-digit integer
        return None
    try:
        buffer = doc.as_buffer(of_type="d")
    except (ValueError, TypeError, AttributeError):  # not an array of numbers
        return None
    finally:
        del doc
    return np.frombuffer(buffer, dtype=np.float64)


def to_float32(values64: np.ndarray) -> np.ndarray:
    """Narrow to float32 without warnings; values beyond float32 range become ±inf (and get judged)."""
    if values64.size and float(_MAX(_ABS(values64))) < 3.0e38:
        return values64.astype(np.float32)  # the common case; np.errstate costs more than the cast
    with np.errstate(over="ignore", invalid="ignore"):
        return values64.astype(np.float32)


def join_path(prefix: str, key: str | None) -> str | None:
    """Extend a record's location path with the key a payload sat under."""
    if not key:
        return prefix or None
    return f"{prefix}.{key}" if prefix else key


def at_window_edge(record: Record, end: int) -> bool:
    """True when a payload runs into the overlap tail of a long-line window.

    The next window reports that payload whole, so a detector must not call it truncated or raise a
    diagnostic about it here (the pipeline drops the partial candidate).
    """
    tail = 0 if record.nested else int(record.context.get("overlap_tail", 0))
    return bool(tail) and end >= len(record.data) - tail


def diagnostic_at(record: Record, start: int, kind: str, message: str) -> Diagnostic:
    """A Diagnostic located at byte ``start`` of ``record`` (the container's position if nested)."""
    if record.nested:
        line, offset = record.line, record.offset
    else:
        line, offset = record.line + record.data.count(b"\n", 0, start), record.offset + start
    return Diagnostic(kind, message, record.source.display, line, offset)


# ---- The shared numeric prefilter ------------------------------------------------------------------
# Every text form of a vector (JSON/Python/pgvector lists, pretty-printed or escaped, numpy and torch
# prints, YAML sequences, sparsevec) holds a long run of bytes drawn from this small set. One
# translate + find pass per block locates those runs; the format regexes then run only in windows
# around them instead of over the whole block. At 0.1 % vector lines every 4 MB block holds a few
# dozen vectors, so a per-block yes/no gate alone would save nothing.
MIN_RUN = 32
# ``nplofat()`` lets ``[np.float32(0.1), …]`` (numpy 2 ``list(v)``) form a run too, and ``NIiy`` lets
# NaN/Infinity/inf items; English words that happen to use only these letters cost a regex attempt on
# a short window, nothing more.
_NUMERIC = b"0123456789.,+-eE:\\n \t\r\n" + b"nplofat()" + b"NIiy"
_NUM_TABLE = bytes(0x41 if c in _NUMERIC else 0x20 for c in range(256))
_NUM_NEEDLE = b"A" * MIN_RUN
_A_RUN = re.compile(rb"A+")
# How far before a run a payload may start (``array([[``, ``{``, a YAML ``- - ``), and after it end
# (``], shape=(2, 1536), dtype=float32)``, ``}/384``).
_BEFORE = 64
_AFTER = 128
_windows_cache: tuple[bytes, tuple[tuple[int, int], ...]] | None = None


def numeric_windows(data: bytes) -> tuple[tuple[int, int], ...]:
    """(start, end) byte windows of ``data`` that may hold a text vector, merged and in order.

    Cached for the last block seen, since every text detector asks about the same block in turn.
    """
    global _windows_cache
    cached = _windows_cache
    if cached is not None and cached[0] is data:
        return cached[1]
    mapped = data.translate(_NUM_TABLE)
    out: list[tuple[int, int]] = []
    pos = mapped.find(_NUM_NEEDLE)
    while pos != -1:
        end = mapped.find(b" ", pos)  # the run's end: a one-byte find is memchr, cheaper than a regex
        if end == -1:
            end = len(mapped)
        lo, hi = max(0, pos - _BEFORE), min(len(data), end + _AFTER)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
        pos = mapped.find(_NUM_NEEDLE, end)
    result = tuple(out)
    _windows_cache = (data, result)
    return result


_starts_cache: tuple[tuple[tuple[int, int], ...], list[int]] | None = None


def window_of(windows: tuple[tuple[int, int], ...], pos: int) -> tuple[int, int] | None:
    """The window holding byte ``pos``, if any (windows are disjoint and sorted)."""
    global _starts_cache
    cached = _starts_cache
    if cached is None or cached[0] is not windows:
        cached = (windows, [lo for lo, _ in windows])
        _starts_cache = cached
    i = bisect_right(cached[1], pos) - 1
    if i < 0:
        return None
    lo, hi = windows[i]
    return (lo, hi) if pos < hi else None


def window_finditer(pattern: re.Pattern[bytes], data: bytes) -> Iterator[tuple[re.Match[bytes], int]]:
    """``(m, hi)`` for exactly the matches of ``pattern.finditer(data, lo, hi)`` over every numeric window.

    A block can hold a million windows per GB (a number at the end of one access-log line and an IP
    at the start of the next make a run), and a Python loop over them per detector costs seconds per
    GB. For a pattern that starts with an opener byte (``[``, ``{``) never found inside its own
    matches, one ``finditer`` over the block (sre finds the literal fast) gives the same matches: keep
    those that start in a window; one that runs past its window's end is matched again within it.
    """
    windows = numeric_windows(data)
    if not windows:
        return
    for m in pattern.finditer(data, windows[0][0], windows[-1][1]):
        window = window_of(windows, m.start())
        if window is None:
            continue
        hi = window[1]
        if m.end() <= hi:
            yield m, hi
        else:
            # The window's own finditer tries this opener within the window; no other opener lies
            # between here and the window's end (they would sit inside this match).
            again = pattern.match(data, m.start(), hi)
            if again is not None:
                yield again, hi


def window_find(data: bytes, needle: bytes) -> list[int]:
    """Positions of ``needle`` lying wholly inside a numeric window, in order (one block-wide find)."""
    windows = numeric_windows(data)
    if not windows:
        return []
    out = []
    end = windows[-1][1]
    pos = data.find(needle, windows[0][0], end)
    while pos != -1:
        window = window_of(windows, pos)
        if window is not None and pos + len(needle) <= window[1]:
            out.append(pos)
        pos = data.find(needle, pos + 1, end)
    return out


# Block-wide "[" candidates shared by the bracketed-array detectors (numeric_list, quantized and
# numpy_repr's str() form). Trying each one's regex at every "[" costs ~1 s/GB apiece (logs are
# full of [INFO] and [26/Nov/2026). An array of 16 comma-separated items is a "[" then 15 commas,
# every byte before them one that can sit in such an array; a str() print of 5+ numbers is a "["
# then 9 bytes of digits, signs, dots, nan/inf letters and whitespace. One scan for either (its
# literal "[" found fast) gives the few places where any of those regexes can match.
_LIST_BYTES = rb"0-9.\-+eE \t\r\n\x0b\x0c\\nrtpfloaNiIy()"
_STR_BYTES = rb"0-9.\-+eEnaif \t\r\n\x0b\x0c"
_BRACKET = re.compile(rb"\[(?=(?:[" + _LIST_BYTES + rb"]*,){15}|[" + _STR_BYTES + rb"]{9})")
# Openers of the other window-bound forms, in the same pass: a sparsevec "{" before a digit, and the
# "(" of array(/tensor( (the lookbehind sees bytes before the window, as a find of the word would).
_BRACE = re.compile(rb"\{(?=\d)")
_CALL = re.compile(rb"\((?:(?<=array\()|(?<=tensor\())")
_openers_cache: tuple[bytes, tuple[list[tuple[int, int]], list[tuple[int, int]], list[int]]] | None = None


def _openers(data: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[int]]:
    """``(brackets, braces, calls)`` inside the numeric windows, found by scanning the windows only
    (about a fifth of a log's bytes; a block-wide scan for each opener cost more): brackets and
    braces as ``(pos, window end)``, calls as the position of ``array(``/``tensor(``."""
    global _openers_cache
    cached = _openers_cache
    if cached is not None and cached[0] is data:
        return cached[1]
    brackets: list[tuple[int, int]] = []
    braces: list[tuple[int, int]] = []
    calls: list[int] = []
    # Three scans, each starting with a literal byte that sre finds fast, cost less than one scan for
    # the alternation, which has no literal to look for and is tried at every byte of a vector.
    for lo, hi in numeric_windows(data):
        brackets += [(m.start(), hi) for m in _BRACKET.finditer(data, lo, hi)]
        braces += [(m.start(), hi) for m in _BRACE.finditer(data, lo, hi)]
        for m in _CALL.finditer(data, lo, hi):
            pos = m.start()
            start = pos - 5 if data[pos - 5 : pos] == b"array" else pos - 6
            if start >= lo:  # the whole word inside the window, as a find within it requires
                calls.append(start)
    result = (brackets, braces, calls)
    _openers_cache = (data, result)
    return result


def bracket_starts(data: bytes) -> list[tuple[int, int]]:
    """``(pos, hi)``: each "[" inside a numeric window where a 16-item list or a 5-number str() print
    may start, with its window's end (the ``endpos`` a per-window ``finditer`` would use)."""
    return _openers(data)[0]


def call_starts(data: bytes) -> list[int]:
    """Positions of ``array(`` and ``tensor(`` lying wholly inside a numeric window, in order."""
    return _openers(data)[2]


def brace_matches(pattern: re.Pattern[bytes], data: bytes) -> Iterator[tuple[re.Match[bytes], int]]:
    """Like :func:`bracket_matches`, for a pattern that starts with "{" then a digit, with no "{"
    inside its matches (sparsevec)."""
    for pos, hi in _openers(data)[1]:
        m = pattern.match(data, pos, hi)
        if m is not None:
            yield m, hi


def bracket_matches(pattern: re.Pattern[bytes], data: bytes) -> Iterator[tuple[re.Match[bytes], int]]:
    """``(m, hi)`` for exactly the matches of ``pattern.finditer(data, lo, hi)`` over every numeric
    window, for a pattern that starts with "[", holds no "[" inside, and can only match where
    :func:`bracket_starts` says one may start."""
    for pos, hi in bracket_starts(data):
        m = pattern.match(data, pos, hi)
        if m is not None:
            yield m, hi
