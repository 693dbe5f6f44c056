"""The fixed vocabularies of the channels domain."""

from __future__ import annotations

from enum import StrEnum


class InboundStatus(StrEnum):
    """Where a stored raw input is in its processing."""

    PENDING = "pending"  # stored, not yet processed (a crash leaves rows here; a sweep resumes them)
    PROCESSED = "processed"  # on a ticket
    IGNORED = "ignored"  # noise that threads nowhere (an unmatched bounce or auto-reply)
    THROTTLED = "throttled"  # the sender wrote too often; kept, not turned into tickets
    REFUSED = "refused"  # over the size limit; the sender was told why
    FAILED = "failed"  # processing raised; ``error`` says why, a retry may succeed


class NoiseKind(StrEnum):
    """Why a message must never trigger an automatic reply."""

    NONE = "none"
    AUTO_REPLY = "auto_reply"  # out of office, vacation, autoresponders
    BOUNCE = "bounce"  # delivery status notifications, mailer-daemons
    BULK = "bulk"  # Precedence bulk/list/junk, mailing lists
    SUPPRESS_REQUESTED = "suppress_requested"  # X-Auto-Response-Suppress: a person, but no auto-reply


class OutboundKind(StrEnum):
    REPLY = "reply"
    RECEIPT = "receipt"
    REFUSAL = "refusal"


class ChatStatus(StrEnum):
    """Where a live conversation is."""

    WAITING = "waiting"  # the visitor wrote; no agent has accepted yet
    ACTIVE = "active"  # an agent accepted and answers in the chat
    ENDED = "ended"  # the agent (or the visitor) ended it; later replies go by email
    OFFLINE = "offline"  # no agent was online or none accepted in time: answered by email


class ChatPresenceStatus(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"
