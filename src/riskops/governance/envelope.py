"""Signed sign-off decisions: the proof, carried into the paused Prefect run, of who decided.

The governance API authenticates the risk officer and signs the decision with its Ed25519 key;
the sign-off flow holds only the public key. A decision typed into the Prefect UI's Resume form
has no valid signature, so it is refused, however it is filled in.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

MAX_AGE = dt.timedelta(minutes=15)


class InvalidDecision(ValueError):
    """The envelope is missing, malformed, signed by another key, stale or for another run."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_decision(private_pem: str, claims: dict[str, Any]) -> str:
    """``<base64url(json claims)>.<base64url(signature)>``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("the governance signing key must be Ed25519")
    body = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    return f"{_b64(body)}.{_b64(key.sign(body))}"


def verify_decision(
    public_pem: str | None, envelope: str, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The claims of a validly signed, fresh envelope; :class:`InvalidDecision` otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not envelope:
        raise InvalidDecision(
            "no signed decision: decisions are made on the sign-off page or with `riskops "
            "approve` (governance API), not by typing a name into the Prefect form"
        )
    if not public_pem:
        raise InvalidDecision("the governance public key is not configured for this flow")
    try:
        body_text, signature_text = envelope.strip().split(".")
        body, signature = _unb64(body_text), _unb64(signature_text)
        key = serialization.load_pem_public_key(public_pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidDecision("the governance public key is not Ed25519")
        key.verify(signature, body)
        claims = json.loads(body)
    except InvalidSignature:
        raise InvalidDecision(
            "the decision's signature does not verify (forged or altered)"
        ) from None
    except (ValueError, TypeError) as error:
        raise InvalidDecision(f"the decision envelope is malformed: {error}") from None
    if not isinstance(claims, dict):
        raise InvalidDecision("the decision envelope does not hold claims")
    issued = dt.datetime.fromisoformat(str(claims.get("issued_at")))
    age = (now or dt.datetime.now(dt.UTC)) - issued
    if age > MAX_AGE or age < -dt.timedelta(minutes=1):
        raise InvalidDecision(f"the decision was signed {age} ago; decide again")
    return claims
