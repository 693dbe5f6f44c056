"""Mail sent over real SMTP to the aiosmtpd receiver lands on tickets once; too-big mail is refused
with 552 and a reason; throttled senders are kept but open no tickets."""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import func, select

from opsdesk.channels.models import RawInbound
from opsdesk.channels.smtp_receiver import SmtpReceiver
from opsdesk.config import Settings
from opsdesk.tickets.models import Message, Ticket
from tests.channels.mail import simple_email
from tests.support.databases import BoundDatabase


def _send(port: int, raw: bytes, sender: str = "kim@customer.example") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(sender, ["support@example.com"], raw)


def test_mail_over_smtp_opens_one_ticket_even_when_sent_twice(
    database: BoundDatabase, settings: Settings
) -> None:
    raw = simple_email(message_id="smtp-1@customer.example")
    with SmtpReceiver(database, settings) as receiver:
        _send(receiver.port, raw)
        _send(receiver.port, raw)
        _send(
            receiver.port,
            simple_email(
                message_id="smtp-2@customer.example",
                in_reply_to="smtp-1@customer.example",
                subject="Re: Printer on fire",
                body="Now it smokes.",
            ),
        )

    with database.transaction(write=False) as session:
        tickets = session.scalars(select(Ticket)).all()
        assert [(ticket.subject, ticket.channel) for ticket in tickets] == [("Printer on fire", "email")]
        bodies = session.scalars(
            select(Message.body_text).where(Message.ticket_id == tickets[0].id).order_by(Message.id)
        )
        assert list(bodies) == ["The printer is on fire.", "Now it smokes."]
        assert session.scalar(select(func.count()).select_from(RawInbound)) == 2


def test_oversize_mail_is_refused_with_552_and_a_reason(database: BoundDatabase, settings: Settings) -> None:
    settings.inbound_email_max_bytes = 2_000
    raw = simple_email(body="x" * 5_000, message_id="big@customer.example")
    with SmtpReceiver(database, settings) as receiver, pytest.raises(smtplib.SMTPException) as refused:
        _send(receiver.port, raw)

    error = refused.value
    code = getattr(error, "smtp_code", None)
    assert code == 552
    assert (
        b"size" in getattr(error, "smtp_error", b"").lower()
        or b"too much" in getattr(error, "smtp_error", b"").lower()
    )
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(RawInbound)) == 0
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_only_support_and_brand_addresses_are_accepted_never_relayed(
    database: BoundDatabase, settings: Settings
) -> None:
    from opsdesk.channels.service.brands import add_brand
    from tests.support.factories import SYSTEM

    settings.inbound_domains = "help.example"
    with database.transaction() as session:
        add_brand(session, SYSTEM, name="Acme", support_address="care@acme.example", from_name="Acme")
    raw = simple_email(message_id="rcpt-1@customer.example")
    with SmtpReceiver(database, settings) as receiver, smtplib.SMTP("127.0.0.1", receiver.port) as client:
        client.ehlo()
        client.mail("kim@customer.example")
        accepted = [
            client.rcpt(address)[0]
            for address in (
                "support@example.com",
                "support+ab12cd@example.com",
                "care@acme.example",
                "anyone@help.example",
            )
        ]
        relay_code, relay_reason = client.rcpt("victim@elsewhere.example")
        other_code, _ = client.rcpt("sales@example.com")
        client.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("kim@customer.example", ["victim@elsewhere.example"], raw)

    assert accepted == [250, 250, 250, 250]
    assert (relay_code, other_code) == (550, 550)
    assert relay_reason.decode() == (
        "5.1.1 <victim@elsewhere.example> is not a support address here; this server does not relay"
    )
    assert refused.value.recipients["victim@elsewhere.example"][0] == 550
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(RawInbound)) == 0
