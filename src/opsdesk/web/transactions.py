"""Commit the request's transaction as its answer starts, not after it was sent.

FastAPI closes ``yield`` dependencies only after the response went out, which would let a client
see ``201`` for a change that is not yet committed (or never will be). This ASGI middleware holds
the ``http.response.start`` message, commits the request's session (see
:func:`opsdesk.web.sessions.request_session`) and only then lets the answer go; if the commit
fails, the client gets a 503 problem instead.

For a POST carrying an ``Idempotency-Key`` (see :mod:`opsdesk.web.idempotency`) the whole answer
is buffered and stored in the same transaction as the change it answers, so a repeat can be given
exactly the first answer.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from anyio import to_thread
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsdesk.errors import DomainError
from opsdesk.web.idempotency import STATE_KEY as IDEMPOTENCY_KEY
from opsdesk.web.idempotency import PendingKey, complete
from opsdesk.web.problems import PROBLEM_JSON
from opsdesk.web.sessions import STATE_KEY as SESSION_KEY

logger = logging.getLogger(__name__)


class CommitFailedError(DomainError):
    code = "commit_failed"
    status = 503
    title = "Not saved"


def _commit(
    session: Session, pending: PendingKey | None, status: int, headers: list[Any], body: bytes
) -> None:
    try:
        if pending is not None:
            complete(session, pending, status=status, headers=headers, body=body)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _failure(path: str) -> list[Message]:
    body = json.dumps(
        {
            "type": "https://opsdesk.dev/problems/commit_failed",
            "title": "Not saved",
            "status": 503,
            "detail": "the change could not be saved; nothing was changed, please retry",
            "code": "commit_failed",
            "instance": path,
        }
    ).encode()
    return [
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        },
        {"type": "http.response.body", "body": body, "more_body": False},
    ]


class TransactionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        held: Message | None = None
        body_parts: list[bytes] = []
        swallow = False

        async def send_after_commit(message: Message) -> None:
            nonlocal held, swallow
            if swallow:
                return
            if held is None and message["type"] == "http.response.start":
                session: Session | None = state.get(SESSION_KEY)
                if session is None or not session.in_transaction():
                    await send(message)
                    return
                held = message
                if state.get(IDEMPOTENCY_KEY) is None:
                    ok = await self._finish(session, None, held, [], send, scope)
                    held = None
                    swallow = not ok
                return
            if held is not None and message["type"] == "http.response.body":
                body_parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                session = state[SESSION_KEY]
                ok = await self._finish(session, state.get(IDEMPOTENCY_KEY), held, body_parts, send, scope)
                held = None
                if not ok:
                    swallow = True
                return
            await send(message)

        await self.app(scope, receive, send_after_commit)

    async def _finish(
        self,
        session: Session,
        pending: PendingKey | None,
        start: Message,
        body_parts: list[bytes],
        send: Send,
        scope: Scope,
    ) -> bool:
        status = int(start["status"])
        body = b"".join(body_parts)
        stored = pending if status < 500 else None
        try:
            await to_thread.run_sync(_commit, session, stored, status, list(start.get("headers", [])), body)
        except Exception:
            logger.exception("commit failed for %s %s", scope.get("method"), scope.get("path"))
            for message in _failure(str(scope.get("path", ""))):
                await send(message)
            return False
        await send(start)
        if pending is not None:
            await send({"type": "http.response.body", "body": body, "more_body": False})
        return True
