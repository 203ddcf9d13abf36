"""SARIF 2.1.0 for CI code scanning. One document per run, so it is written at ``close``."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import orjson

from scanner.formats import alerts_to_sarif
from scanner.model import Alert, Diagnostic


class SarifSink:
    name = "sarif"

    def __init__(self, target: str) -> None:
        self._target = target
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def diagnostic(self, diag: Diagnostic) -> None:
        pass

    def close(self, summary: dict[str, Any]) -> None:
        body = orjson.dumps(alerts_to_sarif(self.alerts), option=orjson.OPT_INDENT_2) + b"\n"
        if self._target in ("", "-"):
            sys.stdout.buffer.write(body)
            sys.stdout.buffer.flush()
            return
        # One document: replace the file, never append (0600, like every alert file).
        fd = os.open(self._target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        stream: IO[bytes]
        with os.fdopen(fd, "wb") as stream:
            stream.write(body)


def open(target: str, **options: Any) -> SarifSink:  # noqa: A001 - the sink-module convention
    return SarifSink(target)
