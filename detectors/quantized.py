"""Quantised embeddings: lists of small integers under an embedding-like key.

Cohere ``embeddings_by_type`` (``int8``, ``uint8``, ``binary``, ``ubinary``), Voyage/Mistral
``output_dtype``, Titan v2 ``embeddingsByType.binary``, Elasticsearch ``element_type: byte``
(formats.md §0 J). A list of integers is a histogram or a list of ids far more often than a vector,
so one only counts here when its key says embedding; everywhere else :mod:`numeric_list` reports it
and the classifier turns it down. Packed binary types carry 8 dimensions per integer: the candidate
keeps the integers as its values and declares the unpacked dimension.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from scanner.model import Candidate, Record

from ._common import bracket_matches, join_path, key_before, numeric_windows, sibling_key

# A quantised embedding is long: 48 bytes is a 384-d binary vector, the smallest common one. Shorter
# integer lists are histograms and ids, which are everywhere in logs.
MIN_ITEMS = 48
_ARRAY = re.compile(
    rb"\[(?:\s|\\n)*(-?\d{1,3}(?:(?:\s|\\n)*,(?:\s|\\n)*-?\d{1,3}){%d,})(?:\s|\\n)*\]" % (MIN_ITEMS - 1)
)
# Keys that name the quantised type itself; the encoding is the key.
_TYPED = {"int8": "int8", "uint8": "uint8", "binary": "binary", "ubinary": "ubinary"}
# Keys that say "embedding" without a type; the value range decides int8 or uint8. Not ``values`` or
# ``data``: integer lists under those are usually counts.
_GENERIC = re.compile(r"(?i)(embed|vector|^byte$)")


class QuantizedDetector:
    name = "quantized"
    openers = frozenset(("ints",))

    def may_contain(self, data: bytes) -> bool:
        return bool(numeric_windows(data))

    def find(self, record: Record) -> Iterator[Candidate]:
        data = record.data
        prev_end, prev_key = -1, None
        for m, _hi in bracket_matches(_ARRAY, data):  # finditer over each numeric window, in one pass
            key = key_before(data, m.start()) or sibling_key(data, prev_end, m.start(), prev_key)
            prev_end, prev_key = m.end(), key
            encoding = _encoding_for(key)
            if encoding is None:
                continue
            ints = np.array(re.findall(rb"-?\d+", m.group(1)), dtype=np.int64)
            lo, hi = int(ints.min()), int(ints.max())
            if encoding == "generic":
                if lo >= -128 and hi <= 127:
                    encoding = "int8"
                elif lo >= 0 and hi <= 255:
                    encoding = "uint8"
                else:
                    continue
            elif not _in_range(encoding, lo, hi):
                continue
            packed = encoding in ("binary", "ubinary")
            yield Candidate(
                values=ints.astype(np.float32),
                encoding=encoding,
                start=m.start(),
                end=m.end(),
                json_path=join_path(record.path, key),
                key=key,
                declared_dim=ints.size * 8 if packed else None,
                precision=encoding,
                hints={"packed_bits": True} if packed else {},
            )


def _in_range(encoding: str, lo: int, hi: int) -> bool:
    if encoding in ("int8", "binary"):
        return lo >= -128 and hi <= 127
    return lo >= 0 and hi <= 255


def _encoding_for(key: str | None) -> str | None:
    if not key:
        return None
    typed = _TYPED.get(key.lower())
    if typed:
        return typed
    return "generic" if _GENERIC.search(key) else None


DETECTOR = QuantizedDetector()
