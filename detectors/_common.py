"""Helpers shared by the detectors: number parsing, precision, and the key a payload sits under."""

from __future__ import annotations

import re

import numpy as np
import orjson

from scanner.model import Diagnostic, Record

# Keys under which real payloads carry vectors (formats.md §0 A, F, G, J).
EMBEDDING_KEY = re.compile(
    rb"(?i)(embed|vector|values?$|^data$|^float$|predicted_value|^content$|^int8$|^uint8$|^u?binary$|^ai\.embeddings?$)"
)

_KEY_BEFORE = re.compile(
    rb"""(?:\\*["']([^"'\\\n]{1,80})\\*["']\s*:|([A-Za-z_][\w.\-]{0,80})\s*[=:])\s*(?:\\*["']|\\+n|\s|[\(\[{])*$"""
)


def key_before(data: bytes, start: int, window: int = 160) -> str | None:
    """The JSON key, ``key=`` or ``key:`` that introduces the payload starting at ``start``."""
    lo = max(0, start - window)
    m = _KEY_BEFORE.search(data, lo, start)
    if not m:
        return None
    raw = m.group(1) or m.group(2)
    return raw.decode("utf-8", "replace")


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
    if values64.size == 0:
        return "unknown"
    finite = values64[np.isfinite(values64)]
    if finite.size == 0:
        return "unknown"
    as32 = finite.astype(np.float32)
    with np.errstate(over="ignore"):
        if np.array_equal(as32.astype(np.float16).astype(np.float32), as32):
            return "fp16"
    if text is not None:
        digits = _mean_significant_digits(text)
        if digits < 5:
            return "low"
        if np.array_equal(as32.astype(np.float64), finite):
            return "f64-widened" if digits >= 14 else "f32"
        return "f64" if digits >= 14 else "f32"
    return "f32" if np.array_equal(as32.astype(np.float64), finite) else "f64"


_DIGITS = re.compile(rb"\d+(?:\.\d+)?")


def _mean_significant_digits(text: bytes, sample: int = 64) -> float:
    counts = []
    for m in _DIGITS.finditer(text, 0, min(len(text), sample * 24)):
        token = m.group().replace(b".", b"").lstrip(b"0")
        counts.append(len(token))
        if len(counts) >= sample:
            break
    return float(np.mean(counts)) if counts else 0.0


def to_float32(values64: np.ndarray) -> np.ndarray:
    """Narrow to float32 without warnings; values beyond float32 range become ±inf (and get judged)."""
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
        end = _A_RUN.match(mapped, pos).end()
        lo, hi = max(0, pos - _BEFORE), min(len(data), end + _AFTER)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
        pos = mapped.find(_NUM_NEEDLE, end)
    result = tuple(out)
    _windows_cache = (data, result)
    return result
