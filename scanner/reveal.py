"""Sealed reveal: the clear inverted text, encrypted so only the SOC holding a private key reads it.

Opt-in per sink (``reveal_public_key=PATH`` to a PEM X25519 public key, or ``$VECLEAK_REVEAL_PUBLIC_KEY``
for every sink that can carry it: webhook, HEC, syslog). Format, ``vecleak-seal-v1``:

* a fresh X25519 key pair per alert; shared = X25519(ephemeral_private, recipient_public);
* key = HKDF-SHA256(shared, salt = ephemeral_public(32) || recipient_public(32), info = b"vecleak-seal-v1", 32 bytes);
* AES-256-GCM with a random 12-byte nonce, associated data = the alert's ``event.id``
  (a sealed text cannot be moved to another alert);
* JSON: ``{"alg": "X25519-HKDF-SHA256-AES256GCM", "v": 1, "epk": b64, "nonce": b64, "ct": b64}``.

``cryptography`` is imported here only (extra ``reveal``), never on the hot path.
"""

from __future__ import annotations

import base64
import os
from typing import Any

INFO = b"vecleak-seal-v1"
ALG = "X25519-HKDF-SHA256-AES256GCM"


def _key(shared: bytes, epk: bytes, rpk: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, epk + rpk, INFO).derive(shared)


def _raw(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(path: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    with open(path, "rb") as fh:
        key = serialization.load_pem_public_key(fh.read())
    if not isinstance(key, X25519PublicKey):
        raise ValueError(f"{path}: reveal needs an X25519 public key (openssl genpkey -algorithm X25519)")
    return key


def recipient_from_options(options: dict[str, Any]) -> Any | None:
    """The sink's reveal key, or None (the default: no clear text leaves the scanner, sealed or not)."""
    path = options.get("reveal_public_key") or os.environ.get("VECLEAK_REVEAL_PUBLIC_KEY")
    return load_public_key(path) if path else None


def seal(recipient: Any, plaintext: str, event_id: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    eph = X25519PrivateKey.generate()
    epk, rpk = _raw(eph.public_key()), _raw(recipient)
    nonce = os.urandom(12)
    ct = AESGCM(_key(eph.exchange(recipient), epk, rpk)).encrypt(nonce, plaintext.encode(), event_id.encode())
    b64 = base64.b64encode
    return {
        "alg": ALG,
        "v": 1,
        "epk": b64(epk).decode(),
        "nonce": b64(nonce).decode(),
        "ct": b64(ct).decode(),
    }


def unseal(private_key: Any, sealed: dict[str, Any], event_id: str) -> str:
    """What the SOC runs with its private key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if sealed.get("alg") != ALG or sealed.get("v") != 1:
        raise ValueError("not a vecleak-seal-v1 object")
    epk = base64.b64decode(sealed["epk"])
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(epk))
    key = _key(shared, epk, _raw(private_key.public_key()))
    plain = AESGCM(key).decrypt(
        base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ct"]), event_id.encode()
    )
    return plain.decode()


def add_sealed_text(doc: dict[str, Any], alert: Any, recipient: Any | None) -> dict[str, Any]:
    """Add ``vecleak.inversion.text_sealed`` to an ECS doc when the sink opted in and there is clear text."""
    clear = (alert.finding.inversion or {}).get("text_clear")
    if recipient is not None and clear:
        doc["vecleak"].setdefault("inversion", {})["text_sealed"] = seal(recipient, clear, alert.event_id)
    return doc
