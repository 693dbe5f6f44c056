"""The write lane: a hot write endpoint's whole work in one thread-pool turn, one request at a time
per process, in arrival order.

A sync FastAPI endpoint that depends on the request's session and actor takes four turns of the
thread pool (the session's start, the actor, the handler, the session's end), and under load
many pool threads run write requests at once. Those requests queue for the database's write lock
anyway (SQLite has one writer; see :class:`opsdesk.db.WriteGate`), but on the way they contend for
the GIL: every SQLite call releases it, another thread takes it, and the writer waits to get it
back. Measured on the ticket creation path: with two requests in flight instead of one, 44.5
instead of 8.6 voluntary context switches and 1.2 ms more CPU per ticket.

In the lane, an endpoint authenticates, does its work, stores an ``Idempotency-Key`` answer and
commits, all in one turn of a thread that runs only lane work, one request after another
(anyio's :class:`~anyio.CapacityLimiter` is first come, first served). That is the order the
write lock imposed anyway, without the contention; reads and other endpoints keep the shared
pool. Each Uvicorn worker process has its own lane, so processes still write in turn through
the database's lock.

Use it for endpoints on the hot path of every channel (creating tickets, adding messages)::

    @router.post("")
    async def create(body: ThingIn, request: Request, credentials: ApiCredentials) -> Response:
        return await write_lane.run(request, credentials, lambda session, actor: make(session, actor, body))

The work returns the finished :class:`~starlette.responses.Response`: it is committed with the
change, so a client that got the answer can read what it created.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.web.auth import Credentials, authenticate
from opsdesk.web.idempotency import STATE_KEY as IDEMPOTENCY_KEY
from opsdesk.web.idempotency import complete
from opsdesk.web.sessions import database_of
from opsdesk.web.transactions import CommitFailedError

logger = logging.getLogger(__name__)

# One lane per event loop (a Uvicorn worker runs one loop), made on first use inside it.
_LANE: RunVar[CapacityLimiter] = RunVar("opsdesk_write_lane")


def _lane() -> CapacityLimiter:
    try:
        return _LANE.get()
    except LookupError:
        lane = CapacityLimiter(1)
        _LANE.set(lane)
        return lane


Work = Callable[[Session, Actor], Response]


def created(answer: BaseModel, location: str | None = None) -> Response:
    """The ``201`` a lane work returns: ``answer`` serialized once, here (not validated again by
    FastAPI's response model), with its ``Location`` when it has one."""
    headers = {"Location": location} if location is not None else None
    return Response(answer.model_dump_json(), status_code=201, media_type="application/json", headers=headers)


def ok(answer: BaseModel) -> Response:
    """The ``200`` a lane work returns: ``answer`` serialized once, here."""
    return Response(answer.model_dump_json(), media_type="application/json")


async def run(request: Request, credentials: Credentials, work: Work) -> Response:
    """Authenticate the request and run ``work`` in a write transaction in the lane; commit it
    (with the ``Idempotency-Key`` answer, if the request has one) before the answer goes out.
    Any error rolls everything back and propagates to the app's error handlers."""
    return await to_thread.run_sync(_in_lane, request, credentials, work, limiter=_lane())


def _in_lane(request: Request, credentials: Credentials, work: Work) -> Response:
    with database_of(request).write_sessions() as session:
        session.begin()
        try:
            actor = authenticate(request, session, credentials)
            response = work(session, actor)
            pending = getattr(request.state, IDEMPOTENCY_KEY, None)
            if pending is not None:
                complete(
                    session,
                    pending,
                    status=response.status_code,
                    headers=list(response.raw_headers),
                    body=bytes(response.body),
                )
        except BaseException:
            session.rollback()
            raise
        try:
            session.commit()
        except Exception as error:
            session.rollback()
            logger.exception("commit failed for %s %s", request.method, request.url.path)
            raise CommitFailedError(
                "the change could not be saved; nothing was changed, please retry"
            ) from error
    return response
