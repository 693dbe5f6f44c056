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
from opsdesk.channels import secret_box
from opsdesk.channels.enums import InboundStatus
from opsdesk.channels.errors import ChannelSettingNotFoundError, InvalidInboundError
from opsdesk.channels.models import RawInbound, SlackConnection, SlackThread
from opsdesk.config import Settings
from opsdesk.errors import FieldProblem
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import AuthorKind, Channel
from opsdesk.tickets.events import MessageAdded
from opsdesk.tickets.models import Account, Message, Ticket

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


@dataclass(frozen=True, slots=True)
class SlackConnectionValues:
    """What an admin sets on a connection; ``bot_token``/``signing_secret`` None or "" keep the
    stored one on an update."""

    team_id: str
    channel_id: str
    name: str = ""
    bot_token: str | None = None
    signing_secret: str | None = None
    account_id: int | None = None


def _connection_problems(
    session: Session, values: SlackConnectionValues, connection_id: int | None
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not values.team_id.strip():
        problems.append(FieldProblem(("team_id",), "the workspace (team) id is required, like T0123ABCD"))
    if not values.channel_id.strip():
        problems.append(FieldProblem(("channel_id",), "the channel id is required, like C0123ABCD"))
    elif any(char.isspace() for char in values.channel_id.strip()) or len(values.channel_id.strip()) > 40:
        problems.append(FieldProblem(("channel_id",), "is not a Slack channel id"))
    else:
        other = session.scalar(
            select(SlackConnection.id).where(SlackConnection.channel_id == values.channel_id.strip())
        )
        if other is not None and other != connection_id:
            problems.append(
                FieldProblem(("channel_id",), f"channel {values.channel_id.strip()} is already connected")
            )
    if (connection_id is None and not values.bot_token) or (
        values.bot_token and not values.bot_token.startswith("xoxb-")
    ):
        problems.append(FieldProblem(("bot_token",), "must be a bot token (xoxb-…)"))
    if values.account_id is not None and session.get(Account, values.account_id) is None:
        problems.append(FieldProblem(("account_id",), f"account {values.account_id} does not exist"))
    if len(values.name) > 200:
        problems.append(FieldProblem(("name",), "must be at most 200 characters"))
    return problems


def _public(connection: SlackConnection) -> dict[str, object]:
    return {
        "team_id": connection.team_id,
        "channel_id": connection.channel_id,
        "name": connection.name,
        "account_id": connection.account_id,
        "has_signing_secret": connection.signing_secret is not None,
    }


def create_connection(
    session: Session, actor: Actor, settings: Settings, values: SlackConnectionValues
) -> SlackConnection:
    require(actor, Permission.CHANNEL_MANAGE)
    problems = _connection_problems(session, values, None)
    if problems:
        raise InvalidInboundError("the Slack connection is not valid", fields=problems)
    connection = SlackConnection(
        team_id=values.team_id.strip(),
        channel_id=values.channel_id.strip(),
        name=values.name.strip(),
        bot_token=secret_box.seal(settings, values.bot_token or ""),
        signing_secret=secret_box.seal(settings, values.signing_secret) if values.signing_secret else None,
        account_id=values.account_id,
    )
    session.add(connection)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="slack_connection",
        entity_id=connection.id,
        action="created",
        new=_public(connection),
    )
    return connection


def connect_channel(
    session: Session,
    actor: Actor,
    *,
    settings: Settings,
    team_id: str,
    channel_id: str,
    bot_token: str,
    name: str = "",
    signing_secret: str | None = None,
    account_id: int | None = None,
) -> SlackConnection:
    return create_connection(
        session,
        actor,
        settings,
        SlackConnectionValues(
            team_id=team_id,
            channel_id=channel_id,
            name=name,
            bot_token=bot_token,
            signing_secret=signing_secret,
            account_id=account_id,
        ),
    )


def update_connection(
    session: Session, actor: Actor, settings: Settings, connection_id: int, values: SlackConnectionValues
) -> SlackConnection:
    require(actor, Permission.CHANNEL_MANAGE)
    connection = access_connection(session, actor, connection_id)
    problems = _connection_problems(session, values, connection.id)
    if problems:
        raise InvalidInboundError("the Slack connection is not valid", fields=problems)
    before = _public(connection)
    connection.team_id = values.team_id.strip()
    connection.channel_id = values.channel_id.strip()
    connection.name = values.name.strip()
    connection.account_id = values.account_id
    secrets_changed = []
    if values.bot_token:
        connection.bot_token = secret_box.seal(settings, values.bot_token)
        secrets_changed.append("bot_token")
    if values.signing_secret:
        connection.signing_secret = secret_box.seal(settings, values.signing_secret)
        secrets_changed.append("signing_secret")
    session.flush()
    after = _public(connection)
    changed: dict[str, object] = {key: value for key, value in after.items() if before[key] != value}
    changed.update(dict.fromkeys(secrets_changed, "changed"))
    if changed:
        audit.record(
            session,
            actor,
            entity_type="slack_connection",
            entity_id=connection.id,
            action="updated",
            old={key: before.get(key) for key in changed if key in before},
            new=changed,
        )
    return connection


def disconnect(session: Session, actor: Actor, connection_id: int) -> None:
    require(actor, Permission.CHANNEL_MANAGE)
    connection = access_connection(session, actor, connection_id)
    audit.record(
        session,
        actor,
        entity_type="slack_connection",
        entity_id=connection.id,
        action="deleted",
        old=_public(connection),
    )
    session.delete(connection)
    session.flush()


def list_connections(session: Session, actor: Actor) -> list[SlackConnection]:
    require(actor, Permission.CHANNEL_READ)
    return list(session.scalars(select(SlackConnection).order_by(SlackConnection.name, SlackConnection.id)))


def access_connection(session: Session, actor: Actor, connection_id: int) -> SlackConnection:
    require(actor, Permission.CHANNEL_READ)
    connection = session.get(SlackConnection, connection_id)
    if connection is None:
        raise ChannelSettingNotFoundError(f"Slack connection {connection_id} does not exist")
    return connection


def signing_secrets_for(session: Session, settings: Settings, team_id: str) -> list[str]:
    """The signing secrets a request claiming to come from ``team_id`` may be signed with: the
    workspace's own (stored sealed) and the installation-wide ``OPSDESK_SLACK_SIGNING_SECRET``."""
    secrets = [
        secret_box.reveal(settings, sealed)
        for sealed in session.scalars(
            select(SlackConnection.signing_secret).where(
                SlackConnection.team_id == team_id, SlackConnection.signing_secret.is_not(None)
            )
        )
        if sealed
    ]
    if settings.slack_signing_secret:
        secrets.append(settings.slack_signing_secret)
    return list(dict.fromkeys(secrets))


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
    if connection.account_id is not None and received.created:
        _join_account(session, received.ticket, connection.account_id)
    row.ticket_id = received.ticket.id
    row.message_id = received.message.id
    row.status = InboundStatus.PROCESSED.value
    row.processed_at = clock.now()
    session.flush()
    return SlackOutcome(row.status, received.ticket.id)


def _join_account(session: Session, ticket: Ticket, account_id: int) -> None:
    """The channel belongs to a customer account: its people and tickets do too (unless the
    person already has an account of their own)."""
    from opsdesk.tickets.service.people import update_person

    requester = ticket.requester
    if requester.primary_account_id is None:
        update_person(session, SLACK_ACTOR, requester, {"primary_account_id": account_id})
    if ticket.account_id is None:
        tickets.update_ticket(
            session, SLACK_ACTOR, ticket, {"account_id": requester.primary_account_id or account_id}
        )


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


def bot_token_for(session: Session, settings: Settings, channel_id: str) -> str | None:
    sealed = session.scalar(select(SlackConnection.bot_token).where(SlackConnection.channel_id == channel_id))
    return secret_box.reveal(settings, sealed) if sealed else None


def account_for_channel(session: Session, channel_id: str) -> int | None:
    return session.scalar(select(SlackConnection.account_id).where(SlackConnection.channel_id == channel_id))
