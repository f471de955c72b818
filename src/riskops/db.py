"""The platform database: SQLite by default, PostgreSQL when RISKOPS_DATABASE_URL says so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, create_engine

from riskops import records  # noqa: F401  (registers the tables on SQLModel.metadata)
from riskops.audit import table as _audit_table  # noqa: F401  (registers audit_log)
from riskops.cost import table as _cost_table  # noqa: F401  (registers run_cost)
from riskops.identity import principals as _principals  # noqa: F401  (registers principal)

T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide where transactions begin: pysqlite's own handling
    # turns the release of a first savepoint into a commit (SQLAlchemy's documented recipe).
    dbapi_connection.isolation_level = None
    # WAL lets the watcher, flow runs and the CLI read while one of them writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE: take the write lock up front, so two writers queue on busy_timeout instead of
    # one failing with "database is locked" when both upgrade from a read (WAL keeps reads free).
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` and make sure every table exists."""
    from riskops import outbox  # noqa: F401  (registers outbox; it imports this module)

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    SQLModel.metadata.create_all(engine)
    return engine


def insert_once(session: Session, record: T, find: Callable[[], T | None]) -> T:
    """Insert ``record`` unless ``find()`` returns one already; a racing insert loses quietly.

    For immutable, content-addressed rows: whoever inserts first wins, everyone gets that row.
    """
    existing = find()
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        existing = find()
        assert existing is not None, "unique violation but no row found"
        return existing
    return record


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
