"""Secrets the embedded stack makes for itself (production passes them in through settings)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from riskops.settings import Settings


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
