"""JSON lines of ECS-shaped alerts, to a file (appended, 0600) or stdout. The contract format."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import orjson

from scanner.ecs import alert_to_ecs, diagnostic_to_ecs
from scanner.model import Alert, Diagnostic


class JsonlSink:
    name = "jsonl"

    def __init__(
        self,
        stream: IO[bytes],
        owned: bool,
        diagnostics: bool = True,
        buffered: bool = False,
        reveal: bool = False,
    ) -> None:
        self._stream = stream
        self._owned = owned
        self._diagnostics = diagnostics
        # The daemon needs every alert on disk before it commits the offset (unbuffered). A batch
        # scan only needs them by the end of each record: one write per block, not per alert.
        self._buffered = buffered
        self._pending: list[bytes] = []
        self._reveal = reveal  # clear inverted text: scan --reveal, stdout only

    def send(self, alert: Alert) -> None:
        self._write(alert_to_ecs(alert, reveal=self._reveal))

    def diagnostic(self, diag: Diagnostic) -> None:
        if self._diagnostics:
            self._write(diagnostic_to_ecs(diag))

    def write_document(self, doc: dict[str, Any]) -> None:
        """Write an already-rendered ECS document (the daemon adds ``event.created`` itself)."""
        self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        if self._buffered:
            self._pending.append(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
            if len(self._pending) >= 1024:
                self.end_record()
            return
        self._stream.write(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
        self._stream.flush()

    def end_record(self) -> None:
        """The engine is done with a record: write what is buffered (optional sink method)."""
        if self._pending:
            self._stream.write(b"".join(self._pending))
            self._pending.clear()
        self._stream.flush()

    def close(self, summary: dict[str, Any]) -> None:
        self.end_record()
        if self._owned:
            os.fsync(self._stream.fileno())
            self._stream.close()


def open_append_private(path: str) -> IO[bytes]:
    """Open for append, creating the file 0600: alert files describe leaks and must not leak."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "ab")


def open(target: str, **options: Any) -> JsonlSink:  # noqa: A001 - the sink-module convention
    diagnostics, buffered = options.get("diagnostics", True), options.get("buffered", False)
    if target in ("", "-"):
        return JsonlSink(
            sys.stdout.buffer,
            owned=False,
            diagnostics=diagnostics,
            buffered=buffered,
            reveal=bool(options.get("reveal", False)),  # clear text: stdout only
        )
    return JsonlSink(open_append_private(target), owned=True, diagnostics=diagnostics, buffered=buffered)
