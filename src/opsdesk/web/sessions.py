"""A database session per request: reads use a read transaction, writes take the write lock
(SQLite BEGIN IMMEDIATE).

The transaction commits *before* the response starts (:mod:`opsdesk.web.transactions` does it
when the first byte of the answer is about to leave), so a client that got ``201`` can read what
it created with its next request, and a failed commit becomes a 5xx instead of a success that was
not kept. A handler that raises rolls everything back before its error answer is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from opsdesk.db import Database

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_KEY = "db_session"


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def request_session(request: Request) -> Iterator[Session]:
    database = database_of(request)
    factory = database.read_sessions if request.method in READ_METHODS else database.write_sessions
    session = factory()
    session.begin()
    setattr(request.state, STATE_KEY, session)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    else:
        # Normally already committed by the transaction middleware as the answer started.
        if session.in_transaction():
            session.commit()
    finally:
        session.close()


# Annotated shorthand for handlers: ``session: DbSession``.
DbSession = Annotated[Session, Depends(request_session)]
