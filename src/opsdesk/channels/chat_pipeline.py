"""The transactions behind each chat frame (the sockets in ``chat_api``/``chat_pages`` call these
from a worker thread; nothing here knows about WebSockets).

Invariants: a visitor message is committed to ``raw_inbound`` before it is processed into the
ticket (a second transaction), as every inbound channel does; a processing failure keeps the
stored row ``failed`` with the reason and the client is not acknowledged, so it resends the same
client id and the stored row is processed again; every answer is plain JSON-able data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.sessions import session_for_secret
from opsdesk.channels.enums import ChatStatus, InboundStatus
from opsdesk.channels.errors import InvalidChatError
from opsdesk.channels.models import ChatConversation
from opsdesk.channels.service import chat, chat_presence, inbound
from opsdesk.channels.service.brand_snapshots import ChatBrandInfo
from opsdesk.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Visitor:
    conversation_id: int
    token: str | None = None


def check_brand(database: Database, key: str, origin: str | None) -> ChatBrandInfo:
    with database.transaction(write=False) as session:
        return chat.brand_for_origin(session, key, origin)


def widget_config(database: Database, key: str, origin: str | None) -> dict[str, Any]:
    with database.transaction(write=False) as session:
        brand = chat.brand_for_origin(session, key, origin)
        return {
            "brand": brand.key,
            "name": brand.name,
            "greeting": brand.greeting,
            "agents_online": chat_presence.online_agent_count(session) > 0,
        }


def _welcome(session: Any, conversation: ChatConversation | None) -> dict[str, Any]:
    online = chat_presence.online_agent_count(session) > 0
    if conversation is None:
        return {"type": "welcome", "conversation": None, "messages": [], "agents_online": online}
    return {
        "type": "welcome",
        "conversation": chat.conversation_view(session, conversation),
        "messages": chat.transcript(session, conversation),
        "agents_online": online,
    }


def visitor_hello(
    database: Database, brand: ChatBrandInfo, token: str | None
) -> tuple[int | None, dict[str, Any]]:
    """Resume the conversation of a stored token (or greet a new visitor)."""
    with database.transaction() as session:
        if not token:
            return None, _welcome(session, None)
        conversation = chat.conversation_for_token(session, brand, token)
        chat.visitor_seen(session, conversation)
        return conversation.id, _welcome(session, conversation)


def visitor_start(
    database: Database,
    brand: ChatBrandInfo,
    *,
    name: object,
    email: object,
    origin: str,
    client_address: str,
    starts_per_ten_minutes: int = chat.STARTS_PER_TEN_MINUTES,
) -> tuple[int, dict[str, Any]]:
    if not isinstance(name, str) or not isinstance(email, str):
        raise InvalidChatError("name and email are required", fields=[])
    with database.transaction() as session:
        started = chat.start_conversation(
            session,
            brand,
            name=name,
            email=email,
            origin=origin,
            client_address=client_address,
            starts_per_ten_minutes=starts_per_ten_minutes,
        )
        answer = _welcome(session, started.conversation)
        answer.update({"type": "started", "token": started.token})
        return started.conversation.id, answer


def visitor_message(
    database: Database,
    conversation_id: int,
    *,
    client_id: object,
    body: object,
    per_minute: int = chat.MESSAGES_PER_MINUTE,
) -> dict[str, Any]:
    """Store, then process; the answer is the acknowledgement the widget waits for."""
    try:
        with database.transaction() as session:
            conversation = session.get_one(ChatConversation, conversation_id)
            stored = chat.store_visitor_message(
                session, conversation, client_id=client_id, body=body, per_minute=per_minute
            )
    except IntegrityError:  # the same client id arrived twice at once: the other copy won
        with database.transaction() as session:
            conversation = session.get_one(ChatConversation, conversation_id)
            stored = chat.store_visitor_message(
                session, conversation, client_id=client_id, body=body, per_minute=per_minute
            )
    message_id = stored.message_id
    if stored.status != InboundStatus.PROCESSED.value:
        try:
            with database.transaction() as session:
                message_id = chat.process_visitor_message(session, stored.raw_inbound_id).id
        except Exception as error:
            log.exception("processing chat message %s failed", stored.raw_inbound_id)
            with database.transaction() as session:
                inbound.mark_failed(session, stored.raw_inbound_id, f"{type(error).__name__}: {error}")
            raise
    with database.transaction(write=False) as session:
        conversation = session.get_one(ChatConversation, conversation_id)
        return {
            "type": "ack",
            "client_id": client_id,
            "message_id": message_id,
            "duplicate": stored.duplicate,
            "conversation": chat.conversation_view(session, conversation),
        }


def visitor_ping(database: Database, conversation_id: int) -> None:
    with database.transaction() as session:
        chat.visitor_seen(session, session.get_one(ChatConversation, conversation_id))


def visitor_end(database: Database, conversation_id: int) -> dict[str, Any]:
    with database.transaction() as session:
        conversation = session.get_one(ChatConversation, conversation_id)
        if conversation.status in (ChatStatus.WAITING.value, ChatStatus.ACTIVE.value):
            chat.end(session, conversation, by="the customer")
        return chat.status_event(session, conversation)


# ---------------------------------------------------------------- agents


@dataclass(frozen=True, slots=True)
class ChatAgent:
    user_id: int
    group_ids: frozenset[int] | None  # a contractor's groups: only their chats reach them


def agent_for_cookie(database: Database, secret: str | None) -> ChatAgent | None:
    """The staff user behind a session cookie who may answer chats, or None."""
    if not secret:
        return None
    with database.transaction() as session:
        web_session = session_for_secret(session, secret)
        if web_session is None:
            return None
        actor = Actor.for_user(web_session.user, via="chat")
        from opsdesk.auth.permissions import Permission, has_permission

        if not has_permission(actor, Permission.TICKET_REPLY):
            return None
        scope = chat.visible_group_ids(actor)
        return ChatAgent(web_session.user_id, frozenset(scope) if scope is not None else None)


def _actor(session: Any, user_id: int) -> Actor:
    return Actor.for_user(session.get_one(User, user_id), via="chat")


def agent_hello(database: Database, user_id: int, status: str | None) -> dict[str, Any]:
    with database.transaction() as session:
        actor = _actor(session, user_id)
        current = chat_presence.presence_of(session, user_id)
        if status == "keep":  # the ticket page's panel follows chats without changing presence
            wanted = current
            chat_presence.heartbeat(session, user_id)
        else:
            # the chat page: online unless the agent said otherwise (away stays away)
            wanted = status or (current if current != "offline" else "online")
            chat_presence.set_presence(session, actor, wanted)
        queue = chat.queue_for_agent(session, actor)
        return {
            "type": "queue",
            **queue,
            "presence": wanted,
            "agents_online": chat_presence.online_agent_count(session),
        }


def agent_queue(database: Database, user_id: int) -> dict[str, Any]:
    with database.transaction(write=False) as session:
        actor = _actor(session, user_id)
        return {
            "type": "queue",
            **chat.queue_for_agent(session, actor),
            "presence": chat_presence.presence_of(session, user_id),
            "agents_online": chat_presence.online_agent_count(session),
        }


def agent_open(database: Database, user_id: int, conversation_id: int) -> dict[str, Any]:
    with database.transaction(write=False) as session:
        conversation = chat.access_conversation(session, _actor(session, user_id), conversation_id)
        return {
            "type": "transcript",
            "conversation": chat.conversation_view(session, conversation),
            "messages": chat.transcript(session, conversation),
        }


def agent_accept(database: Database, user_id: int, conversation_id: int) -> dict[str, Any]:
    with database.transaction() as session:
        conversation = chat.accept(session, _actor(session, user_id), conversation_id)
        return chat.status_event(session, conversation)


def agent_reply(
    database: Database, user_id: int, conversation_id: int, *, client_id: object, body: object
) -> dict[str, Any]:
    with database.transaction() as session:
        message = chat.agent_reply(
            session, _actor(session, user_id), conversation_id, client_id=client_id, body=body
        )
        return {
            "type": "ack",
            "client_id": client_id,
            "message_id": message.id,
            "conversation_id": conversation_id,
        }


def agent_end(database: Database, user_id: int, conversation_id: int) -> dict[str, Any]:
    with database.transaction() as session:
        conversation = chat.end_by_agent(session, _actor(session, user_id), conversation_id)
        return chat.status_event(session, conversation)


def agent_presence(database: Database, user_id: int, status: object) -> dict[str, Any]:
    with database.transaction() as session:
        chat_presence.set_presence(session, _actor(session, user_id), str(status))
        return {
            "type": "presence",
            "status": str(status),
            "agents_online": chat_presence.online_agent_count(session),
        }


def agent_heartbeat(database: Database, user_id: int) -> None:
    with database.transaction() as session:
        chat_presence.heartbeat(session, user_id)


def agent_gone(database: Database, user_id: int) -> None:
    with database.transaction() as session:
        chat_presence.went_offline(session, user_id)
