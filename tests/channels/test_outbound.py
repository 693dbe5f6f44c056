"""Outgoing email through the outbox and the job runner, received by a real SMTP server: receipts
and staff public replies, threaded (Message-ID, In-Reply-To, References), multipart text + HTML,
from the brand's address; the customer's answer threads back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from opsdesk.channels import inbound_pipeline
from opsdesk.channels.models import OutboundEmail
from opsdesk.channels.service.brands import add_brand
from opsdesk.config import Settings
from opsdesk.jobs.runner import run_pending
from opsdesk.outbox import OutboxJob
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Message, Ticket
from tests.channels.mail import simple_email
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_user, staff_actor
from tests.support.smtp_sink import SmtpSink, smtp_sink


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    with smtp_sink() as server:
        monkeypatch.setenv("OPSDESK_SMTP_HOST", server.host)
        monkeypatch.setenv("OPSDESK_SMTP_PORT", str(server.port))
        monkeypatch.setenv("OPSDESK_SMTP_TLS", "none")
        monkeypatch.setenv("OPSDESK_SUPPORT_ADDRESS", "support@example.com")
        yield server


def test_receipt_and_staff_reply_reach_the_customer_threaded(
    database: BoundDatabase, settings: Settings, sink: SmtpSink
) -> None:
    with database.transaction() as session:
        add_brand(
            session,
            SYSTEM,
            name="Acme",
            support_address="help@acme.example",
            from_name="Acme Support",
            signature="Acme Support team",
        )
        agent = make_user(session, name="Dana Agent")
    first = inbound_pipeline.ingest_email(
        database,
        simple_email(message_id="cust-1@customer.example", to="help@acme.example"),
        source="t",
        settings=settings,
    )
    assert first.ticket_id is not None
    with database.transaction() as session:
        ticket = session.get_one(Ticket, first.ticket_id)
        tickets.add_message(
            session, staff_actor(agent), ticket, body_text="We are on it.\n\nDana", public=True
        )
        tickets.add_message(
            session, staff_actor(agent), ticket, body_text="internal: call them", public=False
        )

    run_pending(database)

    assert len(sink.received) == 2
    (receipt_from, receipt_to, receipt), (_, _, reply) = sink.received
    assert receipt_from == "help@acme.example"
    assert receipt_to == ["kim@customer.example"]
    assert receipt["Auto-Submitted"] == "auto-replied"
    assert reply["Auto-Submitted"] is None
    with database.transaction(write=False) as session:
        ticket = session.get_one(Ticket, first.ticket_id)
        rows = session.scalars(select(OutboundEmail).order_by(OutboundEmail.id)).all()
        assert [(row.kind, row.status) for row in rows] == [("receipt", "sent"), ("reply", "sent")]
        receipt_id, reply_id = rows[0].rfc_message_id, rows[1].rfc_message_id
        token = ticket.reply_token
    assert reply["Message-ID"] == f"<{reply_id}>"
    assert reply["In-Reply-To"] == "<cust-1@customer.example>"
    assert reply["References"] == f"<cust-1@customer.example> <{receipt_id}>"
    assert reply["From"] == "Acme Support <help@acme.example>"
    assert reply["Reply-To"] == f"Acme Support <help+{token}@acme.example>"
    assert reply["To"] == "kim@customer.example"
    assert reply["Subject"] == f"Re: [#{first.ticket_id}] Printer on fire"
    assert reply.get_content_type() == "multipart/alternative"
    text = reply.get_body(preferencelist=("plain",))
    html = reply.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().replace("\r\n", "\n") == "We are on it.\n\nDana\n\n-- \nAcme Support team\n"
    assert "<p>We are on it.</p><p>Dana</p>" in html.get_content()
    assert "Acme Support team" in html.get_content()

    # the customer answers the reply: it threads by In-Reply-To to the same ticket
    answer = inbound_pipeline.ingest_email(
        database,
        simple_email(
            message_id="cust-2@customer.example",
            in_reply_to=reply_id,
            subject="Re: Printer on fire",
            body="Thanks!\n\nOn Mon, Dana wrote:\n> We are on it.",
        ),
        source="t",
        settings=settings,
    )
    assert answer.ticket_id == first.ticket_id
    with database.transaction(write=False) as session:
        last = session.scalars(select(Message).order_by(Message.id.desc())).first()
        assert last is not None
        assert last.body_text == "Thanks!"
        # no receipt for a reply; nothing else queued
        assert session.scalar(select(func.count()).select_from(OutboundEmail)) == 2


def test_smtp_down_keeps_the_email_queued_for_retry(
    database: BoundDatabase, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSDESK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPSDESK_SMTP_PORT", "1")  # nothing listens there
    inbound_pipeline.ingest_email(
        database, simple_email(message_id="down@x.example"), source="t", settings=settings
    )

    run_pending(database)

    with database.transaction(write=False) as session:
        job = session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send")).one()
        assert (job.status, job.attempts) == ("pending", 1)
        assert job.last_error
        assert session.scalars(select(OutboundEmail.status)).one() == "queued"


def test_a_brand_sends_from_its_own_address_with_its_receipt_text(
    database: BoundDatabase, settings: Settings, sink: SmtpSink
) -> None:
    from opsdesk.channels.service.brands import BrandValues, create_brand

    with database.transaction() as session:
        create_brand(
            session,
            SYSTEM,
            BrandValues(
                name="Globex",
                support_address="care@globex.example",
                from_address="news-desk@globex.example",
                from_name="Globex Care",
                receipt_template="Dear {name}, #{ticket_id} ({subject}) is with us.",
            ),
        )
    first = inbound_pipeline.ingest_email(
        database,
        simple_email(
            sender="Kim Doe <kim@customer.example>",
            message_id="g-1@customer.example",
            to="care@globex.example",
        ),
        source="t",
        settings=settings,
    )

    run_pending(database)

    [(envelope_from, _, receipt)] = sink.received
    with database.transaction(write=False) as session:
        token = session.get_one(Ticket, first.ticket_id).reply_token
    assert envelope_from == "news-desk@globex.example"
    assert receipt["From"] == "Globex Care <news-desk@globex.example>"
    assert receipt["Reply-To"] == f"Globex Care <care+{token}@globex.example>"
    text = receipt.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().strip() == f"Dear Kim, #{first.ticket_id} (Printer on fire) is with us."
