"""ArcSight CEF, one line per alert (the syslog sink can carry the same line as its message)."""

from __future__ import annotations

from typing import Any

from scanner.formats import alert_to_cef
from scanner.sinks.stream import LineSink


def open(target: str, **options: Any) -> LineSink:  # noqa: A001 - the sink-module convention
    return LineSink("cef", lambda alert: alert_to_cef(alert).encode("utf-8", "replace"), target)
