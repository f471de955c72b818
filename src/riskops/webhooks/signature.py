"""Verify (and, for tests, produce) MLflow 3.17 webhook signatures.

MLflow (``mlflow/webhooks/delivery.py``) follows Standard Webhooks: each delivery carries
``X-MLflow-Delivery-Id`` (a uuid4), ``X-MLflow-Timestamp`` (unix seconds) and, when the webhook
has a secret, ``X-MLflow-Signature: v1,<base64(HMAC-SHA256(secret, f"{id}.{ts}.{body}"))>``,
where ``body`` is exactly the bytes of the request (UTF-8 JSON).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Mapping

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"


class InvalidSignature(Exception):
    """A delivery whose signature, headers or timestamp cannot be trusted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts too."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def expected_signature(*, secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,<base64>`` signature MLflow would send for these values."""
    signed = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify_mlflow_signature(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Return if the delivery was signed with ``secret`` recently; else raise InvalidSignature."""
    if not secret:
        raise InvalidSignature("no secret is configured: refusing unsigned deliveries")
    delivery_id = _header(headers, DELIVERY_ID_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    missing = [
        name
        for name, value in (
            (DELIVERY_ID_HEADER, delivery_id),
            (TIMESTAMP_HEADER, timestamp),
            (SIGNATURE_HEADER, signature),
        )
        if not value
    ]
    if missing or delivery_id is None or timestamp is None or signature is None:
        raise InvalidSignature(f"missing header(s): {', '.join(missing)}")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is not unix seconds: {timestamp!r}") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        raise InvalidSignature(
            f"timestamp {sent_at} is {int(current - sent_at)} s away from now "
            f"(tolerance {tolerance_seconds} s): possible replay"
        )
    expected = expected_signature(
        secret=secret, delivery_id=delivery_id, timestamp=timestamp, body=body
    ).encode()
    # Standard Webhooks allows several space-separated signatures (secret rotation).
    candidates = [c.strip().encode() for c in signature.split(" ") if c.strip()]
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise InvalidSignature("signature does not match the body and secret")


def _mlflow_signer() -> Callable[[str, str, str, str], str] | None:
    """MLflow's own signing function, when this MLflow ships one."""
    try:
        from mlflow.webhooks.delivery import _generate_hmac_signature
    except ImportError:
        return None
    return _generate_hmac_signature


def sign_like_mlflow(
    *,
    secret: str,
    body: bytes,
    delivery_id: str | None = None,
    timestamp: int | float | None = None,
) -> dict[str, str]:
    """Headers of an MLflow delivery of ``body``, signed by MLflow's own code when importable."""
    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time() if timestamp is None else timestamp))
    signer = _mlflow_signer()
    if signer is not None:
        signature = signer(secret, delivery_id, ts, body.decode("utf-8"))
    else:
        signature = expected_signature(
            secret=secret, delivery_id=delivery_id, timestamp=ts, body=body
        )
    return {
        "Content-Type": "application/json",
        DELIVERY_ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: signature,
    }
