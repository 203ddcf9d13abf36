"""pgvector ``sparsevec`` text: ``{1:0.1,3:0.2,5:0.3}/5`` (1-based indices, then the dimension).

The vector is expanded to its dense form so that it hashes, and is judged, like any other; the
classifier turns down the mostly-zero, all-positive ones (term weights, not embeddings).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from scanner.model import Candidate, Record

from ._common import brace_matches, join_path, key_before, numeric_windows, precision_of, to_float32

MIN_ITEMS = 16
# pgvector caps sparsevec at 1e9 dimensions; anything above what a dense model emits is not expanded.
MAX_DIM = 65536
_NUM = rb"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SPARSE = re.compile(
    rb"\{(\d+:(?:" + _NUM + rb")(?:,\s*\d+:(?:" + _NUM + rb")){%d,})\}/(\d+)" % (MIN_ITEMS - 1)
)


class SparsevecDetector:
    name = "sparsevec"
    openers = frozenset(("sparse",))

    def may_contain(self, data: bytes) -> bool:
        return bool(numeric_windows(data))

    def find(self, record: Record) -> Iterator[Candidate]:
        data = record.data
        for m, _hi in brace_matches(_SPARSE, data):  # finditer over each numeric window, in one pass
            dim = int(m.group(2))
            pairs = [p.split(b":") for p in m.group(1).replace(b" ", b"").split(b",")]
            index = np.array([int(i) for i, _ in pairs], dtype=np.int64) - 1
            if dim > MAX_DIM or index.min() < 0 or index.max() >= dim:
                continue
            values64 = np.zeros(dim, dtype=np.float64)
            values64[index] = np.array([v for _, v in pairs]).astype(np.float64)
            key = key_before(data, m.start())
            yield Candidate(
                values=to_float32(values64),
                encoding="pgvector-sparsevec",
                start=m.start(),
                end=m.end(),
                json_path=join_path(record.path, key),
                key=key,
                precision=precision_of(values64[index], m.group(1)),
                hints={"nonzero": int(index.size)},
            )


DETECTOR = SparsevecDetector()
