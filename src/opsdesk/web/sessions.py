"""A database session per request: reads use a read transaction, writes take the write lock
(SQLite BEGIN IMMEDIATE) and commit when the handler returns without error."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from opsdesk.db import Database

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def request_session(request: Request) -> Iterator[Session]:
    database = database_of(request)
    factory = database.read_sessions if request.method in READ_METHODS else database.write_sessions
    with factory() as session, session.begin():
        yield session
