"""Downloading a message's attachment, for whoever may see its ticket."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from opsdesk.tickets.errors import AttachmentNotFoundError
from opsdesk.tickets.service import attachments
from opsdesk.web.auth import ApiActor
from opsdesk.web.sessions import DbSession

router = APIRouter(prefix="/api/v1/attachments", tags=["attachments"])


@router.get(
    "/{attachment_id}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file's bytes"}},
)
def download_attachment(
    attachment_id: int, request: Request, actor: ApiActor, session: DbSession
) -> FileResponse:
    """The file, streamed with its stored content type. Images and plain text open in the
    browser; everything else downloads (``Content-Disposition: attachment``). Not found if you
    may not see the ticket."""
    attachment, _ = attachments.access_attachment(session, actor, attachment_id)
    settings = request.app.state.settings
    path = attachments.AttachmentStore(settings.attachments_dir, settings.attachment_max_bytes).path_of(
        attachment
    )
    if not path.is_file():
        raise AttachmentNotFoundError(f"the file of attachment {attachment_id} is missing from storage")
    return FileResponse(
        path,
        media_type=attachment.content_type,
        headers={
            "Content-Disposition": attachments.content_disposition(attachment),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
            "Cache-Control": "private, no-cache",
        },
    )
