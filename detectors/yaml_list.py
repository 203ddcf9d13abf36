"""YAML block sequences of numbers: ``- 0.1`` one per line, and lists of lists (``- - 0.02``).

Seen in insta snapshots of TEI ``/embed`` responses (fixture 13) and in any YAML dump of a response
or config. A line starting with more than one ``- `` opens a new inner list, so a batch splits into
one vector per inner list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from scanner.model import Candidate, Record

from ._common import (
    PRECISION_SAMPLE,
    at_window_edge,
    join_path,
    key_before,
    numeric_windows,
    precision_of,
    to_float32,
)

MIN_ITEMS = 16
_NUM = rb"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-?\.(?:inf|Inf)|\.(?:nan|NaN)"
# A sequence item that is a number; the literal "- " prefix keeps the scan a fast memchr-style search.
_FIRST = re.compile(rb"- (?:- )*(?:" + _NUM + rb")[ \t]*\r?(?:\n|$)")
_LINE = rb"[ \t]*(?:- +)+(?:" + _NUM + rb")[ \t]*\r?(?:\n|\Z)"
_RUN = re.compile(rb"(?:" + _LINE + rb"){%d,}" % MIN_ITEMS)
_ITEM = re.compile(rb"^([ \t]*)((?:- +)+)(\S+)", re.M)


class YamlListDetector:
    name = "yaml_list"
    openers = frozenset(("yaml",))

    def may_contain(self, data: bytes) -> bool:
        return bool(numeric_windows(data))

    def find(self, record: Record) -> Iterator[Candidate]:
        data = record.data
        for lo, hi in numeric_windows(data):
            yield from self._scan(record, lo, hi)

    def _scan(self, record: Record, lo: int, hi: int) -> Iterator[Candidate]:
        data = record.data
        pos = lo
        while True:
            hit = _FIRST.search(data, pos, hi)
            if hit is None:
                return
            line_start = data.rfind(b"\n", 0, hit.start()) + 1
            if data[line_start : hit.start()].strip(b" \t"):
                pos = hit.end()
                continue  # "- " in the middle of a line of text
            run = _RUN.match(data, line_start)
            if run is None:
                pos = hit.end()
                continue
            yield from self._vectors(record, run.start(), run.end())
            pos = run.end()

    def _vectors(self, record: Record, start: int, end: int) -> Iterator[Candidate]:
        data = record.data
        key = key_before(data, start)
        groups: list[tuple[int, list[bytes]]] = []
        for item in _ITEM.finditer(data, start, end):
            if not groups or item.group(2).count(b"-") > 1:
                groups.append((item.start(), []))
            groups[-1][1].append(item.group(3))
        for i, (begin, numbers) in enumerate(groups):
            if len(numbers) < MIN_ITEMS:
                continue
            stop = groups[i + 1][0] if i + 1 < len(groups) else end
            if stop == end and at_window_edge(record, stop):
                continue
            tokens = [
                n.replace(b".inf", b"inf").replace(b".Inf", b"inf").replace(b".nan", b"nan") for n in numbers
            ]
            values64 = np.array(tokens).astype(np.float64)
            yield Candidate(
                values=to_float32(values64),
                encoding="yaml-list",
                start=begin,
                end=stop,
                json_path=join_path(record.path, key),
                key=key,
                precision=precision_of(values64, b",".join(numbers[:PRECISION_SAMPLE])),
            )


DETECTOR = YamlListDetector()
