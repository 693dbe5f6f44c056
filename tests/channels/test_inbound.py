"""Storing and processing inbound email: throttling, failures kept with a reason, resuming what
a crash left, follow-ups on closed tickets, merged tickets, the raw MIME endpoint."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from opsdesk.app import create_app
from opsdesk.channels import inbound_pipeline
from opsdesk.channels.inbound_keys import inbound_email_key
from opsdesk.channels.models import OutboundEmail, RawInbound
from opsdesk.channels.service.inbound import store_raw_email
from opsdesk.config import Settings
from opsdesk.tickets.models import Message, Ticket
from tests.channels.mail import simple_email
from tests.support.databases import BoundDatabase


def _count(database: BoundDatabase, model: type) -> int:
    with database.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_sender_writing_more_than_twenty_times_in_five_minutes_is_throttled(
    database: BoundDatabase, settings: Settings
) -> None:
    results = [
        inbound_pipeline.ingest_email(
            database,
            simple_email(
                message_id=f"flood-{number}@x.example", subject=f"Flood {number}", sender="flood@x.example"
            ),
            source="test",
            settings=settings,
        )
        for number in range(22)
    ]

    assert [result.status for result in results] == ["processed"] * 20 + ["throttled"] * 2
    assert _count(database, Ticket) == 20
    assert _count(database, RawInbound) == 22  # kept, nothing lost
    # the throttled messages triggered no receipt either
    assert _count(database, OutboundEmail) == 20
    other = inbound_pipeline.ingest_email(
        database,
        simple_email(message_id="calm@y.example", sender="calm@y.example"),
        source="test",
        settings=settings,
    )
    assert other.status == "processed"


def test_a_crash_between_storing_and_processing_is_resumed_once(
    database: BoundDatabase, settings: Settings
) -> None:
    raw = simple_email(message_id="crash@customer.example")
    stored = inbound_pipeline.store(database, raw, source="smtp", settings=settings)
    assert stored.status == "pending"
    assert _count(database, Ticket) == 0

    assert inbound_pipeline.resume_pending(database, settings) == 1
    assert inbound_pipeline.resume_pending(database, settings) == 0
    again = inbound_pipeline.ingest_email(database, raw, source="smtp", settings=settings)

    assert again.duplicate is True
    assert _count(database, Ticket) == 1
    assert _count(database, Message) == 1


def test_processing_failure_keeps_the_mail_with_the_reason(
    database: BoundDatabase, settings: Settings
) -> None:
    raw = b"Subject: no sender at all\r\nMessage-ID: <nosender@x.example>\r\n\r\nhello\r\n"
    result = inbound_pipeline.ingest_email(database, raw, source="smtp", settings=settings)

    assert result.status == "failed"
    with database.transaction(write=False) as session:
        row = session.get_one(RawInbound, result.raw_inbound_id)
        assert row.error == "the message has no sender address"
        assert row.raw == raw
    assert _count(database, Ticket) == 0


def test_mail_to_a_closed_ticket_opens_a_linked_follow_up(
    database: BoundDatabase, settings: Settings
) -> None:
    first = inbound_pipeline.ingest_email(
        database, simple_email(message_id="c1@x.example"), source="t", settings=settings
    )
    with database.transaction() as session:
        session.execute(update(Ticket).where(Ticket.id == first.ticket_id).values(status="closed"))
    reply = inbound_pipeline.ingest_email(
        database,
        simple_email(message_id="c2@x.example", in_reply_to="c1@x.example", subject="Re: Printer on fire"),
        source="t",
        settings=settings,
    )

    assert reply.ticket_id is not None
    assert reply.ticket_id != first.ticket_id
    with database.transaction(write=False) as session:
        follow_up = session.get_one(Ticket, reply.ticket_id)
        assert follow_up.follow_up_of_id == first.ticket_id
        assert follow_up.channel == "email"


def test_oversize_mail_from_a_mailbox_is_kept_as_refused(database: BoundDatabase, settings: Settings) -> None:
    with database.transaction() as session:
        stored = store_raw_email(
            session,
            simple_email(body="y" * 3_000),
            source="imap:test",
            max_bytes=1_000,
            refuse_oversize=False,
        )
    assert stored.status == "refused"
    assert inbound_pipeline.resume_pending(database, settings) == 0
    assert _count(database, Ticket) == 0


def test_raw_mime_endpoint_stores_and_threads(database: BoundDatabase, settings: Settings) -> None:
    client = TestClient(create_app(settings, database=database))
    key = inbound_email_key(settings.secret_key)
    raw = simple_email(message_id="http-1@x.example")

    refused = client.post(
        "/api/v1/channels/email/inbound", content=raw, headers={"Authorization": "Bearer wrong"}
    )
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert _count(database, RawInbound) == 0

    empty = client.post(
        "/api/v1/channels/email/inbound", content=b"  ", headers={"Authorization": f"Bearer {key}"}
    )
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "body"

    accepted = client.post(
        "/api/v1/channels/email/inbound",
        content=raw,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "message/rfc822"},
    )
    repeated = client.post(f"/api/v1/channels/email/inbound?key={key}", content=raw)

    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "processed"
    assert body["duplicate"] is False
    assert repeated.status_code == 202
    assert repeated.json()["duplicate"] is True
    assert repeated.json()["raw_inbound_id"] == body["raw_inbound_id"]
    assert _count(database, Ticket) == 1


def test_raw_mime_endpoint_refuses_oversize_mail(database: BoundDatabase, settings: Settings) -> None:
    settings.inbound_email_max_bytes = 500
    client = TestClient(create_app(settings, database=database))
    response = client.post(
        "/api/v1/channels/email/inbound",
        content=simple_email(body="z" * 2_000),
        headers={"Authorization": f"Bearer {inbound_email_key(settings.secret_key)}"},
    )
    assert response.status_code == 413
    assert "limit is 500 bytes" in response.json()["detail"]
    assert _count(database, RawInbound) == 0


@pytest.mark.parametrize(
    ("headers", "sender", "told"),
    [
        ({}, "kim@customer.example", True),
        ({"Auto-Submitted": "auto-replied"}, "kim@customer.example", False),
        ({}, "MAILER-DAEMON@mx.customer.example", False),
        ({"Precedence": "bulk"}, "news@customer.example", False),
    ],
)
def test_oversize_mail_from_a_mailbox_tells_only_people_why(
    database: BoundDatabase,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    sender: str,
    told: bool,
) -> None:
    from opsdesk.jobs.runner import run_pending
    from tests.support.smtp_sink import smtp_sink

    settings.inbound_email_max_bytes = 1_000
    raw = simple_email(
        sender=sender, body="y" * 3_000, message_id="big-imap@customer.example", headers=headers
    )
    with smtp_sink() as sink:
        monkeypatch.setenv("OPSDESK_SMTP_HOST", sink.host)
        monkeypatch.setenv("OPSDESK_SMTP_PORT", str(sink.port))
        result = inbound_pipeline.ingest_email(
            database, raw, source="imap:test", settings=settings, refuse_oversize=False
        )
        again = inbound_pipeline.ingest_email(
            database, raw, source="imap:test", settings=settings, refuse_oversize=False
        )
        run_pending(database)

    assert (result.status, again.duplicate) == ("refused", True)
    assert _count(database, Ticket) == 0
    if not told:
        assert sink.received == []
        with database.transaction(write=False) as session:
            assert session.scalar(select(func.count()).select_from(OutboundEmail)) == 0
            assert "no refusal sent" in (session.get_one(RawInbound, result.raw_inbound_id).error or "")
        return
    [(envelope_from, recipients, message)] = sink.received
    assert recipients == ["kim@customer.example"]
    assert envelope_from == "support@example.com"
    assert message["Subject"] == "Not delivered: Printer on fire"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<big-imap@customer.example>"
    text = message.get_body(("plain",)).get_content()
    assert "the message is" in text
    assert "the limit is 1000 bytes" in text


def test_an_error_while_processing_keeps_the_mail_failed_with_the_reason_and_a_resume_retries_it(
    database: BoundDatabase, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsdesk.tickets import service as tickets

    real_receive = tickets.receive

    def broken_receive(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the ticket service is down")

    monkeypatch.setattr(tickets, "receive", broken_receive)
    raw = simple_email(message_id="boom@customer.example")
    result = inbound_pipeline.ingest_email(database, raw, source="http", settings=settings)

    assert (result.status, result.ticket_id, result.duplicate) == ("failed", None, False)
    with database.transaction(write=False) as session:
        row = session.get_one(RawInbound, result.raw_inbound_id)
        assert (row.status, row.attempts, row.raw) == ("failed", 1, raw)
        assert row.error == "RuntimeError: the ticket service is down"
    assert _count(database, Ticket) == 0
    assert _count(database, OutboundEmail) == 0  # nothing of the failed attempt was kept

    monkeypatch.setattr(tickets, "receive", real_receive)
    assert inbound_pipeline.resume_pending(database, settings) == 1
    with database.transaction(write=False) as session:
        row = session.get_one(RawInbound, result.raw_inbound_id)
        assert (row.status, row.attempts, row.error) == ("processed", 2, None)
        assert row.ticket_id is not None
    assert _count(database, Ticket) == 1
    assert _count(database, RawInbound) == 1
    again = inbound_pipeline.ingest_email(database, raw, source="http", settings=settings)
    assert (again.duplicate, again.status, again.raw_inbound_id) == (True, "processed", result.raw_inbound_id)


def test_the_stored_row_records_what_became_of_the_mail(database: BoundDatabase, settings: Settings) -> None:
    result = inbound_pipeline.ingest_email(
        database,
        simple_email(message_id="rec@customer.example", sender="Kim Lee <KIM@Customer.example>"),
        source="http",
        settings=settings,
    )
    with database.transaction(write=False) as session:
        row = session.get_one(RawInbound, result.raw_inbound_id)
        message = session.scalars(select(Message).where(Message.ticket_id == result.ticket_id)).one()
        assert (row.channel, row.source, row.dedupe_key) == ("email", "http", "email:rec@customer.example")
        assert (row.sender, row.status, row.noise_kind, row.attempts) == (
            "kim@customer.example",
            "processed",
            "none",
            1,
        )
        assert (row.ticket_id, row.message_id) == (result.ticket_id, message.id)
        assert row.processed_at is not None
        assert row.processed_at >= row.received_at
        assert row.payload is None


def test_a_reply_to_the_receipt_threads_by_its_message_id(
    database: BoundDatabase, settings: Settings
) -> None:
    first = inbound_pipeline.ingest_email(
        database, simple_email(message_id="r1@customer.example"), source="t", settings=settings
    )
    with database.transaction(write=False) as session:
        receipt_id = session.scalars(select(OutboundEmail.rfc_message_id)).one()
    answer = inbound_pipeline.ingest_email(
        database,
        simple_email(
            message_id="r2@customer.example",
            sender="someone-else@customer.example",
            in_reply_to=receipt_id,
            subject="Re: your request",
        ),
        source="t",
        settings=settings,
    )
    unrelated = inbound_pipeline.ingest_email(
        database,
        simple_email(message_id="r3@customer.example", in_reply_to="unknown@elsewhere.example"),
        source="t",
        settings=settings,
    )
    assert answer.ticket_id == first.ticket_id
    assert unrelated.ticket_id not in (None, first.ticket_id)


def _enqueue_then_fail(database: BoundDatabase) -> None:
    from opsdesk import outbox

    with database.transaction() as session:
        outbox.enqueue_now(session, "email.send", {"x": 1}, idempotency_key="rolled-back-1")
        raise RuntimeError("rolled back")


def test_the_receipt_wakes_the_job_runner_after_the_commit_only(
    database: BoundDatabase, settings: Settings
) -> None:
    from opsdesk import outbox

    calls: list[str] = []

    def listener() -> None:
        calls.append("woken")

    outbox.add_commit_listener(listener)
    try:
        with pytest.raises(RuntimeError):
            _enqueue_then_fail(database)
        assert calls == []
        inbound_pipeline.ingest_email(
            database, simple_email(message_id="wake@customer.example"), source="t", settings=settings
        )
        assert calls == ["woken"]
    finally:
        outbox.remove_commit_listener(listener)
