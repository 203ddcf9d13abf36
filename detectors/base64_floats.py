"""Base64 strings that decode to a float vector: float32 little-endian (OpenAI, Voyage, Azure, Chroma),
float32 big-endian (Elasticsearch ``dense_vector`` input and binary doc values), float16 and bfloat16.

Finding long base64 runs with a regex is slow in Python (every position is a new attempt), so the
block is first translated to a two-letter alphabet and scanned with ``bytes.find`` for a long run of
base64 letters, which skips ahead by the needle length on every miss.

Which decoding is right is decided by what the numbers look like (formats.md §0 B/C): the wrong byte
order turns exponent bytes into mantissa bytes, so most values land far outside any embedding's range
(LE-decoding a BE vector gives denormals like 8.8e-44).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterator

import numpy as np

from scanner.model import Candidate, Diagnostic, Record

from ._common import at_window_edge, diagnostic_at, join_path, key_before

MIN_DIM = 64
# float16 at MIN_DIM is the shortest payload we decode: 128 bytes -> 172 base64 letters.
MIN_CHARS = 168
# 16384 float32 values; a longer run is a file or an image, not a vector, and is not decoded.
MAX_CHARS = 87_384
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TABLE = bytes(0x41 if c in _ALPHABET else 0x20 for c in range(256))
_NEEDLE = b"A" * MIN_CHARS
_RUN = re.compile(rb"A+")
_QUOTES = b"\"'"

# Decodings tried, most common first; a tie keeps the earlier one.
_DTYPES = (
    ("base64-f32le", "<f4"),
    ("base64-f32be", ">f4"),
    ("base64-f16le", "<f2"),
    ("base64-bf16be", "bf16>"),
)
# A right decoding has essentially every value in range; a wrong one rarely gets past ~90 %.
_PLAUSIBLE = 0.97
_HEAD = 64


class Base64FloatsDetector:
    name = "base64_floats"
    openers = frozenset(("base64",))

    def may_contain(self, data: bytes) -> bool:
        return len(data) >= MIN_CHARS

    def find(self, record: Record) -> Iterator[Candidate | Diagnostic]:
        data = record.data
        mapped = data.translate(_TABLE)
        pos = mapped.find(_NEEDLE)
        while pos != -1:
            end = _RUN.match(mapped, pos).end()
            pad = 0
            while end + pad < len(data) and data[end + pad] == 0x3D and pad < 2:
                pad += 1
            if end - pos <= MAX_CHARS:
                yield from self._decode(record, pos, data[pos:end], pad)
            pos = mapped.find(_NEEDLE, end + pad)

    def _decode(
        self, record: Record, start: int, letters: bytes, pad: int
    ) -> Iterator[Candidate | Diagnostic]:
        if b"/" in letters and letters.count(b"/") * 8 > len(letters):
            return  # a long path, not a payload
        data = record.data
        stop = start + len(letters) + pad
        decoded = decode(letters)
        if decoded is None:
            return
        encoding, values, leftover = decoded
        # A quoted string that ends without its closing quote was cut (a log shipper's line limit).
        opened = start > 0 and data[start - 1] in _QUOTES
        closed = (stop < len(data) and data[stop] in _QUOTES) or data[stop : stop + 2] == b'\\"'
        truncated = leftover or len(letters) % 4 == 1 or (opened and not closed)
        if truncated and at_window_edge(record, stop):
            return  # the next window of this long line holds it whole
        key = key_before(data, start)
        yield Candidate(
            values=values,
            encoding=encoding,
            start=start,
            end=stop,
            json_path=join_path(record.path, key),
            key=key,
            truncated=truncated,
            precision="fp16" if "16" in encoding else "f32",
        )
        if truncated:
            yield diagnostic_at(
                record,
                start,
                "truncated-base64",
                f"base64 vector cut off after {values.shape[0]} {encoding} values",
            )


def decode(letters: bytes, min_dim: int = MIN_DIM) -> tuple[str, np.ndarray, bool] | None:
    """Decode base64 ``letters`` as the float vector they most plausibly carry.

    Returns (encoding, float32 values, leftover) where ``leftover`` says the byte count was not a
    whole number of values (a cut-off string); None if no decoding looks like a vector.
    """
    letters = letters.rstrip(b"=")
    usable = len(letters) - len(letters) % 4
    try:
        raw = base64.b64decode(letters[:usable] + _tail(letters[usable:]), validate=False)
    except (binascii.Error, ValueError):
        return None
    return _best_decoding(raw, min_dim)


def _tail(rest: bytes) -> bytes:
    """Re-pad a final partial quantum so a cut-off string still decodes as far as it goes."""
    if len(rest) in (2, 3):
        return rest + b"=" * (4 - len(rest))
    return b""


def _best_decoding(raw: bytes, min_dim: int) -> tuple[str, np.ndarray, bool] | None:
    passing: list[tuple[str, np.ndarray, bool, float]] = []
    for encoding, dtype in _DTYPES:
        width = 2 if "16" in encoding else 4
        count = len(raw) // width
        if count < min_dim:
            continue
        chunk = raw[: count * width]
        if dtype == "bf16>":
            halves = np.frombuffer(chunk, dtype=">u2").astype(np.uint32) << 16
            values = halves.view(np.float32)
        else:
            values = np.frombuffer(chunk, dtype=dtype).astype(np.float32)
        plausible, spread = _plausibility(values)
        if plausible >= _PLAUSIBLE:
            passing.append((encoding, values.copy(), len(raw) % width != 0, spread))
    if not passing:
        return None
    # Two readings can both be in range. An fp16-exact float32 vector read as float16 halves stays in
    # range, but its magnitudes spread over many more octaves: the tighter reading wins.
    best = min(passing, key=lambda p: p[3])
    bf16 = next((p for p in passing if p[0] == "base64-bf16be"), None)
    # A bfloat16 vector read as float32 pairs also looks fine (the high half is a real value, the low
    # half only perturbs it), so bfloat16 wins, unless every other half is zero: then it was float32
    # values that happen to be bfloat16-exact (ES's own example, [0.5, 10, 6]).
    if (
        bf16 is not None
        and best[0] == "base64-f32be"
        and np.count_nonzero(bf16[1][1::2]) > bf16[1][1::2].size // 2
    ):
        best = bf16
    return best[0], best[1], best[2]


def _plausibility(values: np.ndarray) -> tuple[float, float]:
    """(share of values that look like embedding components, spread of their magnitudes in octaves).

    Embedding components are finite, rarely below 1e-9 (denormal garbage) and below 1e3 in size.
    Random bytes (tokens, cookies: most base64 in logs) fail within the first values: when those
    alone hold more misfits than a passing reading may have in all, the rest is never looked at.
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        head = np.abs(values[:_HEAD].astype(np.float64))
        misfits = head.size - np.count_nonzero((head == 0) | ((head > 1e-9) & (head < 1e3)))
        if misfits > (1.0 - _PLAUSIBLE) * values.size:
            return 1.0 - misfits / values.size, math.inf  # an upper bound, already below _PLAUSIBLE
        magnitude = np.abs(values.astype(np.float64))
        ok = np.isfinite(magnitude) & ((magnitude == 0) | ((magnitude > 1e-9) & (magnitude < 1e3)))
        share = float(ok.mean())
        nonzero = magnitude[ok & (magnitude > 0)]
        spread = float(np.log2(nonzero).std()) if nonzero.size > 1 else 0.0
    return share, spread


DETECTOR = Base64FloatsDetector()
