"""Live chat services on SQLite and PostgreSQL: a conversation becomes a chat ticket through
``tickets.receive``; messages are stored before they are processed and a resend is stored once;
accepting assigns the ticket; with no agent online, or nobody accepting in time, the conversation
goes to email and the agent's later reply is queued as an email to the visitor; bad input is
refused and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import User
from opsdesk.channels.errors import (
    BadVisitorTokenError,
    ChatConversationTakenError,
    ChatRateLimitedError,
    InvalidChatError,
    OriginNotAllowedError,
    UnknownChatBrandError,
)
from opsdesk.channels.models import ChatBrand, ChatConversation, OutboundEmail, RawInbound
from opsdesk.channels.service import chat, chat_presence
from opsdesk.channels.service.mailboxes import add_brand
from opsdesk.jobs.runner import run_pending
from opsdesk.outbox import OutboxJob
from opsdesk.tickets.models import Message, Ticket
from tests.support.databases import BoundDatabase, recorded_statements
from tests.support.factories import SYSTEM, make_user, staff_actor
from tests.support.smtp_sink import SmtpSink, smtp_sink

ORIGIN = "https://shop.example"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _brand(db: Session, **overrides: object) -> ChatBrand:
    values: dict[str, object] = {
        "key": "acme",
        "name": "Acme",
        "allowed_origins": [ORIGIN, "http://localhost:8080/"],
        "accept_timeout_seconds": 60,
    }
    values.update(overrides)
    return chat.create_brand(db, SYSTEM, **values)  # type: ignore[arg-type]


def _online_agent(db: Session, name: str = "Dana Agent") -> User:
    agent = make_user(db, name=name)
    chat_presence.set_presence(db, staff_actor(agent), "online")
    return agent


def _start(db: Session, brand: ChatBrand, email: str = "kim@customer.example") -> chat.StartedConversation:
    return chat.start_conversation(
        db, brand, name="Kim  Lee", email=email, origin=ORIGIN, client_address="203.0.113.9"
    )


def _say(db: Session, conversation: ChatConversation, client_id: str, body: str) -> Message:
    stored = chat.store_visitor_message(db, conversation, client_id=client_id, body=body)
    return chat.process_visitor_message(db, stored.raw_inbound_id)


def _count(db: Session, model: type) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_brand_origins_are_normalized_and_checked(db: Session) -> None:
    brand = _brand(db)
    assert brand.allowed_origins == ["http://localhost:8080", "https://shop.example"]
    assert chat.brand_for_origin(db, "acme", "https://SHOP.example:443").id == brand.id
    with pytest.raises(OriginNotAllowedError, match=re.escape("not enabled on https://evil.example")):
        chat.brand_for_origin(db, "acme", "https://evil.example")
    with pytest.raises(OriginNotAllowedError):
        chat.brand_for_origin(db, "acme", None)
    with pytest.raises(UnknownChatBrandError):
        chat.brand_for_origin(db, "nope", ORIGIN)
    with pytest.raises(InvalidChatError) as refused:
        chat.create_brand(db, SYSTEM, key="Bad Key", name="", allowed_origins=["ftp://x"])
    assert {problem.location[0] for problem in refused.value.fields} == {"key", "name", "allowed_origins"}
    assert _count(db, ChatBrand) == 1


def test_first_message_opens_a_chat_ticket_and_waits_for_an_online_agent(db: Session) -> None:
    brand = _brand(db)
    _online_agent(db)
    started = _start(db, brand)
    conversation = started.conversation
    assert conversation.visitor_name == "Kim Lee"
    assert chat.conversation_for_token(db, brand, started.token).id == conversation.id
    assert conversation.visitor_token_digest != started.token  # only the digest is kept

    message = _say(db, conversation, "c-1", "  Where is my order?  ")

    ticket = db.get_one(Ticket, conversation.ticket_id)
    assert (ticket.channel, ticket.subject, ticket.requester.primary_email) == (
        "chat",
        "Chat with Kim Lee",
        "kim@customer.example",
    )
    assert (message.author_kind, message.body_text, message.external_id) == (
        "customer",
        "Where is my order?",
        f"chat:{conversation.id}:c-1",
    )
    assert conversation.status == "waiting"
    raw = db.scalars(select(RawInbound)).one()
    assert (raw.channel, raw.status, raw.message_id) == ("chat", "processed", message.id)
    job = db.scalars(select(OutboxJob).where(OutboxJob.kind == chat.ACCEPT_TIMEOUT_JOB)).one()
    assert job.payload == {"conversation_id": conversation.id}

    # a resend of the same client id is stored once and answers the first message
    again = chat.store_visitor_message(db, conversation, client_id="c-1", body="Where is my order?")
    assert (again.duplicate, again.message_id) == (True, message.id)
    _say(db, conversation, "c-2", "Order 88")
    assert db.scalar(select(func.count()).select_from(Message).where(Message.ticket_id == ticket.id)) == 2
    assert _count(db, RawInbound) == 2
    assert [item["body"] for item in chat.transcript(db, conversation)] == ["Where is my order?", "Order 88"]


def test_accept_assigns_the_ticket_and_replies_stay_in_the_chat(db: Session) -> None:
    brand = _brand(db)
    agent = _online_agent(db)
    other = _online_agent(db, "Otto Other")
    conversation = _start(db, brand).conversation
    _say(db, conversation, "c-1", "Hello?")

    chat.accept(db, staff_actor(agent), conversation.id)

    ticket = db.get_one(Ticket, conversation.ticket_id)
    assert (conversation.status, conversation.agent_user_id, ticket.assignee_id) == (
        "active",
        agent.id,
        agent.id,
    )
    with pytest.raises(ChatConversationTakenError, match="Dana Agent already accepted"):
        chat.accept(db, staff_actor(other), conversation.id)
    assert ticket.assignee_id == agent.id

    reply = chat.agent_reply(db, staff_actor(agent), conversation.id, client_id="a-1", body="Hi Kim!")
    repeat = chat.agent_reply(db, staff_actor(agent), conversation.id, client_id="a-1", body="Hi Kim!")
    assert repeat.id == reply.id
    assert (reply.author_kind, reply.is_public, reply.channel) == ("staff", True, "chat")
    assert ticket.status == "open"
    # the visitor is in the chat: no email for a live reply
    assert _count(db, OutboundEmail) == 0
    assert chat.replies_by_email(db, ticket.id) is False

    chat.end_by_agent(db, staff_actor(agent), conversation.id)
    assert conversation.status == "ended"
    chat.agent_reply(db, staff_actor(agent), conversation.id, client_id="a-2", body="One more thing")
    email = db.scalars(select(OutboundEmail)).one()
    assert (email.kind, email.to_address) == ("reply", "kim@customer.example")


def test_no_agent_online_makes_an_email_ticket(db: Session) -> None:
    brand = _brand(
        db,
        email_brand_id=add_brand(
            db, SYSTEM, name="Acme", support_address="help@acme.example", from_name="Acme Support"
        ).id,
    )
    agent = make_user(db, name="Dana Agent")  # exists, but is not online for chat
    conversation = _start(db, brand).conversation

    _say(db, conversation, "c-1", "Anyone there?")

    assert conversation.status == "offline"
    ticket = db.get_one(Ticket, conversation.ticket_id)
    notes = db.scalars(
        select(Message).where(Message.ticket_id == ticket.id, Message.is_public.is_(False))
    ).all()
    assert [note.body_text for note in notes] == [
        "No agent was online for chat; the customer will be answered by email."
    ]
    assert (
        db.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == chat.ACCEPT_TIMEOUT_JOB)
        )
        == 0
    )

    from opsdesk.tickets import service as tickets

    tickets.add_message(db, staff_actor(agent), ticket, body_text="We'll look into it.", public=True)
    emails = db.scalars(select(OutboundEmail).order_by(OutboundEmail.id)).all()
    assert [(email.kind, email.to_address, email.from_address) for email in emails] == [
        ("receipt", "kim@customer.example", "help@acme.example"),
        ("reply", "kim@customer.example", "help@acme.example"),
    ]


def test_nobody_accepting_in_time_moves_the_chat_to_email(db: Session) -> None:
    brand = _brand(db, accept_timeout_seconds=60)
    _online_agent(db)
    with clock.frozen(T0) as frozen:
        conversation = _start(db, brand).conversation
        _say(db, conversation, "c-1", "Hello")
        frozen.advance(timedelta(seconds=30))
        assert chat.expire_waiting(db, conversation.id) is False
        assert conversation.status == "waiting"
        frozen.advance(timedelta(seconds=31))
        assert chat.expire_waiting(db, conversation.id) is True
    assert conversation.status == "offline"
    assert chat.replies_by_email(db, conversation.ticket_id or 0) is True
    assert [row.kind for row in db.scalars(select(OutboundEmail))] == ["receipt"]


def test_a_visitor_who_left_gets_replies_by_email(db: Session) -> None:
    brand = _brand(db)
    agent = _online_agent(db)
    with clock.frozen(T0) as frozen:
        conversation = _start(db, brand).conversation
        _say(db, conversation, "c-1", "Hello")
        chat.accept(db, staff_actor(agent), conversation.id)
        frozen.advance(timedelta(minutes=3))
        chat_presence.heartbeat(db, agent.id)
        chat.agent_reply(db, staff_actor(agent), conversation.id, client_id="a-1", body="Still there?")
    assert [row.to_address for row in db.scalars(select(OutboundEmail))] == ["kim@customer.example"]


def test_presence_goes_offline_without_heartbeats(db: Session) -> None:
    agent = make_user(db)
    with clock.frozen(T0) as frozen:
        chat_presence.set_presence(db, staff_actor(agent), "online")
        assert chat_presence.online_agent_count(db) == 1
        frozen.advance(timedelta(seconds=40))
        chat_presence.heartbeat(db, agent.id)
        frozen.advance(timedelta(seconds=40))
        assert chat_presence.online_agent_count(db) == 1
        frozen.advance(timedelta(seconds=10))
        assert chat_presence.online_agent_count(db) == 0
        assert chat_presence.presence_of(db, agent.id) == "offline"
        chat_presence.set_presence(db, staff_actor(agent), "away")
        assert chat_presence.online_agent_count(db) == 0
    with pytest.raises(InvalidChatError):
        chat_presence.set_presence(db, staff_actor(agent), "busy")
    assert chat_presence.presence_of(db, agent.id) == "away"


def test_bad_input_is_refused_and_changes_nothing(db: Session) -> None:
    brand = _brand(db)
    _online_agent(db)
    with pytest.raises(InvalidChatError) as refused:
        chat.start_conversation(db, brand, name=" ", email="nope", origin=ORIGIN, client_address="x")
    assert [problem.location for problem in refused.value.fields] == [("name",), ("email",)]
    assert _count(db, ChatConversation) == 0
    started = _start(db, brand)
    conversation = started.conversation
    with pytest.raises(BadVisitorTokenError):
        chat.conversation_for_token(db, brand, "not-a-token")
    other_brand = _brand(db, key="other")
    with pytest.raises(BadVisitorTokenError):
        chat.conversation_for_token(db, other_brand, started.token)
    with pytest.raises(InvalidChatError, match="empty"):
        chat.store_visitor_message(db, conversation, client_id="c-1", body="   ")
    with pytest.raises(InvalidChatError, match="longer than 5000"):
        chat.store_visitor_message(db, conversation, client_id="c-1", body="x" * 5001)
    with pytest.raises(InvalidChatError, match="client id"):
        chat.store_visitor_message(db, conversation, client_id="bad id!", body="Hello")
    with pytest.raises(InvalidChatError, match="client id"):
        chat.store_visitor_message(db, conversation, client_id=None, body="Hello")
    assert (_count(db, RawInbound), _count(db, Ticket), conversation.ticket_id) == (0, 0, None)


def test_rate_limits_refuse_floods(db: Session) -> None:
    brand = _brand(db)
    _online_agent(db)
    with clock.frozen(T0):
        conversation = _start(db, brand).conversation
        for number in range(chat.MESSAGES_PER_MINUTE):
            chat.store_visitor_message(db, conversation, client_id=f"c-{number}", body="spam")
        with pytest.raises(ChatRateLimitedError):
            chat.store_visitor_message(db, conversation, client_id="c-over", body="spam")
        assert _count(db, RawInbound) == chat.MESSAGES_PER_MINUTE
        for number in range(chat.STARTS_PER_TEN_MINUTES - 1):
            _start(db, brand, email=f"v{number}@customer.example")
        with pytest.raises(ChatRateLimitedError):
            _start(db, brand, email="late@customer.example")
        assert _count(db, ChatConversation) == chat.STARTS_PER_TEN_MINUTES


@pytest.fixture
def smtp_sink_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    with smtp_sink() as server:
        monkeypatch.setenv("OPSDESK_SMTP_HOST", server.host)
        monkeypatch.setenv("OPSDESK_SMTP_PORT", str(server.port))
        monkeypatch.setenv("OPSDESK_SMTP_TLS", "none")
        yield server


def test_the_accept_timeout_job_and_the_last_agent_leaving_move_chats_to_email(
    database: BoundDatabase, smtp_sink_fixture: SmtpSink
) -> None:
    sink = smtp_sink_fixture
    with database.transaction() as session:
        brand = _brand(session, accept_timeout_seconds=60)
        agent = _online_agent(session)
        agent_id = agent.id
    with clock.frozen(T0) as frozen:
        with database.transaction() as session:
            first = _start(session, brand=session.get_one(ChatBrand, brand.id)).conversation
            _say(session, first, "c-1", "Hello")
            second = _start(
                session, session.get_one(ChatBrand, brand.id), email="ana@customer.example"
            ).conversation
            first_id, second_id = first.id, second.id
        frozen.advance(timedelta(seconds=30))
        with database.transaction() as session:
            chat_presence.heartbeat(session, agent_id)
            _say(session, session.get_one(ChatConversation, second_id), "c-1", "Me too")
        frozen.advance(timedelta(seconds=31))
        run_pending(database)  # the first conversation's chat.accept_timeout is due, the second's not
        with database.transaction(write=False) as session:
            assert session.get_one(ChatConversation, first_id).status == "offline"
            assert session.get_one(ChatConversation, second_id).status == "waiting"
        with database.transaction() as session:
            chat_presence.heartbeat(session, agent_id)
            # Setting the presence is enough: its reaction moves the waiting chats.
            chat_presence.set_presence(session, staff_actor(session.get_one(User, agent_id)), "away")
            assert chat.move_waiting_to_email_if_nobody_online(session) == 0
        with database.transaction(write=False) as session:
            assert session.get_one(ChatConversation, second_id).status == "offline"
            receipts = session.scalars(
                select(OutboundEmail.to_address).where(OutboundEmail.kind == "receipt")
            )
            assert sorted(receipts) == ["ana@customer.example", "kim@customer.example"]
        run_pending(database)  # the receipts go out by email
    assert sorted(recipients[0] for _, recipients, _ in sink.received) == [
        "ana@customer.example",
        "kim@customer.example",
    ]


def test_contractors_see_only_the_chats_of_their_groups(db: Session) -> None:
    from opsdesk.tickets import service as tickets
    from tests.support.factories import make_group

    brand = _brand(db)
    agent = _online_agent(db)
    ours, theirs = make_group(db), make_group(db)
    contractor = make_user(db, role="contractor", groups=[ours])
    visible = _start(db, brand, email="a@customer.example").conversation
    hidden = _start(db, brand, email="b@customer.example").conversation
    _say(db, visible, "c-1", "In our group")
    _say(db, hidden, "c-1", "In another group")
    for conversation, group in ((visible, ours), (hidden, theirs)):
        ticket = db.get_one(Ticket, conversation.ticket_id)
        tickets.update_ticket(db, staff_actor(agent), ticket, {"group_id": group.id})

    assert [item["id"] for item in chat.queue_for_agent(db, staff_actor(agent))["waiting"]] == [
        visible.id,
        hidden.id,
    ]
    queue = chat.queue_for_agent(db, staff_actor(contractor))["waiting"]
    assert [(item["id"], item["group_id"]) for item in queue] == [(visible.id, ours.id)]
    from opsdesk.channels.errors import ChatConversationNotFoundError

    with pytest.raises(ChatConversationNotFoundError):
        chat.accept(db, staff_actor(contractor), hidden.id)
    assert hidden.status == "waiting"


def test_the_agent_queue_reads_a_fixed_number_of_statements(db: Session, database: BoundDatabase) -> None:

    from opsdesk.tickets import service as tickets
    from tests.support.factories import make_group

    brand = _brand(db)
    agent = _online_agent(db)
    actor = staff_actor(agent)
    group = make_group(db)

    def add_chats(waiting: int, active: int) -> None:
        for _ in range(waiting + active):
            number = _count(db, ChatConversation)
            conversation = _start(db, brand, email=f"visitor{number}@customer.example").conversation
            _say(db, conversation, "c-1", f"Question {number}")
            ticket = db.get_one(Ticket, conversation.ticket_id)
            tickets.update_ticket(db, actor, ticket, {"group_id": group.id})
            if active:
                chat.accept(db, actor, conversation.id)
                chat.agent_reply(db, actor, conversation.id, client_id="a-1", body=f"Answer {number}")
                active -= 1
        db.flush()

    def statements_of_queue() -> tuple[dict[str, list[dict[str, object]]], int]:
        with recorded_statements(database) as statements:
            queue = chat.queue_for_agent(db, actor)
        return queue, len(statements)

    add_chats(waiting=1, active=1)
    _, few = statements_of_queue()
    add_chats(waiting=3, active=2)
    queue, many = statements_of_queue()

    assert (len(queue["waiting"]), len(queue["active"])) == (4, 3)
    assert many == few <= 3
    assert {item["group_id"] for item in queue["waiting"] + queue["active"]} == {group.id}
    # The first chats of each round were accepted and answered.
    assert [item["last_message"] for item in queue["waiting"]] == [f"Question {n}" for n in (1, 4, 5, 6)]
    assert [(item["agent_name"], item["last_message"]) for item in queue["active"]] == [
        ("Dana Agent", f"Answer {n}") for n in (0, 2, 3)
    ]
    assert {item["agent_name"] for item in queue["waiting"]} == {None}


def test_the_last_agent_leaving_sends_waiting_chats_to_email_however_they_leave(db: Session) -> None:
    brand = _brand(db)
    first, second = _online_agent(db), _online_agent(db, "Otto Other")
    waiting = _start(db, brand).conversation
    _say(db, waiting, "c-1", "Anyone there?")

    chat_presence.set_presence(db, staff_actor(first), "away")
    assert waiting.status == "waiting"  # Otto is still online
    chat_presence.went_offline(db, second.id)  # Otto's last chat connection closed
    assert waiting.status == "offline"
    assert db.scalars(select(OutboundEmail.to_address).where(OutboundEmail.kind == "receipt")).all() == [
        "kim@customer.example"
    ]

    chat_presence.set_presence(db, staff_actor(first), "online")
    later = _start(db, brand, email="ana@customer.example").conversation
    _say(db, later, "c-1", "Hello?")
    assert later.status == "waiting"
    chat_presence.set_presence(db, staff_actor(first), "offline")
    assert later.status == "offline"
