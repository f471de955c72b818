"""Which key a command acts with, and the keys `riskops up` makes for the embedded defaults."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from riskops.db import session_scope
from riskops.identity.principals import (
    AuthError,
    Principal,
    add_principal,
    authenticate,
    get_principal,
    rotate_key,
)
from riskops.settings import Settings

ADMIN = "admin"
DEMO_RISK_OFFICER = "demo.risk-officer@riskops.example"
DEMO_DEVELOPER = "demo.developer@riskops.example"
DEMO_SCORING_CLIENT = "demo.scoring-client@riskops.example"  # a `service` key for traffic
BOOTSTRAP_ACTOR = "riskops-up"


def key_file(settings: Settings, name: str) -> Path:
    """Where the embedded defaults keep a bootstrap principal's key (0600)."""
    safe = name.replace("@", "-at-").replace("/", "-")
    return settings.home_dir / "secrets" / f"{safe}.key"


def _read_private(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise AuthError(
            f"{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
        )
    return path.read_text().strip()


def resolve_key(settings: Settings) -> str | None:
    """RISKOPS_API_KEY, else the 0600 credentials file, else (embedded only) the admin key."""
    if settings.identity.api_key is not None:
        return settings.identity.api_key.get_secret_value().strip()
    credentials = settings.identity.credentials_file.expanduser()
    if credentials.is_file():
        return _read_private(credentials)
    admin = key_file(settings, ADMIN)
    if settings.embedded and admin.is_file():
        return _read_private(admin)
    return None


def current_principal(settings: Settings, engine: Engine) -> Principal:
    """The principal this command acts as (AuthError with what to do when there is none)."""
    key = resolve_key(settings)
    with session_scope(engine) as session:
        return authenticate(session=session, key=key)


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    tmp.replace(path)


@dataclass(frozen=True)
class Bootstrap:
    name: str
    role: str
    key_file: Path
    created: bool


def ensure_principal(
    settings: Settings, engine: Engine, *, name: str, role: str, demo: bool = False
) -> Bootstrap:
    """Make sure ``name`` exists and its key is in the state directory's secrets."""
    path = key_file(settings, name)
    with session_scope(engine) as session:
        principal = get_principal(session=session, name=name)
        if principal is not None and principal.active and path.is_file():
            try:
                authenticate(session=session, key=_read_private(path))
                return Bootstrap(name, principal.role, path, created=False)
            except AuthError:
                pass  # the key on disk is stale: issue a new one below
        if principal is None:
            _principal, key = add_principal(
                session=session, name=name, role=role, actor=BOOTSTRAP_ACTOR, demo=demo
            )
        elif principal.active:
            key = rotate_key(session=session, name=name, actor=BOOTSTRAP_ACTOR)
        else:
            raise AuthError(f"bootstrap principal {name} was revoked; not re-creating it")
        _write_key(path, key)
    return Bootstrap(name, role, path, created=True)


def bootstrap_embedded(settings: Settings, engine: Engine) -> list[Bootstrap]:
    """The admin, and the clearly labelled demo risk officer and scoring client, of the
    embedded defaults."""
    return [
        ensure_principal(settings, engine, name=ADMIN, role="admin"),
        ensure_principal(settings, engine, name=DEMO_RISK_OFFICER, role="risk-officer", demo=True),
        ensure_principal(settings, engine, name=DEMO_SCORING_CLIENT, role="service", demo=True),
    ]
