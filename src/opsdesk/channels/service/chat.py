"""Live chat: the widget's brands and allowed origins, conversations, messages in both directions,
accepting and ending, and the fall back to a ticket answered by email.

Invariants:
- a conversation is a ticket of channel ``chat`` from its first message on, made through
  ``tickets.service.receive`` like every other channel; the visitor's messages are customer
  messages on it, an agent's chat replies are public staff replies;
- a visitor message is stored (``raw_inbound``, channel ``chat``, committed) before it becomes a
  ticket message, and both carry the key ``chat:<conversation>:<client message id>``: a resend
  of the same client id is stored and delivered once; an agent reply is idempotent the same way;
- bad input (unknown brand, an origin not on the brand's list, a bad visitor token, an empty or
  oversize message, a bad client id, too many messages) raises a :mod:`channels.errors` error
  before anything is written;
- when no agent is online as the first message arrives, or nobody accepts within the brand's
  ``accept_timeout_seconds``, the conversation goes ``offline``: the requester is the visitor's
  email and staff replies go out by email (:func:`replies_by_email`), through the outbox path
  every email reply takes;
- what connections must hear (a message, a status change) is announced after commit through
  :mod:`opsdesk.channels.chat_fanout`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock, outbox
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.permissions import Permission, is_group_scoped, require
from opsdesk.channels.chat_fanout import (
    agents_topic,
    conversation_topic,
    publish_after_commit,
    session_namespace,
)
from opsdesk.channels.enums import ChatStatus, InboundStatus
from opsdesk.channels.errors import (
    BadVisitorTokenError,
    ChatConversationNotFoundError,
    ChatConversationTakenError,
    ChatRateLimitedError,
    InvalidChatError,
    OriginNotAllowedError,
    UnknownChatBrandError,
)
from opsdesk.channels.events import ChatPresenceSet
from opsdesk.channels.models import (
    ChatBrand,
    ChatConversation,
    EmailBrand,
    OutboundEmail,
    RawInbound,
    TicketBrand,
)
from opsdesk.channels.service import chat_presence
from opsdesk.channels.service.brand_snapshots import ChatBrandInfo, chat_brands
from opsdesk.errors import FieldProblem, ValidationFailedError
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import AuthorKind, Channel, StatusCategory
from opsdesk.tickets.events import MessageAdded
from opsdesk.tickets.models import Message, Person, Ticket
from opsdesk.tickets.service.people import normalize_email

CHAT_ACTOR = Actor.integration("chat widget", via=Channel.CHAT.value)
CHAT_SYSTEM = Actor.system("chat", via=Channel.CHAT.value)
ACCEPT_TIMEOUT_JOB = "chat.accept_timeout"
MAX_MESSAGE_CHARS = 5000
MAX_NAME_CHARS = 200
MESSAGES_PER_MINUTE = 30
STARTS_PER_TEN_MINUTES = 10
VISITOR_GONE_AFTER = timedelta(minutes=2)
VISITOR_SEEN_RESOLUTION = timedelta(seconds=20)
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BRAND_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")


@dataclass(frozen=True, slots=True)
class StartedConversation:
    conversation: ChatConversation
    token: str  # shown to the widget once; only its digest is stored


@dataclass(frozen=True, slots=True)
class StoredChatMessage:
    raw_inbound_id: int
    duplicate: bool
    status: str
    message_id: int | None


# ---------------------------------------------------------------- brands and origins


def normalize_origin(raw: str) -> str:
    """``https://Shop.example:443/path`` → ``https://shop.example``; ValueError if not an origin."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{raw!r} is not an http(s) origin")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def _clean_origins(origins: list[str], problems: list[FieldProblem]) -> list[str]:
    cleaned: list[str] = []
    for index, origin in enumerate(origins):
        try:
            cleaned.append(normalize_origin(origin))
        except ValueError:
            problems.append(FieldProblem(("allowed_origins", index), f"{origin!r} is not an http(s) origin"))
    if not origins:
        problems.append(FieldProblem(("allowed_origins",), "list at least one site origin"))
    return sorted(set(cleaned))


def create_brand(
    session: Session,
    actor: Actor,
    *,
    key: str,
    name: str,
    allowed_origins: list[str],
    greeting: str = "Hi! How can we help?",
    accept_timeout_seconds: int = 120,
    email_brand_id: int | None = None,
) -> ChatBrand:
    require(actor, Permission.CHANNEL_MANAGE)
    problems: list[FieldProblem] = []
    if not _BRAND_KEY.match(key):
        problems.append(FieldProblem(("key",), "lowercase letters, digits and dashes, up to 60"))
    elif session.scalar(select(ChatBrand.id).where(ChatBrand.key == key)) is not None:
        problems.append(FieldProblem(("key",), f"a chat brand {key!r} exists"))
    if not name.strip() or len(name) > 120:
        problems.append(FieldProblem(("name",), "1 to 120 characters"))
    origins = _clean_origins(allowed_origins, problems)
    if not 10 <= accept_timeout_seconds <= 3600:
        problems.append(FieldProblem(("accept_timeout_seconds",), "between 10 and 3600 seconds"))
    if len(greeting) > 500:
        problems.append(FieldProblem(("greeting",), "at most 500 characters"))
    if email_brand_id is not None and session.get(EmailBrand, email_brand_id) is None:
        problems.append(FieldProblem(("email_brand_id",), f"email brand {email_brand_id} does not exist"))
    if problems:
        raise InvalidChatError("the chat brand is not valid", fields=problems)
    brand = ChatBrand(
        key=key,
        name=name.strip(),
        allowed_origins=origins,
        greeting=greeting.strip(),
        accept_timeout_seconds=accept_timeout_seconds,
        email_brand_id=email_brand_id,
        created_at=clock.now(),
    )
    session.add(brand)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="chat_brand",
        entity_id=brand.id,
        action="created",
        new={"key": key, "allowed_origins": origins},
    )
    return brand


def set_allowed_origins(session: Session, actor: Actor, brand_id: int, origins: list[str]) -> ChatBrand:
    require(actor, Permission.CHANNEL_MANAGE)
    brand = session.get(ChatBrand, brand_id)
    if brand is None:
        raise UnknownChatBrandError(f"chat brand {brand_id} does not exist")
    problems: list[FieldProblem] = []
    cleaned = _clean_origins(origins, problems)
    if problems:
        raise InvalidChatError("the origins are not valid", fields=problems)
    old = list(brand.allowed_origins)
    brand.allowed_origins = cleaned
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="chat_brand",
        entity_id=brand.id,
        action="updated",
        field="allowed_origins",
        old=old,
        new=cleaned,
    )
    return brand


def list_brands(session: Session, actor: Actor) -> list[ChatBrand]:
    require(actor, Permission.TICKET_READ)
    return list(session.scalars(select(ChatBrand).order_by(ChatBrand.key)))


def brand_for_origin(session: Session, key: str, origin: str | None) -> ChatBrandInfo:
    """The active brand ``key`` if ``origin`` is on its list; errors name what is wrong."""
    brand = chat_brands(session).by_key.get(key[:60])
    if brand is None or not brand.is_active:
        raise UnknownChatBrandError(f"there is no chat brand {key!r}")
    try:
        normalized = normalize_origin(origin or "")
    except ValueError as error:
        raise OriginNotAllowedError(
            "the page's origin is missing; chat refuses requests without one"
        ) from error
    if normalized not in brand.allowed_origins:
        raise OriginNotAllowedError(
            f"chat brand {key!r} is not enabled on {normalized}; an admin can add it to the allowed origins"
        )
    return brand


# ---------------------------------------------------------------- conversations


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def conversation_for_token(
    session: Session, brand: ChatBrand | ChatBrandInfo, token: str
) -> ChatConversation:
    conversation = (
        session.scalars(
            select(ChatConversation).where(ChatConversation.visitor_token_digest == token_digest(token))
        ).first()
        if token and len(token) <= 200
        else None
    )
    if conversation is None or conversation.brand_id != brand.id:
        raise BadVisitorTokenError("this conversation is unknown or expired; start a new one")
    return conversation


def start_conversation(
    session: Session,
    brand: ChatBrand | ChatBrandInfo,
    *,
    name: str,
    email: str,
    origin: str,
    client_address: str,
    starts_per_ten_minutes: int = STARTS_PER_TEN_MINUTES,
) -> StartedConversation:
    """The visitor gave their name and email; nothing is on a ticket until the first message."""
    problems: list[FieldProblem] = []
    clean_name = " ".join(name.split())
    if not clean_name:
        problems.append(FieldProblem(("name",), "Tell us your name."))
    elif len(clean_name) > MAX_NAME_CHARS:
        problems.append(FieldProblem(("name",), f"Keep your name under {MAX_NAME_CHARS} characters."))
    try:
        clean_email = normalize_email(email)
        if len(clean_email) > 320:
            raise ValidationFailedError("too long")
    except ValidationFailedError:
        problems.append(FieldProblem(("email",), "Enter the email address we can answer to."))
        clean_email = ""
    if problems:
        raise InvalidChatError("Please correct your name and email.", fields=problems)
    recent = session.scalar(
        select(func.count()).where(
            ChatConversation.client_address == client_address[:64],
            ChatConversation.started_at >= clock.now() - timedelta(minutes=10),
        )
    )
    if int(recent or 0) >= starts_per_ten_minutes:
        raise ChatRateLimitedError("Too many new conversations from your address. Please try again later.")
    token = secrets.token_urlsafe(32)
    now = clock.now()
    conversation = ChatConversation(
        brand_id=brand.id,
        visitor_token_digest=token_digest(token),
        visitor_name=clean_name,
        visitor_email=clean_email,
        origin=origin[:300],
        client_address=client_address[:64],
        status=ChatStatus.WAITING.value,
        started_at=now,
        visitor_seen_at=now,
    )
    session.add(conversation)
    session.flush()
    return StartedConversation(conversation, token)


def access_conversation(session: Session, actor: Actor, conversation_id: int) -> ChatConversation:
    """The conversation if the actor may see its ticket (not-found otherwise)."""
    require(actor, Permission.TICKET_READ)
    conversation = session.get(ChatConversation, conversation_id)
    if conversation is None:
        raise ChatConversationNotFoundError(f"conversation {conversation_id} does not exist")
    if conversation.ticket_id is not None:
        try:
            tickets.access_ticket(session, actor, conversation.ticket_id)
        except Exception as error:
            raise ChatConversationNotFoundError(f"conversation {conversation_id} does not exist") from error
    return conversation


def conversation_for_ticket(session: Session, ticket_id: int) -> ChatConversation | None:
    return session.scalars(select(ChatConversation).where(ChatConversation.ticket_id == ticket_id)).first()


def visitor_seen(session: Session, conversation: ChatConversation) -> None:
    """The widget is open (written at most every few seconds, so pings stay cheap)."""
    now = clock.now()
    if now - conversation.visitor_seen_at >= VISITOR_SEEN_RESOLUTION:
        conversation.visitor_seen_at = now
        session.flush()


# ---------------------------------------------------------------- visitor messages


def _client_id(raw: object) -> str:
    if not isinstance(raw, str) or not _CLIENT_ID.match(raw):
        raise InvalidChatError(
            "each message needs a client id",
            fields=[FieldProblem(("client_id",), "1 to 64 letters, digits, '-' or '_'")],
        )
    return raw


def _body(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidChatError("the message is empty", fields=[FieldProblem(("body",), "must not be empty")])
    if len(raw) > MAX_MESSAGE_CHARS:
        raise InvalidChatError(
            f"the message is longer than {MAX_MESSAGE_CHARS} characters",
            fields=[FieldProblem(("body",), f"at most {MAX_MESSAGE_CHARS} characters")],
        )
    return raw.strip()


def visitor_key(conversation_id: int, client_id: str) -> str:
    return f"chat:{conversation_id}:{client_id}"


def agent_key(conversation_id: int, client_id: str) -> str:
    return f"chat-agent:{conversation_id}:{client_id}"


def store_visitor_message(
    session: Session,
    conversation: ChatConversation,
    *,
    client_id: object,
    body: object,
    per_minute: int = MESSAGES_PER_MINUTE,
) -> StoredChatMessage:
    """Step one: validate, rate-limit and keep the message (a resend returns the first copy)."""
    clean_id = _client_id(client_id)
    key = visitor_key(conversation.id, clean_id)
    existing = session.scalars(select(RawInbound).where(RawInbound.dedupe_key == key)).first()
    if existing is not None:
        return StoredChatMessage(existing.id, True, existing.status, existing.message_id)
    text = _body(body)
    recent = session.scalar(
        select(func.count()).where(
            RawInbound.sender == conversation.visitor_email,
            RawInbound.channel == Channel.CHAT.value,
            RawInbound.received_at >= clock.now() - timedelta(minutes=1),
        )
    )
    if int(recent or 0) >= per_minute:
        raise ChatRateLimitedError("You are sending messages too quickly. Please wait a moment.")
    now = clock.now()
    row = RawInbound(
        channel=Channel.CHAT.value,
        source=f"chat:{conversation.id}",
        dedupe_key=key,
        sender=conversation.visitor_email,
        payload={"conversation_id": conversation.id, "client_id": clean_id, "body": text},
        size_bytes=len(text.encode()),
        received_at=now,
        status=InboundStatus.PENDING.value,
    )
    session.add(row)
    conversation.visitor_seen_at = now
    session.flush()
    return StoredChatMessage(row.id, False, row.status, None)


def process_visitor_message(session: Session, raw_inbound_id: int) -> Message:
    """Step two: the stored message becomes a customer message on the conversation's ticket."""
    row = session.get_one(RawInbound, raw_inbound_id)
    if row.status == InboundStatus.PROCESSED.value and row.message_id is not None:
        return session.get_one(Message, row.message_id)
    payload = row.payload or {}
    conversation = session.get_one(ChatConversation, int(payload["conversation_id"]))
    brand = chat_brands(session).by_id[conversation.brand_id]
    first = conversation.ticket_id is None
    received = tickets.receive(
        session,
        CHAT_ACTOR,
        tickets.IncomingMessage(
            channel=Channel.CHAT.value,
            from_email=conversation.visitor_email,
            from_name=conversation.visitor_name,
            subject=f"Chat with {conversation.visitor_name}",
            body_text=str(payload["body"]),
            external_id=row.dedupe_key,
            ticket_id=conversation.ticket_id,
        ),
    )
    now = clock.now()
    if conversation.ticket_id != received.ticket.id:
        # the first message, or a follow-up ticket because the old one was closed
        conversation.ticket_id = received.ticket.id
        if brand.email_brand_id is not None and session.get(TicketBrand, received.ticket.id) is None:
            session.add(TicketBrand(ticket_id=received.ticket.id, brand_id=brand.email_brand_id))
        session.flush()
        # the ticket did not know its conversation when MessageAdded ran: announce it here
        announce_message(session, received.ticket.id, received.message.id)
    conversation.last_message_at = now
    conversation.visitor_seen_at = now
    if first or conversation.status == ChatStatus.ENDED.value:
        _wait_for_agent(session, conversation, brand)
    row.status = InboundStatus.PROCESSED.value
    row.ticket_id = received.ticket.id
    row.message_id = received.message.id
    row.processed_at = now
    session.flush()
    return received.message


def _wait_for_agent(session: Session, conversation: ChatConversation, brand: ChatBrandInfo) -> None:
    now = clock.now()
    conversation.agent_user_id = None
    conversation.accepted_at = None
    conversation.ended_at = None
    if chat_presence.online_agent_count(session) == 0:
        conversation.status = ChatStatus.OFFLINE.value
        _note(session, conversation, "No agent was online for chat; the customer will be answered by email.")
        _send_receipt(session, conversation)
    else:
        conversation.status = ChatStatus.WAITING.value
        conversation.waiting_since = now
        outbox.enqueue(
            session,
            ACCEPT_TIMEOUT_JOB,
            {"conversation_id": conversation.id},
            idempotency_key=f"{ACCEPT_TIMEOUT_JOB}:{conversation.id}:{now.isoformat()}",
            run_at=now + timedelta(seconds=brand.accept_timeout_seconds),
            max_attempts=5,
        )
    announce_status(session, conversation)


def _note(session: Session, conversation: ChatConversation, text: str) -> None:
    if conversation.ticket_id is None:
        return
    ticket = session.get_one(Ticket, conversation.ticket_id)
    if ticket.status != StatusCategory.CLOSED.value:
        tickets.add_message(
            session, CHAT_SYSTEM, ticket, body_text=text, public=False, channel=Channel.CHAT.value
        )


def expire_waiting(session: Session, conversation_id: int) -> bool:
    """``chat.accept_timeout``: nobody accepted in time, so the conversation goes to email."""
    conversation = session.get(ChatConversation, conversation_id)
    if conversation is None or conversation.status != ChatStatus.WAITING.value:
        return False
    brand = chat_brands(session).by_id[conversation.brand_id]
    if conversation.waiting_since is None or clock.now() < conversation.waiting_since + timedelta(
        seconds=brand.accept_timeout_seconds
    ):
        return False
    conversation.status = ChatStatus.OFFLINE.value
    session.flush()
    _note(
        session,
        conversation,
        f"No agent accepted the chat within {brand.accept_timeout_seconds} seconds; "
        "the customer will be answered by email.",
    )
    _send_receipt(session, conversation)
    announce_status(session, conversation)
    return True


def on_presence_set(session: Session, event: ChatPresenceSet) -> None:
    """Reaction to ChatPresenceSet: when that left no agent online, waiting chats go to email."""
    del event  # whoever it was, what counts is whether anyone is still online
    move_waiting_to_email_if_nobody_online(session)


def move_waiting_to_email_if_nobody_online(session: Session) -> int:
    """The last agent went offline or away: every waiting conversation goes to email now rather
    than at its accept timeout. Returns how many."""
    if chat_presence.online_agent_count(session) > 0:
        return 0
    waiting = session.scalars(
        select(ChatConversation)
        .where(ChatConversation.status == ChatStatus.WAITING.value, ChatConversation.ticket_id.is_not(None))
        .order_by(ChatConversation.id)
    ).all()
    for conversation in waiting:
        conversation.status = ChatStatus.OFFLINE.value
        session.flush()
        _note(
            session,
            conversation,
            "No agent is online for chat any more; the customer will be answered by email.",
        )
        _send_receipt(session, conversation)
        announce_status(session, conversation)
    return len(waiting)


def _send_receipt(session: Session, conversation: ChatConversation) -> None:
    """Tell the visitor by email that the conversation is a ticket and will be answered there
    (once per conversation: an ``email.send`` of kind receipt for the ticket is not repeated)."""
    if conversation.ticket_id is None:
        return
    from opsdesk.channels.service.outbound import queue_receipt
    from opsdesk.config import Settings

    already = session.scalar(
        select(OutboundEmail.id).where(
            OutboundEmail.ticket_id == conversation.ticket_id, OutboundEmail.kind == "receipt"
        )
    )
    if already is None:
        queue_receipt(session, session.get_one(Ticket, conversation.ticket_id), Settings())


# ---------------------------------------------------------------- agents


def accept(session: Session, actor: Actor, conversation_id: int) -> ChatConversation:
    """The agent takes the conversation: it becomes active and its ticket is assigned to them."""
    require(actor, Permission.TICKET_REPLY)
    conversation = access_conversation(session, actor, conversation_id)
    if conversation.ticket_id is None:
        raise InvalidChatError(
            "the visitor has not written yet",
            fields=[FieldProblem(("conversation_id",), "nothing to accept")],
        )
    if conversation.status == ChatStatus.ACTIVE.value:
        if conversation.agent_user_id == actor.user_id:
            return conversation
        taker = session.get(User, conversation.agent_user_id) if conversation.agent_user_id else None
        raise ChatConversationTakenError(
            f"{taker.name if taker else 'another agent'} already accepted this conversation"
        )
    ticket = tickets.access_ticket(session, actor, conversation.ticket_id, for_update=True)
    if ticket.assignee_id != actor.user_id:
        tickets.update_ticket(session, actor, ticket, {"assignee_id": actor.user_id})
    conversation.status = ChatStatus.ACTIVE.value
    conversation.agent_user_id = actor.user_id
    conversation.accepted_at = clock.now()
    conversation.ended_at = None
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="chat_conversation",
        entity_id=conversation.id,
        action="accepted",
        ticket_id=conversation.ticket_id,
    )
    announce_status(session, conversation)
    return conversation


def agent_reply(
    session: Session, actor: Actor, conversation_id: int, *, client_id: object, body: object
) -> Message:
    """A public staff reply in the chat (a waiting conversation is accepted by replying)."""
    require(actor, Permission.TICKET_REPLY)
    clean_id = _client_id(client_id)
    conversation = access_conversation(session, actor, conversation_id)
    key = agent_key(conversation.id, clean_id)
    existing = session.scalars(select(Message).where(Message.external_id == key)).first()
    if existing is not None:
        return existing
    text = _body(body)
    if conversation.ticket_id is None:
        raise InvalidChatError(
            "the visitor has not written yet",
            fields=[FieldProblem(("conversation_id",), "nothing to answer")],
        )
    if conversation.status == ChatStatus.WAITING.value:
        accept(session, actor, conversation.id)
    # no row lock: add_message changes counters with SQL expressions (and a lock would reload it)
    ticket = tickets.access_ticket(session, actor, conversation.ticket_id)
    message = tickets.add_message(
        session, actor, ticket, body_text=text, public=True, channel=Channel.CHAT.value, external_id=key
    )
    conversation.last_message_at = message.created_at
    session.flush()
    return message


def end(session: Session, conversation: ChatConversation, *, by: str) -> ChatConversation:
    """The agent or the visitor ends the chat; later staff replies go out by email."""
    if conversation.status in (ChatStatus.ENDED.value, ChatStatus.OFFLINE.value):
        return conversation
    conversation.status = ChatStatus.ENDED.value
    conversation.ended_at = clock.now()
    session.flush()
    _note(session, conversation, f"The chat was ended by {by}.")
    announce_status(session, conversation)
    return conversation


def end_by_agent(session: Session, actor: Actor, conversation_id: int) -> ChatConversation:
    require(actor, Permission.TICKET_REPLY)
    conversation = access_conversation(session, actor, conversation_id)
    return end(session, conversation, by=actor.name)


def replies_by_email(session: Session, ticket_id: int) -> bool:
    """Whether a staff public reply on a chat ticket must go out by email: the conversation went
    offline or ended, or the visitor's widget has not been seen for a while (they left)."""
    conversation = conversation_for_ticket(session, ticket_id)
    if conversation is None:
        return True
    if conversation.status in (ChatStatus.OFFLINE.value, ChatStatus.ENDED.value):
        return True
    return conversation.visitor_seen_at < clock.now() - VISITOR_GONE_AFTER


# ---------------------------------------------------------------- views and announcements


def message_event(session: Session, message: Message, conversation_id: int) -> dict[str, Any]:
    author = "system"
    if message.author_kind == AuthorKind.STAFF.value and message.author_user_id is not None:
        user = session.get(User, message.author_user_id)
        author = user.name if user is not None else "Agent"
    elif message.author_kind == AuthorKind.CUSTOMER.value and message.author_person_id is not None:
        person = session.get(Person, message.author_person_id)
        author = (person.name if person is not None else None) or "Visitor"
    client_id = None
    if message.external_id and message.external_id.startswith(("chat:", "chat-agent:")):
        client_id = message.external_id.rsplit(":", 1)[1]
    return {
        "type": "message",
        "conversation_id": conversation_id,
        "id": message.id,
        "client_id": client_id,
        "from": "agent" if message.author_kind == AuthorKind.STAFF.value else "visitor",
        "author": author,
        "body": message.body_text,
        "at": message.created_at.isoformat(),
    }


def transcript(session: Session, conversation: ChatConversation) -> list[dict[str, Any]]:
    if conversation.ticket_id is None:
        return []
    messages = session.scalars(
        select(Message)
        .where(
            Message.ticket_id == conversation.ticket_id,
            Message.is_public.is_(True),
            Message.author_kind != AuthorKind.SYSTEM.value,
        )
        .order_by(Message.id)
    ).all()
    return [message_event(session, message, conversation.id) for message in messages]


def conversation_view(session: Session, conversation: ChatConversation) -> dict[str, Any]:
    return conversation_views(session, [conversation])[0]


def conversation_views(session: Session, conversations: Sequence[ChatConversation]) -> list[dict[str, Any]]:
    """What agents see of each conversation, in order, read with one query however many there
    are (an agent's queue holds up to 200): the agent's name, the ticket's group and the last
    public message that is not a system note."""
    if not conversations:
        return []
    last_message = (
        select(Message.body_text)
        .where(
            Message.ticket_id == ChatConversation.ticket_id,
            Message.is_public.is_(True),
            Message.author_kind != AuthorKind.SYSTEM.value,
        )
        .order_by(Message.id.desc())
        .limit(1)
        .correlate(ChatConversation)
        .scalar_subquery()
    )
    details = {
        conversation_id: (group_id, agent_name, last)
        for conversation_id, group_id, agent_name, last in session.execute(
            select(ChatConversation.id, Ticket.group_id, User.name, last_message)
            .outerjoin(Ticket, Ticket.id == ChatConversation.ticket_id)
            .outerjoin(User, User.id == ChatConversation.agent_user_id)
            .where(ChatConversation.id.in_([conversation.id for conversation in conversations]))
        )
    }
    return [_view(conversation, *details[conversation.id]) for conversation in conversations]


def _view(
    conversation: ChatConversation, group_id: int | None, agent_name: str | None, last: str | None
) -> dict[str, Any]:
    waiting_since = conversation.waiting_since
    return {
        "id": conversation.id,
        "status": conversation.status,
        "ticket_id": conversation.ticket_id,
        "group_id": group_id,
        "visitor_name": conversation.visitor_name,
        "visitor_email": conversation.visitor_email,
        "agent_id": conversation.agent_user_id,
        "agent_name": agent_name,
        "waiting_since": waiting_since.isoformat() if waiting_since else None,
        "last_message": (last or "")[:140],
    }


def status_event(session: Session, conversation: ChatConversation) -> dict[str, Any]:
    return {"type": "status", "conversation": conversation_view(session, conversation)}


def announce_status(session: Session, conversation: ChatConversation) -> None:
    namespace = session_namespace(session)
    item = status_event(session, conversation)
    publish_after_commit(session, conversation_topic(namespace, conversation.id), item)
    publish_after_commit(session, agents_topic(namespace), item)


def on_message_added(session: Session, event: MessageAdded) -> None:
    """Reaction to MessageAdded: a public message on a chat ticket reaches the chat, after commit."""
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is None or ticket.channel != Channel.CHAT.value or not event.is_public:
        return
    announce_message(session, event.ticket_id, event.message_id)


def announce_message(session: Session, ticket_id: int, message_id: int) -> None:
    conversation = conversation_for_ticket(session, ticket_id)
    if conversation is None:
        return
    message = session.get_one(Message, message_id)
    if not message.is_public or message.author_kind == AuthorKind.SYSTEM.value:
        return
    namespace = session_namespace(session)
    publish_after_commit(
        session,
        conversation_topic(namespace, conversation.id),
        message_event(session, message, conversation.id),
    )
    publish_after_commit(session, agents_topic(namespace), status_event(session, conversation))


def visible_group_ids(actor: Actor) -> list[int] | None:
    """The groups whose chats a group-scoped actor (a contractor) may see; None = every chat."""
    if is_group_scoped(actor) and actor.user is not None:
        return list(actor.user.group_ids)
    return None


def queue_for_agent(session: Session, actor: Actor) -> dict[str, list[dict[str, Any]]]:
    """The agent's chat queue: waiting conversations (oldest first) and their own active ones."""
    require(actor, Permission.TICKET_READ)
    query = (
        select(ChatConversation)
        .where(ChatConversation.status == ChatStatus.WAITING.value, ChatConversation.ticket_id.is_not(None))
        .order_by(ChatConversation.waiting_since, ChatConversation.id)
        .limit(200)
    )
    scope = visible_group_ids(actor)
    if scope is not None:  # contractors: only chats whose ticket is in one of their groups
        query = query.join(Ticket, Ticket.id == ChatConversation.ticket_id).where(Ticket.group_id.in_(scope))
    waiting = session.scalars(query).all()
    mine = session.scalars(
        select(ChatConversation)
        .where(
            ChatConversation.status == ChatStatus.ACTIVE.value,
            ChatConversation.agent_user_id == actor.user_id,
        )
        .order_by(ChatConversation.id)
    ).all()
    views = conversation_views(session, [*waiting, *mine])
    return {"waiting": views[: len(waiting)], "active": views[len(waiting) :]}
