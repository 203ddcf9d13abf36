"""YAML ``!!binary`` block scalars, as VCR cassettes store HTTP bodies, gunzipped when compressed.

This detector finds no vectors itself: it opens the container and hands the decoded body back to the
pipeline as a nested record, where the other detectors find the base64 or JSON arrays inside.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterator

from scanner.model import Diagnostic, Record

# A decompression bomb must not exhaust memory; a real embeddings response is far below this.
MAX_INFLATED = 64 * 1024 * 1024

_BLOCK = re.compile(rb"!!binary\s*[|>][-+]?[ \t]*\r?\n((?:([ \t]+)[A-Za-z0-9+/=]+[ \t]*\r?\n?)+)")
_INLINE = re.compile(rb"!!binary\s+[\"']?([A-Za-z0-9+/=]{16,})")


class VcrBinaryDetector:
    name = "vcr_binary"
    openers = frozenset(("vcr",))

    def may_contain(self, data: bytes) -> bool:
        # A one-byte search is memchr (GB/s); the 8-byte one is ~10x slower. Most logs have no "!".
        return b"!" in data and b"!!binary" in data

    def find(self, record: Record) -> Iterator[Record | Diagnostic]:
        data = record.data
        for pattern in (_BLOCK, _INLINE):
            for m in pattern.finditer(data):
                payload = re.sub(rb"\s+", b"", m.group(1))
                yield from self._open(record, m.start(), payload)

    def _open(self, record: Record, start: int, payload: bytes) -> Iterator[Record | Diagnostic]:
        where = _locate(record, start)
        try:
            body = base64.b64decode(payload + b"=" * (-len(payload) % 4))
        except (binascii.Error, ValueError) as exc:
            yield Diagnostic(
                "bad-base64", f"!!binary body is not base64: {exc}", record.source.display, *where
            )
            return
        if body[:2] == b"\x1f\x8b":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                inflated = inflater.decompress(body, MAX_INFLATED)
            except zlib.error as exc:
                yield Diagnostic(
                    "corrupt-gzip", f"gzip body in !!binary: {exc}", record.source.display, *where
                )
                return
            if inflater.unconsumed_tail:
                yield Diagnostic(
                    "inflate-limit",
                    f"gzip body inflates past {MAX_INFLATED} bytes; scanned the first {MAX_INFLATED}",
                    record.source.display,
                    *where,
                )
            elif not inflater.eof:
                yield Diagnostic(
                    "truncated-gzip", "gzip body in !!binary ends early", record.source.display, *where
                )
            body = inflated
        yield Record(
            data=body,
            source=record.source,
            offset=where[1],
            line=where[0],
            nested=True,
            depth=record.depth + 1,
            path=f"{record.path}!!binary" if record.path else "!!binary",
            context=record.context,
        )


def _locate(record: Record, start: int) -> tuple[int, int]:
    """(line, offset) in the source of ``start`` within ``record``."""
    if record.nested:
        return record.line, record.offset
    return record.line + record.data.count(b"\n", 0, start), record.offset + start


DETECTOR = VcrBinaryDetector()
