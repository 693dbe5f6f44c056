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


class UnknownChatBrandError(NotFoundError):
    code = "unknown_brand"
    title = "Unknown chat brand"


class OriginNotAllowedError(DomainError):
    code = "origin_not_allowed"
    status = 403
    title = "Origin not allowed"


class BadVisitorTokenError(DomainError):
    code = "bad_token"
    status = 401
    title = "Unknown conversation"


class InvalidChatError(ValidationFailedError):
    code = "invalid_chat"


class ChatRateLimitedError(DomainError):
    code = "rate_limited"
    status = 429
    title = "Too many messages"


class ChatConversationNotFoundError(NotFoundError):
    code = "conversation_not_found"


class ChatConversationTakenError(DomainError):
    code = "conversation_taken"
    status = 409
    title = "Already taken"
