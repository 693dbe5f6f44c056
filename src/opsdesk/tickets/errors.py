"""Ticket-domain errors with stable codes."""

from __future__ import annotations

from opsdesk.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError


class TicketNotFoundError(NotFoundError):
    code = "ticket_not_found"


class TicketClosedError(ConflictError):
    code = "ticket_closed"
    title = "Ticket is closed"


class InvalidTicketError(ValidationFailedError):
    code = "invalid_ticket"


class AttachmentTooLargeError(DomainError):
    code = "attachment_too_large"
    status = 413
    title = "Attachment too large"


class MergeRefusedError(ConflictError):
    code = "merge_refused"
    title = "Merge refused"


class AttachmentTypeRefusedError(DomainError):
    code = "attachment_type_refused"
    status = 415
    title = "Attachment type refused"


class AttachmentNotFoundError(NotFoundError):
    code = "attachment_not_found"
