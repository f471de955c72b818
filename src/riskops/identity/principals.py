"""Principals: a name, one role, and a random key stored only as its hash.

Keys look like ``rk_<43 url-safe characters>`` (256 random bits). Because they are random and
long, a single SHA-256 is a safe verifier (no password stretching needed); the key itself is
shown once, at creation, and never stored or logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import get_args

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from riskops import audit
from riskops.identity.roles import Role
from riskops.records import utcnow

ROLES: tuple[str, ...] = get_args(Role)
KEY_PREFIX = "rk_"


class AuthError(PermissionError):
    """No key, an unknown key or a revoked principal (HTTP 401)."""


class Principal(SQLModel, table=True):
    """A person or service that can act on the platform."""

    __tablename__ = "principal"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("key_hash"))

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=32)
    key_hash: str = Field(max_length=64)
    key_hint: str = Field(max_length=16)  # first characters of the key, to tell keys apart
    mlflow_user: str | None = Field(default=None, max_length=200, index=True)
    demo: bool = False
    created_by: str = Field(max_length=200)
    created_at: dt.datetime = Field(default_factory=utcnow)
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=200)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def get_principal(*, session: Session, name: str) -> Principal | None:
    return session.exec(select(Principal).where(Principal.name == name)).first()


def add_principal(
    *, session: Session, name: str, role: str, actor: str, mlflow_user: str | None = None,
    demo: bool = False,
) -> tuple[Principal, str]:  # fmt: skip
    """Create a principal; returns it and its key (the only time the key is available)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("a principal needs a name of 1-200 characters (e-mail or staff id)")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if get_principal(session=session, name=name) is not None:
        raise ValueError(f"a principal named {name!r} exists already (revoke it, or pick a name)")
    key = new_key()
    principal = Principal(
        name=name, role=role, key_hash=_hash(key), key_hint=key[:7], mlflow_user=mlflow_user,
        demo=demo, created_by=actor,
    )  # fmt: skip
    session.add(principal)
    audit.append(
        session=session, actor=actor, action="principal.added", subject=f"principal/{name}",
        payload={"role": role, "key_hint": principal.key_hint, "mlflow_user": mlflow_user,
                 "demo": demo},
    )  # fmt: skip
    session.flush()
    return principal, key


def rotate_key(*, session: Session, name: str, actor: str) -> str:
    """Give an active principal a new key (the old one stops working at once)."""
    principal = get_principal(session=session, name=name)
    if principal is None or not principal.active:
        raise LookupError(f"no active principal named {name!r}")
    key = new_key()
    principal.key_hash, principal.key_hint = _hash(key), key[:7]
    session.add(principal)
    audit.append(
        session=session, actor=actor, action="principal.key-rotated", subject=f"principal/{name}",
        payload={"key_hint": principal.key_hint},
    )  # fmt: skip
    return key


def revoke_principal(*, session: Session, name: str, actor: str) -> Principal:
    """Revoke a principal: its key is refused from now on; its past actions stay on record."""
    principal = get_principal(session=session, name=name)
    if principal is None:
        raise LookupError(f"no principal named {name!r} (see `riskops principals list`)")
    if not principal.active:
        raise ValueError(f"{name} was already revoked on {principal.revoked_at:%Y-%m-%d %H:%M}")
    if principal.role == "admin":
        admins = session.exec(select(Principal).where(Principal.role == "admin")).all()
        if [p.name for p in admins if p.active] == [name]:
            raise ValueError(
                f"{name} is the last active admin: add another admin first (revoking it would "
                "leave nobody to manage principals, and `init-admin` open to anyone)"
            )
    principal.revoked_at, principal.revoked_by = utcnow(), actor
    session.add(principal)
    audit.append(
        session=session, actor=actor, action="principal.revoked", subject=f"principal/{name}",
        payload={"role": principal.role},
    )  # fmt: skip
    return principal


def list_principals(*, session: Session) -> list[Principal]:
    return list(session.exec(select(Principal).order_by(col(Principal.id))).all())


def authenticate(*, session: Session, key: str | None) -> Principal:
    """The active principal holding ``key``; :class:`AuthError` otherwise."""
    if not key:
        raise AuthError(
            "no API key: set RISKOPS_API_KEY (or the credentials file) to a key from "
            "`riskops principals add`"
        )
    digest = _hash(key.strip())
    principal = session.exec(select(Principal).where(Principal.key_hash == digest)).first()
    if principal is None or not hmac.compare_digest(principal.key_hash, digest):
        raise AuthError("the API key is not known to this platform (check RISKOPS_API_KEY)")
    if not principal.active:
        raise AuthError(f"the key of {principal.name} was revoked; ask an admin for a new one")
    return principal


def principal_for_mlflow_user(*, session: Session, user: str | None) -> Principal | None:
    """The principal behind an MLflow run's user (its mlflow_user, else the same name)."""
    if not user:
        return None
    found = session.exec(select(Principal).where(Principal.mlflow_user == user)).first()
    return found or get_principal(session=session, name=user)
