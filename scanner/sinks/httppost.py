"""One POST with the stdlib: what the webhook and HEC transports share. 2xx or an exception."""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request

from scanner.sinks.spool import DeliveryError


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
        raise DeliveryError(f"{url}: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"{url}: {exc.reason}") from None
