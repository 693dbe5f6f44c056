"""Channel errors with stable codes."""

from __future__ import annotations

from opsdesk.errors import DomainError, NotFoundError, ValidationFailedError


class MessageTooLargeError(DomainError):
    code = "message_too_large"
    status = 413
    title = "Message too large"


class InboundAuthenticationError(DomainError):
    code = "inbound_unauthenticated"
    status = 401
    title = "Not authenticated"


class InvalidInboundError(ValidationFailedError):
    code = "invalid_inbound"


class RawInboundNotFoundError(NotFoundError):
    code = "raw_inbound_not_found"


class ChannelSettingNotFoundError(NotFoundError):
    code = "channel_setting_not_found"
