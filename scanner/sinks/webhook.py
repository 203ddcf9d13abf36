"""A JSON webhook signed with HMAC-SHA256, for "everything else" (SOAR, chat-ops, ticketing).

Body: the ECS alert document. Headers:

* ``X-Vecleak-Event-Id``: the alert's stable id (dedupe replays on it);
* ``X-Vecleak-Timestamp``: Unix seconds at delivery;
* ``X-Vecleak-Signature``: ``v1=`` + hex HMAC-SHA256(secret, ``TIMESTAMP`` + ``"."`` + body).

Receivers recompute the HMAC over the raw body, compare in constant time, and reject timestamps
older than a few minutes (replay protection). The secret comes from ``$VECLEAK_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson

from scanner.ecs import alert_to_ecs
from scanner.model import Alert
from scanner.reveal import add_sealed_text, recipient_from_options
from scanner.sinks.httppost import endpoint_secret, post
from scanner.sinks.spool import Spooled, default_spool_dir, spool_options


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, tolerance: float = 300.0) -> bool:
    """What a receiver does; shipped so integrations and tests check the same way."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookTransport:
    name = "webhook"

    def __init__(self, url: str, secret: bytes, timeout: float = 10.0, reveal_to: Any = None) -> None:
        self.reveal_to = reveal_to  # X25519 public key: opt-in sealed clear text (scanner.reveal)
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def render(self, alert: Alert) -> bytes:
        return orjson.dumps(add_sealed_text(alert_to_ecs(alert), alert, self.reveal_to))

    def deliver(self, event_id: str, payload: bytes) -> None:
        ts = str(int(time.time()))  # signed at delivery, so a retried alert carries a fresh timestamp
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "vecleak",
            "X-Vecleak-Event-Id": event_id,
            "X-Vecleak-Timestamp": ts,
            "X-Vecleak-Signature": sign(self.secret, ts, payload),
        }
        post(self.url, payload, headers, self.timeout)

    def close(self) -> None:
        pass


def open(target: str, **options: Any) -> Spooled:  # noqa: A001 - the sink-module convention
    secret = endpoint_secret("webhook", target, "VECLEAK_WEBHOOK_SECRET", "the signing secret")
    transport = WebhookTransport(
        target, secret.encode(), float(options.get("timeout", 10.0)), recipient_from_options(options)
    )
    return Spooled(
        transport,
        options.get("spool_dir") or default_spool_dir(f"webhook:{target}"),
        **spool_options(options),
    )
