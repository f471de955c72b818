"""Shared fixtures: settings in a temp home, the platform DB on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from riskops.db import make_engine
from riskops.features.connect_server import (
    ConnectServerConfig,
    ConnectServerError,
    local_connect_server,
)
from riskops.settings import Settings, load_settings
from riskops.specs import ModelSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
PG_URL = os.environ.get("RISKOPS_TEST_DATABASE_URL")

DATABASES = [pytest.param("sqlite", id="sqlite")]
if PG_URL:
    DATABASES.append(pytest.param("postgres", id="postgres", marks=pytest.mark.postgres))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty platform database: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'riskops.db'}"
        return
    assert PG_URL
    engine = make_engine(PG_URL)
    SQLModel.metadata.drop_all(engine)
    engine.dispose()
    yield PG_URL


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Settings:
    """Settings for a private home; the database follows the `database_url` parametrisation."""
    for key in list(os.environ):
        if key.startswith("RISKOPS_") and key != "RISKOPS_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("RISKOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RISKOPS_PROJECT_DIR", str(ROOT))
    monkeypatch.setenv("RISKOPS_DATABASE_URL", database_url)
    return load_settings()


@pytest.fixture(scope="session")
def credit_spec() -> ModelSpec:
    return load_spec(MODELS / "credit-scoring.yaml")


@pytest.fixture(scope="session")
def all_specs() -> dict[str, ModelSpec]:
    return {p.stem: load_spec(p) for p in sorted(MODELS.glob("*.yaml"))}


@pytest.fixture(scope="session")
def spark_connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ONE local Spark Connect server for the whole test run (started on first use, on a free
    loopback port, stopped at the end); yields its sc:// URL.

    On CI (CI=true) a server that cannot start fails the test; elsewhere it is skipped with
    the reason (no Java, say).
    """
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    root = tmp_path_factory.mktemp("spark-connect")
    config = ConnectServerConfig(
        port=port, master="local[1]", driver_memory="1g", work_dir=root / "work"
    )
    server = local_connect_server(config, root / "logs")
    try:
        url = server.__enter__()
    except (ConnectServerError, OSError) as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"a local Spark Connect server could not start: {error}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
