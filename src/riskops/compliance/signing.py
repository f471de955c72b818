"""Ed25519 signatures over the export manifest, so an edited manifest cannot be passed off."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
PublicKeyLike = Ed25519PublicKey | bytes | str | Path


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public half as PEM (SubjectPublicKeyInfo), the form shipped in the export."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key: what a regulator compares out of band."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The base64 signature of ``data`` (Ed25519 is deterministic: same bytes, same signature)."""
    return base64.b64encode(key.sign(data)) + b"\n"


def load_public_key(value: PublicKeyLike) -> Ed25519PublicKey:
    """An Ed25519 public key from a key, PEM bytes/text or a PEM file.

    Raises ValueError when the value is not an Ed25519 public key.
    """
    if isinstance(value, Ed25519PublicKey):
        return value
    if isinstance(value, Path):
        value = value.read_bytes()
    data = value.encode("ascii") if isinstance(value, str) else value
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise ValueError(f"not a PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"the public key is {type(key).__name__}, not Ed25519")
    return key


def signature_holds(public: Ed25519PublicKey, data: bytes, signature_b64: bytes) -> bool:
    """True when ``signature_b64`` is ``public``'s signature of exactly ``data``."""
    try:
        public.verify(base64.b64decode(signature_b64.strip(), validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True
