"""Base64 strings that decode to a float vector: float32 little-endian (OpenAI, Voyage, Azure, Chroma),
float32 big-endian (Elasticsearch ``dense_vector`` input and binary doc values), float16 and bfloat16.

Finding long base64 runs with a regex is slow in Python (every position is a new attempt), so the
block is first translated to a two-letter alphabet and scanned with ``bytes.find`` for a long run of
base64 letters, which skips ahead by the needle length on every miss.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

import numpy as np

from scanner.model import Candidate, Diagnostic, Record

from ._common import join_path, key_before

MIN_DIM = 64
# float16 at MIN_DIM is the shortest payload we decode: 128 bytes -> 172 base64 letters.
MIN_CHARS = 168
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TABLE = bytes(0x41 if c in _ALPHABET else 0x20 for c in range(256))
_NEEDLE = b"A" * MIN_CHARS
_RUN = re.compile(rb"A+")

# Decodings tried, most common first; a tie keeps the earlier one.
_DTYPES = (
    ("base64-f32le", "<f4"),
    ("base64-f32be", ">f4"),
    ("base64-f16le", "<f2"),
    ("base64-bf16be", "bf16>"),
)


class Base64FloatsDetector:
    name = "base64_floats"

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
            result = self._decode(record, pos, data[pos:end], pad)
            if result is not None:
                yield result
            pos = mapped.find(_NEEDLE, end + pad)

    def _decode(self, record: Record, start: int, letters: bytes, pad: int) -> Candidate | Diagnostic | None:
        if b"/" in letters and letters.count(b"/") * 8 > len(letters):
            return None  # a long path, not a payload
        usable = len(letters) - len(letters) % 4
        truncated = len(letters) % 4 == 1
        try:
            raw = base64.b64decode(letters[:usable] + _tail(letters[usable:]), validate=False)
        except (binascii.Error, ValueError):
            return None
        best = _best_decoding(raw)
        if best is None:
            return None
        encoding, values, leftover = best
        if leftover:
            truncated = True
        candidate = Candidate(
            values=values,
            encoding=encoding,
            start=start,
            end=start + len(letters) + pad,
            key=key_before(record.data, start),
            truncated=truncated,
            precision="fp16" if "16" in encoding else "f32",
        )
        candidate.json_path = join_path(record.path, candidate.key)
        return candidate


def _tail(rest: bytes) -> bytes:
    """Re-pad a final partial quantum so a cut-off string still decodes as far as it goes."""
    if len(rest) in (2, 3):
        return rest + b"=" * (4 - len(rest))
    return b""


def _best_decoding(raw: bytes) -> tuple[str, np.ndarray, bool] | None:
    best: tuple[float, str, np.ndarray, bool] | None = None
    for encoding, dtype in _DTYPES:
        width = 2 if "16" in dtype else 4
        count = len(raw) // width
        if count < MIN_DIM:
            continue
        chunk = raw[: count * width]
        if dtype == "bf16>":
            halves = np.frombuffer(chunk, dtype=">u2").astype(np.uint32) << 16
            values = halves.view(np.float32)
        else:
            values = np.frombuffer(chunk, dtype=dtype).astype(np.float32)
        score = _plausibility(values)
        if best is None or score > best[0]:
            best = (score, encoding, values.copy(), len(raw) % width != 0)
    if best is None or best[0] < 0.9:
        return None
    return best[1], best[2], best[3]


def _plausibility(values: np.ndarray) -> float:
    """Share of values that look like embedding components: finite, not denormal, not huge."""
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(values)
        ok = np.isfinite(values) & ((magnitude == 0) | ((magnitude > 1e-9) & (magnitude < 1e3)))
    return float(ok.mean())


DETECTOR = Base64FloatsDetector()
