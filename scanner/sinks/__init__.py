"""Alert sinks: where alerts go. One module per destination, one interface, one registry.

A sink formats and delivers; it never decides what is sensitive (the rules did) and never sees more
than the redacted alert. ``open_sink("jsonl:alerts.jsonl")`` picks the module by the scheme before the
first colon, so adding a destination is one module plus one line in :data:`SCHEMES`.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

from scanner.model import Alert, Diagnostic


@runtime_checkable
class Sink(Protocol):
    """Receives alerts, then diagnostics, then one ``close`` with the run's summary."""

    name: str

    def send(self, alert: Alert) -> None: ...

    def diagnostic(self, diag: Diagnostic) -> None: ...

    def close(self, summary: dict[str, Any]) -> None: ...

    # Optional: ``end_record()`` is called after each record's alerts, so a sink that buffers for
    # speed (jsonl to stdout in a batch scan) writes them before the engine moves on.


# scheme -> module under scanner.sinks exposing ``open(target: str, **options) -> Sink``
SCHEMES: dict[str, str] = {
    "jsonl": "jsonl",
    "ecs": "jsonl",
    "table": "table",
    "ocsf": "ocsf",
    "cef": "cef",
    "sarif": "sarif",
    "syslog": "syslog",
    "webhook": "webhook",
    "hec": "hec",
    "elasticsearch": "elasticsearch",
    "opensearch": "elasticsearch",
}

# --format NAME -> the sink that writes it to stdout
FORMATS: dict[str, str] = {
    "table": "table:-",
    "jsonl": "jsonl:-",
    "ecs": "jsonl:-",
    "ocsf": "ocsf:-",
    "cef": "cef:-",
    "sarif": "sarif:-",
}


def open_sink(spec: str, **options: Any) -> Sink:
    """Open ``SCHEME:TARGET`` (``jsonl:-`` is stdout). Unknown schemes raise ValueError with the list."""
    scheme, sep, target = spec.partition(":")
    if scheme.startswith("syslog+"):
        scheme, target = "syslog", spec
    elif "://" in target and scheme in ("http", "https"):
        raise ValueError(f"{spec!r}: name the sink first, e.g. webhook:{spec}")
    if not sep or scheme not in SCHEMES:
        known = ", ".join(sorted(SCHEMES))
        raise ValueError(f"unknown output {spec!r}: expected SINK:TARGET with SINK one of {known}")
    module = importlib.import_module(f"scanner.sinks.{SCHEMES[scheme]}")
    return module.open(target, **options)
