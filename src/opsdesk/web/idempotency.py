"""``Idempotency-Key`` on POST: a repeat gets the first answer instead of a second change.

Invariants:
- keys belong to a user: ``(user, key)`` is unique, and two users may use the same key;
- a repeat with the same method, path and body gets the stored status and body again, with
  ``Idempotent-Replayed: true``; the same key with a different request is a 422 problem
  (``idempotency_key_reused``); a repeat while the first is still running is a 409;
- only answers that were committed are stored (they are written in the same transaction, by
  :mod:`opsdesk.web.transactions`); a request that failed with an error left nothing behind, so
  retrying it with the same key runs it again;
- records are kept for :data:`RETENTION`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.errors import ConflictError, FieldProblem, ValidationFailedError
from opsdesk.web.models import IdempotencyRecord

HEADER = "Idempotency-Key"
STATE_KEY = "idempotency_pending"
RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 200


class IdempotencyKeyReusedError(ValidationFailedError):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused"


class IdempotencyInProgressError(ConflictError):
    code = "idempotency_in_progress"
    title = "Request in progress"


class IdempotentReplay(Exception):
    """Answer with the stored response (raised before the handler runs, so nothing changes)."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(record.key)
        self.status_code = record.status_code or 200
        self.content_type = record.content_type or "application/json"
        self.location = record.location
        self.body = record.response_body or b""


@dataclass(frozen=True, slots=True)
class PendingKey:
    record_id: int


def replay_response(request: Request, error: Exception) -> Response:
    """The exception handler for :class:`IdempotentReplay` (registered by ``create_app``)."""
    del request
    assert isinstance(error, IdempotentReplay)
    headers = {"Idempotent-Replayed": "true"}
    if error.location:
        headers["Location"] = error.location
    return Response(error.body, status_code=error.status_code, media_type=error.content_type, headers=headers)


async def request_digest(request: Request) -> str | None:
    """SHA-256 of the body of a POST that carries an Idempotency-Key (None otherwise)."""
    if request.method != "POST" or HEADER.lower() not in request.headers:
        return None
    return hashlib.sha256(await request.body()).hexdigest()


def _check_same_request(record: IdempotencyRecord, method: str, path: str, digest: str) -> None:
    if (record.method, record.path, record.request_digest) != (method, path, digest):
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used for a different request",
            fields=[FieldProblem(("header", HEADER), "already used with another body or path", "reused")],
        )
    if record.status_code is None:
        raise IdempotencyInProgressError("the first request with this Idempotency-Key is still running")
    raise IdempotentReplay(record)


def begin(session: Session, request: Request, *, user_id: int, digest: str) -> PendingKey:
    """Replay a stored answer, refuse a reused key, or reserve the key for this request."""
    key = request.headers[HEADER].strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailedError(
            "bad Idempotency-Key",
            fields=[FieldProblem(("header", HEADER), f"must be 1 to {MAX_KEY_LENGTH} characters")],
        )
    method, path = request.method, request.url.path
    statement = select(IdempotencyRecord).where(
        IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
    )
    existing = session.scalars(statement).first()
    if existing is not None:
        _check_same_request(existing, method, path, digest)
    now = clock.now()
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - RETENTION))
    record = IdempotencyRecord(
        user_id=user_id, key=key, method=method, path=path[:500], request_digest=digest, created_at=now
    )
    try:
        # A concurrent first request (PostgreSQL) makes this wait, then collide on the key.
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        winner = session.scalars(statement.execution_options(populate_existing=True)).first()
        if winner is None:
            raise IdempotencyInProgressError("retry: a request with this key just failed") from None
        _check_same_request(winner, method, path, digest)
    pending = PendingKey(record_id=record.id)
    setattr(request.state, STATE_KEY, pending)
    return pending


def complete(session: Session, pending: PendingKey, *, status: int, headers: list[Any], body: bytes) -> None:
    """Store the answer beside the change (called just before the request commits)."""
    record = session.get(IdempotencyRecord, pending.record_id)
    if record is None:
        return
    decoded = {
        bytes(name).decode("latin-1").lower(): bytes(value).decode("latin-1") for name, value in headers
    }
    record.status_code = status
    record.content_type = decoded.get("content-type")
    record.location = decoded.get("location")
    record.response_body = body
    record.completed_at = clock.now()
    session.flush()
