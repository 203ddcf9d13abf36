"""OCSF 1.x Data Security Finding (class 2006) as JSON lines, for Amazon Security Lake and friends."""

from __future__ import annotations

from typing import Any

import orjson

from scanner.formats import alert_to_ocsf
from scanner.sinks.stream import LineSink


def open(target: str, **options: Any) -> LineSink:  # noqa: A001 - the sink-module convention
    return LineSink("ocsf", lambda alert: orjson.dumps(alert_to_ocsf(alert)), target)
