"""One POST with the stdlib: what the webhook and HEC transports share. 2xx or an exception.

4xx other than 408/429 raises :class:`PermanentDeliveryError` (dead-lettered, not retried); 5xx,
408, 429 and network errors raise :class:`DeliveryError` (spooled and retried).
"""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request

from scanner.sinks.spool import DeliveryError, PermanentDeliveryError

# Statuses worth retrying although they are 4xx: the receiver is busy, not refusing the alert.
RETRYABLE_4XX = frozenset({408, 429})


def endpoint_secret(sink: str, target: str, env: str, what: str) -> str:
    """The credential an HTTP sink needs, from ``$env`` (never a flag), once ``target`` is known to
    be an http(s) URL; a ValueError naming the sink otherwise."""
    secret = os.environ.get(env)
    if not secret:
        raise ValueError(f"{sink} sink needs {what} in ${env}")
    if not target.startswith(("http://", "https://")):
        raise ValueError(f"{sink} target must be an http(s) URL, got {target!r}")
    return secret


def tls_context(ca_env: str = "VECLEAK_CA_FILE") -> ssl.SSLContext:
    """System trust store, plus a private CA from ``$VECLEAK_CA_FILE`` when set (internal SIEMs)."""
    ctx = ssl.create_default_context()
    ca = os.environ.get(ca_env)
    if ca:
        ctx.load_verify_locations(cafile=ca)
    return ctx


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    context = tls_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in RETRYABLE_4XX:
            raise PermanentDeliveryError(f"HTTP {exc.code}", exc.code) from None
        raise DeliveryError(f"{url}: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"{url}: {exc.reason}") from None
