"""PostgreSQL's pool: connections idle for a while are pinged before use, busy ones are not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from opsdesk import db as database_module
from opsdesk.db import Database, make_engine


@pytest.fixture
def engine(migrated_databases: dict[str, Database]) -> Iterator[Engine]:
    engine = make_engine(migrated_databases["postgresql"].url, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(engine: Engine, backend: int) -> None:
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return pings


def test_a_connection_in_steady_use_is_not_pinged(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _count_pings(engine, monkeypatch)
    first = _backend(engine)
    assert [_backend(engine) for _ in range(5)] == [first] * 5
    assert pings == []


def test_an_idle_connection_that_died_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _count_pings(engine, monkeypatch)
    first = _backend(engine)
    _terminate(engine, first)
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    # No error: the ping finds the connection dead and the pool hands out a new one.
    second = _backend(engine)
    assert second != first
    assert len(pings) == 1


def test_a_busy_connection_that_died_fails_once_and_the_pool_recovers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trade-off of not pinging busy connections: the statement that finds the server gone
    # fails (as any statement in flight at that moment would), and the next checkout reconnects.
    first = _backend(engine)
    _terminate(engine, first)
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    connection = engine.connect()
    try:
        with pytest.raises(OperationalError):
            connection.exec_driver_sql("SELECT 1")
    finally:
        connection.rollback()
        connection.close()
    assert _backend(engine) != first


def test_a_session_whose_connection_died_rolls_back_cleanly(engine: Engine) -> None:
    # The configuration cache's rollback listener once asked the dead connection for its info,
    # which made the rollback itself raise.
    session = Session(engine)
    first = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
    _terminate(engine, first)
    with pytest.raises(OperationalError):
        session.execute(text("SELECT 1"))
    session.rollback()
    assert int(session.execute(text("SELECT pg_backend_pid()")).scalar_one()) != first
    session.close()
