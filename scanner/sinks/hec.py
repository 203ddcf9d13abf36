"""Splunk HTTP Event Collector: POST ``/services/collector/event`` with ``Authorization: Splunk TOKEN``.

The event is the ECS alert; index-time ``fields`` carry the few keys a Splunk search filters on
first. The token comes from ``$VECLEAK_HEC_TOKEN``.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from typing import Any

import orjson

from scanner.ecs import alert_to_ecs
from scanner.model import Alert
from scanner.reveal import add_sealed_text, recipient_from_options
from scanner.sinks.httppost import endpoint_secret, post
from scanner.sinks.spool import Spooled, default_spool_dir, spool_options


class HecTransport:
    name = "hec"

    def __init__(
        self, url: str, token: str, index: str | None = None, timeout: float = 10.0, reveal_to: Any = None
    ) -> None:
        self.reveal_to = reveal_to  # X25519 public key: opt-in sealed clear text (scanner.reveal)
        parts = urllib.parse.urlsplit(url)
        if parts.path in ("", "/"):
            url = urllib.parse.urlunsplit(parts._replace(path="/services/collector/event"))
        self.url = url
        self.token = token
        self.index = index
        self.timeout = timeout
        self.host = socket.gethostname()

    def render(self, alert: Alert) -> bytes:
        doc = add_sealed_text(alert_to_ecs(alert), alert, self.reveal_to)
        v = doc["vecleak"]
        event: dict[str, Any] = {
            "time": round(time.time(), 3),
            "host": self.host,
            "source": "vecleak",
            "sourcetype": "vecleak:alert",
            "event": doc,
            "fields": {
                "event_id": alert.event_id,
                "rule_id": alert.rule_id,
                "level": alert.level.name,
                "vector_sha256": v["vector"]["sha256"],
                "model": v["fingerprint"]["model"] or "unknown",
            },
        }
        if self.index:
            event["index"] = self.index
        return orjson.dumps(event)

    def deliver(self, event_id: str, payload: bytes) -> None:
        headers = {"Authorization": f"Splunk {self.token}", "Content-Type": "application/json"}
        post(self.url, payload, headers, self.timeout)

    def close(self) -> None:
        pass


def open(target: str, **options: Any) -> Spooled:  # noqa: A001 - the sink-module convention
    token = endpoint_secret("hec", target, "VECLEAK_HEC_TOKEN", "the token")
    transport = HecTransport(
        target,
        token,
        options.get("index"),
        float(options.get("timeout", 10.0)),
        recipient_from_options(options),
    )
    return Spooled(
        transport, options.get("spool_dir") or default_spool_dir(f"hec:{target}"), **spool_options(options)
    )
