"""Slack Connect: messages in connected channels become tickets, thread replies add to them, and
agents' public replies post back into the thread through the outbox (slack-sdk).

Invariants: a Slack event is stored (``raw_inbound``, keyed by its ``event_id``) before it is
processed, so Slack's retries of the same event are ingested once; only people's messages count
(bot messages, edits, joins and our own posts are ignored, which also stops loops); a new
top-level message opens a ticket and remembers its thread; a reply in that thread lands on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock, outbox
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.channels.enums import InboundStatus
from opsdesk.channels.errors import InvalidInboundError
from opsdesk.channels.models import RawInbound, SlackConnection, SlackThread
from opsdesk.errors import FieldProblem
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import AuthorKind, Channel
from opsdesk.tickets.events import MessageAdded
from opsdesk.tickets.models import Message

SLACK_ACTOR = Actor.integration("slack", via=Channel.SLACK.value)
SLACK_POST_JOB = "slack.post"
_IGNORED_SUBTYPES = frozenset(
    {"bot_message", "message_changed", "message_deleted", "channel_join", "channel_leave", "thread_broadcast"}
)


@dataclass(frozen=True, slots=True)
class SlackOutcome:
    status: str
    ticket_id: int | None = None
    duplicate: bool = False


def connect_channel(
    session: Session, actor: Actor, *, team_id: str, channel_id: str, bot_token: str, name: str = ""
) -> SlackConnection:
    require(actor, Permission.CHANNEL_MANAGE)
    problems: list[FieldProblem] = []
    if not team_id or not channel_id:
        problems.append(FieldProblem(("channel_id",), "team and channel ids are required"))
    if not bot_token.startswith("xoxb-"):
        problems.append(FieldProblem(("bot_token",), "must be a bot token (xoxb-…)"))
    if channel_id and session.scalar(
        select(SlackConnection.id).where(SlackConnection.channel_id == channel_id)
    ):
        problems.append(FieldProblem(("channel_id",), f"channel {channel_id} is already connected"))
    if problems:
        raise InvalidInboundError("the Slack connection is not valid", fields=problems)
    connection = SlackConnection(team_id=team_id, channel_id=channel_id, bot_token=bot_token, name=name)
    session.add(connection)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="slack_connection",
        entity_id=connection.id,
        action="created",
        new={"team_id": team_id, "channel_id": channel_id, "name": name},
    )
    return connection


def store_event(session: Session, envelope: dict[str, Any]) -> tuple[RawInbound, bool]:
    """Keep the event callback as Slack sent it; (row, whether it was seen before)."""
    key = f"slack:{envelope.get('event_id') or envelope.get('event', {}).get('client_msg_id', '')}"
    existing = session.scalars(select(RawInbound).where(RawInbound.dedupe_key == key)).first()
    if existing is not None:
        return existing, True
    event = envelope.get("event") or {}
    row = RawInbound(
        channel=Channel.SLACK.value,
        source=f"slack:{envelope.get('team_id', '')}"[:120],
        dedupe_key=key[:600],
        sender=str(event.get("user") or "")[:320],
        payload=envelope,
        size_bytes=0,
        received_at=clock.now(),
        status=InboundStatus.PENDING.value,
    )
    session.add(row)
    session.flush()
    return row, False


def process_event(
    session: Session, row: RawInbound, requester_email: str, requester_name: str | None
) -> SlackOutcome:
    """Turn a stored message event into a ticket or a message on its thread's ticket."""
    if row.status != InboundStatus.PENDING.value:
        return SlackOutcome(row.status, row.ticket_id, duplicate=True)
    envelope = row.payload or {}
    event = envelope.get("event") or {}
    channel_id = str(event.get("channel") or "")
    connection = session.scalars(
        select(SlackConnection).where(SlackConnection.channel_id == channel_id)
    ).first()
    if (
        event.get("type") != "message"
        or event.get("subtype") in _IGNORED_SUBTYPES
        or event.get("bot_id")
        or connection is None
        or not str(event.get("text") or "").strip()
    ):
        row.status = InboundStatus.IGNORED.value
        row.error = "not a person's message in a connected channel"
        row.processed_at = clock.now()
        return SlackOutcome(row.status)
    ts = str(event.get("ts"))
    thread_ts = str(event.get("thread_ts") or ts)
    thread = session.scalars(
        select(SlackThread).where(SlackThread.channel_id == channel_id, SlackThread.thread_ts == thread_ts)
    ).first()
    text = str(event["text"])
    received = tickets.receive(
        session,
        SLACK_ACTOR,
        tickets.IncomingMessage(
            channel=Channel.SLACK.value,
            from_email=requester_email,
            from_name=requester_name,
            subject=text.strip().splitlines()[0][:120],
            body_text=text,
            external_id=f"slack:{channel_id}:{ts}",
            ticket_id=thread.ticket_id if thread is not None else None,
        ),
    )
    if thread is None or thread.ticket_id != received.ticket.id:
        if thread is None:
            session.add(SlackThread(channel_id=channel_id, thread_ts=thread_ts, ticket_id=received.ticket.id))
        else:  # the ticket was closed and a follow-up opened: the thread now belongs to it
            thread.ticket_id = received.ticket.id
    row.ticket_id = received.ticket.id
    row.message_id = received.message.id
    row.status = InboundStatus.PROCESSED.value
    row.processed_at = clock.now()
    session.flush()
    return SlackOutcome(row.status, received.ticket.id)


def queue_public_reply(session: Session, event: MessageAdded) -> None:
    """Reaction to MessageAdded: post a staff public reply into the ticket's Slack thread."""
    if event.author_kind != AuthorKind.STAFF.value or not event.is_public:
        return
    thread = session.scalars(select(SlackThread).where(SlackThread.ticket_id == event.ticket_id)).first()
    if thread is None:
        return
    message = session.get_one(Message, event.message_id)
    outbox.enqueue(
        session,
        SLACK_POST_JOB,
        {
            "channel": thread.channel_id,
            "thread_ts": thread.thread_ts,
            "text": message.body_text,
            "message_id": message.id,
        },
        idempotency_key=f"{SLACK_POST_JOB}:{message.id}",
    )


def bot_token_for(session: Session, channel_id: str) -> str | None:
    return session.scalar(select(SlackConnection.bot_token).where(SlackConnection.channel_id == channel_id))
