"""HTTP endpoints of the channels domain under ``/api/v1/channels``.

- ``POST /email/inbound``: a raw MIME message as mail providers' inbound webhooks post it
  (``Authorization: Bearer <inbound key>`` or ``?key=``); stored, then processed like SMTP mail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, status

from opsdesk.channels import inbound_pipeline
from opsdesk.channels.errors import InboundAuthenticationError, InvalidInboundError
from opsdesk.channels.inbound_keys import is_valid_inbound_key
from opsdesk.config import Settings
from opsdesk.errors import FieldProblem
from opsdesk.web.sessions import database_of

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/email/inbound", status_code=status.HTTP_202_ACCEPTED)
async def receive_raw_email(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    key: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Take one raw RFC 5322 message (``message/rfc822``) and file it onto its ticket."""
    settings = _settings(request)
    presented = key or (authorization or "").removeprefix("Bearer ").strip()
    if not presented or not is_valid_inbound_key(settings.secret_key, presented):
        raise InboundAuthenticationError("a valid inbound email key is required (Authorization: Bearer …)")
    raw = await request.body()
    if not raw.strip():
        raise InvalidInboundError(
            "the request body must be a raw email", fields=[FieldProblem(("body",), "must not be empty")]
        )
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(
        inbound_pipeline.ingest_email, database_of(request), raw, source="http", settings=settings
    )
    return {
        "raw_inbound_id": result.raw_inbound_id,
        "status": result.status,
        "duplicate": result.duplicate,
        "ticket_id": result.ticket_id,
    }
