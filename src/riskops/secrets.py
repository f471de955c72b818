"""Secrets the embedded stack makes for itself (production passes them in through settings)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from riskops.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def local_secret(
    settings: Settings, name: str, make: Callable[[], str] = lambda: secrets.token_hex(32)
) -> str:
    """A random secret kept in $RISKOPS_HOME/secrets/<name> (0600), created on first use."""
    path: Path = settings.home_dir / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def pseudonym_key(settings: Settings) -> str:
    """The key of the keyed hash that replaces entity ids everywhere they are stored."""
    if settings.privacy.pseudonym_key is not None:
        return settings.privacy.pseudonym_key.get_secret_value()
    return local_secret(settings, "pseudonym.key")


def mlflow_webhook_key(settings: Settings) -> str:
    """Fernet key MLflow encrypts webhook secrets with; fixed, so webhooks survive restarts."""
    from cryptography.fernet import Fernet

    return local_secret(settings, "mlflow-webhook.key", lambda: Fernet.generate_key().decode())


def governance_signing_key(settings: Settings) -> str:
    """PEM of the Ed25519 key the governance API signs sign-off decisions with.

    Only the governance service reads it; flows get the public half (see
    :func:`governance_public_key`), so a decision typed into the Prefect UI cannot be forged.
    """
    return local_secret(settings, "governance-signing.pem", _new_signing_key)


def governance_public_key(settings: Settings) -> str:
    """PEM of the public half of :func:`governance_signing_key`."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(
        governance_signing_key(settings).encode(), password=None
    )
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _new_signing_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The platform's Ed25519 key that signs regulator exports ($RISKOPS_HOME/secrets, 0600)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = local_secret(settings, "export-signing.key", _new_signing_key)
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(
            f"{settings.home_dir / 'secrets' / 'export-signing.key'} is not an Ed25519 key: "
            "move it away and a new one is made on next use"
        )
    return key
