"""Agents' chat presence: online, away or offline, kept alive by heartbeats.

Invariants: an agent counts as online only while their status is ``online`` and their last
heartbeat is younger than :data:`STALE_AFTER` (the agent page beats every
:data:`HEARTBEAT_SECONDS`), so a closed tab or a crashed browser goes offline by itself even when
its socket never said goodbye. Chat presence is separate from triage's work availability
(``users.availability``): going offline in chat must not hand the agent's tickets to colleagues,
which is what triage does when an agent goes away.

Every presence change publishes :class:`~opsdesk.channels.events.ChatPresenceSet`; its reaction
(:func:`opsdesk.channels.service.chat.on_presence_set`) sends waiting chats to email when no agent
is left online, whichever page, socket or job changed the presence.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.permissions import Permission, require
from opsdesk.channels.chat_fanout import agents_topic, publish_after_commit, session_namespace
from opsdesk.channels.enums import ChatPresenceStatus
from opsdesk.channels.errors import InvalidChatError
from opsdesk.channels.events import ChatPresenceSet
from opsdesk.channels.models import ChatPresence
from opsdesk.errors import FieldProblem

HEARTBEAT_SECONDS = 15
STALE_AFTER = timedelta(seconds=45)


def presence_of(session: Session, user_id: int) -> str:
    row = session.get(ChatPresence, user_id)
    if row is None:
        return ChatPresenceStatus.OFFLINE.value
    if row.status == ChatPresenceStatus.ONLINE.value and row.last_heartbeat_at < clock.now() - STALE_AFTER:
        return ChatPresenceStatus.OFFLINE.value
    return row.status


def set_presence(session: Session, actor: Actor, status: str) -> ChatPresence:
    """The agent chooses online, away or offline for chat (a heartbeat comes with it)."""
    require(actor, Permission.TICKET_REPLY)
    if status not in {member.value for member in ChatPresenceStatus}:
        raise InvalidChatError(
            "unknown chat status", fields=[FieldProblem(("status",), "must be one of online, away, offline")]
        )
    assert actor.user_id is not None  # TICKET_REPLY is a staff permission
    now = clock.now()
    row = session.get(ChatPresence, actor.user_id)
    if row is None:
        row = ChatPresence(user_id=actor.user_id, status=status, last_heartbeat_at=now, changed_at=now)
        session.add(row)
        changed = True
    else:
        changed = row.status != status
        row.status = status
        row.last_heartbeat_at = now
        if changed:
            row.changed_at = now
    session.flush()
    if changed:
        _announce(session)
    # Reactions (the last agent leaving sends waiting chats to email) run for every entry point.
    bus.publish(session, ChatPresenceSet(actor.user_id, status))
    return row


def heartbeat(session: Session, user_id: int) -> None:
    """The agent page is still open."""
    row = session.get(ChatPresence, user_id)
    if row is not None:
        row.last_heartbeat_at = clock.now()
        session.flush()


def went_offline(session: Session, user_id: int) -> None:
    """The agent's last chat connection closed."""
    row = session.get(ChatPresence, user_id)
    if row is not None and row.status != ChatPresenceStatus.OFFLINE.value:
        row.status = ChatPresenceStatus.OFFLINE.value
        row.changed_at = clock.now()
        session.flush()
        _announce(session)
    bus.publish(session, ChatPresenceSet(user_id, ChatPresenceStatus.OFFLINE.value))


def online_agent_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(ChatPresence)
            .join(User, User.id == ChatPresence.user_id)
            .where(
                ChatPresence.status == ChatPresenceStatus.ONLINE.value,
                ChatPresence.last_heartbeat_at >= clock.now() - STALE_AFTER,
                User.is_active.is_(True),
            )
        )
        or 0
    )


def online_agents(session: Session) -> list[tuple[int, str]]:
    """(user id, name) of the agents online for chat, by name."""
    rows = session.execute(
        select(User.id, User.name)
        .join(ChatPresence, ChatPresence.user_id == User.id)
        .where(
            ChatPresence.status == ChatPresenceStatus.ONLINE.value,
            ChatPresence.last_heartbeat_at >= clock.now() - STALE_AFTER,
            User.is_active.is_(True),
        )
        .order_by(User.name)
    )
    return [(int(user_id), str(name)) for user_id, name in rows]


def _announce(session: Session) -> None:
    publish_after_commit(
        session,
        agents_topic(session_namespace(session)),
        {"type": "presence", "agents_online": online_agent_count(session)},
    )
