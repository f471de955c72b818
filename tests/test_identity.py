"""Principals, roles and keys: the actor recorded everywhere is the authenticated principal."""

from __future__ import annotations

import json
import os

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from riskops import audit
from riskops.cli.main import app
from riskops.db import make_engine, session_scope
from riskops.identity.credentials import (
    ADMIN,
    DEMO_RISK_OFFICER,
    DEMO_SCORING_CLIENT,
    bootstrap_embedded,
    key_file,
    resolve_key,
)
from riskops.identity.principals import AuthError, Principal, authenticate
from riskops.identity.roles import Forbidden, require
from riskops.settings import load_settings


@pytest.fixture
def admin_key(settings, monkeypatch) -> str:
    engine = make_engine(settings.database_url)
    bootstrap_embedded(settings, engine)
    engine.dispose()
    key = key_file(settings, ADMIN).read_text()
    if not settings.embedded:  # the admin-key fallback exists on the embedded defaults only
        monkeypatch.setenv("RISKOPS_API_KEY", key)
    return key


def test_principals_add_prints_the_key_once_and_stores_only_its_hash(settings, admin_key):
    """Contract: `riskops principals add NAME --role ROLE --json` gives {name, role, key}."""
    result = CliRunner().invoke(
        app, ["principals", "add", "jane@bank", "--role", "risk-officer", "--json"]
    )
    assert result.exit_code == 0, result.output
    made = json.loads(result.output)
    assert set(made) == {"name", "role", "key"} and made["role"] == "risk-officer"
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        stored = session.exec(select(Principal).where(Principal.name == "jane@bank")).one()
        assert made["key"] not in stored.model_dump_json()  # hash only
        assert authenticate(session=session, key=made["key"]).name == "jane@bank"
        rows = audit.rows_for_subject(session=session, subject_prefix="principal/jane@bank")
        assert [(r.actor, r.action) for r in rows] == [(ADMIN, "principal.added")]
    listed = CliRunner().invoke(app, ["principals", "list", "--json"])
    assert made["key"] not in listed.output and '"jane@bank"' in listed.output
    revoked = CliRunner().invoke(app, ["principals", "revoke", "jane@bank"])
    assert revoked.exit_code == 0
    with session_scope(engine) as session, pytest.raises(AuthError, match="revoked"):
        authenticate(session=session, key=made["key"])
    engine.dispose()


def test_only_the_admin_manages_principals_and_the_admin_decides_nothing(settings, admin_key):
    result = CliRunner().invoke(app, ["principals", "add", "dev@bank", "--role",
                                      "model-developer", "--json"])  # fmt: skip
    dev_key = json.loads(result.output)["key"]
    refused = CliRunner().invoke(
        app, ["principals", "add", "x@bank", "--role", "admin"], env={"RISKOPS_API_KEY": dev_key}
    )
    assert refused.exit_code == 3 and "may not principals.manage" in refused.output
    with pytest.raises(Forbidden):
        require("admin", "signoff.decide", who=ADMIN)
    unknown = CliRunner().invoke(app, ["principals", "list"], env={"RISKOPS_API_KEY": "rk_nope"})
    assert unknown.exit_code == 3 and "not known" in unknown.output


def test_key_resolution_env_then_0600_file_then_embedded_admin(settings, admin_key, tmp_path,
                                                               monkeypatch):  # fmt: skip
    if not settings.embedded:
        pytest.skip("the admin-key fallback exists on the embedded defaults (SQLite) only")
    assert resolve_key(settings) == admin_key  # embedded defaults only
    credentials = tmp_path / "credentials"
    credentials.write_text("rk_from_file\n")
    os.chmod(credentials, 0o644)
    monkeypatch.setenv("RISKOPS_CREDENTIALS_FILE", str(credentials))
    with pytest.raises(AuthError, match="chmod 600"):
        resolve_key(load_settings())
    os.chmod(credentials, 0o600)
    assert resolve_key(load_settings()) == "rk_from_file"
    monkeypatch.setenv("RISKOPS_API_KEY", "rk_from_env")
    assert resolve_key(load_settings()) == "rk_from_env"


def test_no_admin_key_fallback_off_the_embedded_defaults(settings, admin_key, monkeypatch):
    monkeypatch.delenv("RISKOPS_API_KEY", raising=False)
    monkeypatch.setenv("RISKOPS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/x")
    monkeypatch.setenv("RISKOPS_CREDENTIALS_FILE", "/nonexistent/credentials")
    assert resolve_key(load_settings()) is None


def test_bootstrap_is_idempotent_and_labels_the_demo_officer(settings, admin_key):
    engine = make_engine(settings.database_url)
    again = bootstrap_embedded(settings, engine)
    assert [b.created for b in again] == [False, False, False]
    with session_scope(engine) as session:
        officer = session.exec(select(Principal).where(Principal.name == DEMO_RISK_OFFICER)).one()
        client = session.exec(select(Principal).where(Principal.name == DEMO_SCORING_CLIENT)).one()
    assert officer.demo and officer.role == "risk-officer"
    assert client.demo and client.role == "service"  # may score, decides nothing else
    assert oct(key_file(settings, DEMO_RISK_OFFICER).stat().st_mode)[-3:] == "600"
    assert oct(key_file(settings, DEMO_SCORING_CLIENT).stat().st_mode)[-3:] == "600"
    engine.dispose()


def test_init_admin_bootstraps_a_new_installation_once(settings, monkeypatch):
    monkeypatch.delenv("RISKOPS_API_KEY", raising=False)
    first = CliRunner().invoke(app, ["principals", "init-admin", "ops.admin@bank", "--json"])
    assert first.exit_code == 0, first.output
    made = json.loads(first.output)
    assert made["role"] == "admin" and made["key"].startswith("rk_")
    again = CliRunner().invoke(app, ["principals", "init-admin", "other@bank"])
    assert again.exit_code == 3 and "ops.admin@bank" in again.output


def test_the_last_admin_cannot_be_revoked(settings, admin_key):
    refused = CliRunner().invoke(app, ["principals", "revoke", ADMIN])
    assert refused.exit_code == 2 and "last active admin" in refused.output
