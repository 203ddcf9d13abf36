"""A line-per-alert writer to stdout or a 0600 file: the shared body of the ocsf and cef sinks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

from scanner.model import Alert, Diagnostic
from scanner.sinks.jsonl import open_append_private


class LineSink:
    """Writes ``render(alert)`` plus a newline. Diagnostics are not findings: they stay in the summary."""

    def __init__(self, name: str, render: Callable[[Alert], bytes], target: str) -> None:
        self.name = name
        self._render = render
        self._owned = target not in ("", "-")
        self._stream: IO[bytes] = open_append_private(target) if self._owned else sys.stdout.buffer

    def send(self, alert: Alert) -> None:
        self._stream.write(self._render(alert) + b"\n")
        self._stream.flush()

    def diagnostic(self, diag: Diagnostic) -> None:
        pass

    def close(self, summary: dict[str, Any]) -> None:
        if self._owned:
            self._stream.close()
