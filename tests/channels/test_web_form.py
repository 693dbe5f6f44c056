"""The public support form: a request becomes a web ticket with attachments and a receipt email;
bad input gets readable errors and changes nothing; the honeypot and the rate limit stop bots."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opsdesk.app import create_app
from opsdesk.channels.models import OutboundEmail, RawInbound
from opsdesk.config import Settings
from opsdesk.tickets.models import Message, Ticket
from tests.support.databases import BoundDatabase

FIELDS = {
    "name": "Ines Costa",
    "email": "ines@shop.example",
    "subject": "Refund please",
    "description": "Order 88 arrived broken.",
    "website": "",
}


def _client(database: BoundDatabase, tmp_path: Path, **overrides: object) -> TestClient:
    settings = Settings(data_dir=tmp_path / "data", environment="test", **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings, database=database))


def _counts(database: BoundDatabase) -> tuple[int, int, int]:
    with database.transaction(write=False) as session:
        return (
            int(session.scalar(select(func.count()).select_from(Ticket)) or 0),
            int(session.scalar(select(func.count()).select_from(RawInbound)) or 0),
            int(session.scalar(select(func.count()).select_from(OutboundEmail)) or 0),
        )


def test_form_creates_a_web_ticket_with_attachments_and_a_receipt(
    database: BoundDatabase, tmp_path: Path
) -> None:
    client = _client(database, tmp_path)
    page = client.get("/support/new")
    assert page.status_code == 200
    assert 'name="website"' in page.text

    response = client.post(
        "/support/new", data=FIELDS, files=[("files", ("photo.png", b"\x89PNG fake", "image/png"))]
    )

    assert response.status_code == 200
    assert "We received your request" in response.text
    with database.transaction(write=False) as session:
        ticket = session.scalars(select(Ticket)).one()
        assert (ticket.channel, ticket.subject, ticket.requester.name) == (
            "web",
            "Refund please",
            "Ines Costa",
        )
        message = session.scalars(select(Message)).one()
        assert message.body_text == "Order 88 arrived broken."
        assert [(item.filename, item.size_bytes) for item in message.attachments] == [("photo.png", 9)]
        receipt = session.scalars(select(OutboundEmail)).one()
        assert (receipt.kind, receipt.to_address) == ("receipt", "ines@shop.example")
        assert f"#{ticket.id}" in response.text


def test_bad_input_is_explained_and_changes_nothing(database: BoundDatabase, tmp_path: Path) -> None:
    client = _client(database, tmp_path)
    response = client.post("/support/new", data={**FIELDS, "email": "not-an-address", "description": " "})

    assert response.status_code == 422
    assert "Enter the email address we should answer to." in response.text
    assert "Describe what happened or what you need." in response.text
    assert 'value="Refund please"' in response.text  # what was typed is kept
    assert _counts(database) == (0, 0, 0)


def test_honeypot_is_refused_readably_and_stores_nothing(database: BoundDatabase, tmp_path: Path) -> None:
    client = _client(database, tmp_path)
    response = client.post("/support/new", data={**FIELDS, "website": "http://spam.example"})
    assert response.status_code == 422
    assert "Your request was not sent: the form&#39;s hidden anti-spam field was filled in" in response.text
    assert 'value="Refund please"' in response.text  # what they typed is kept
    assert _counts(database) == (0, 0, 0)


def test_rate_limit_per_client_address(database: BoundDatabase, tmp_path: Path) -> None:
    client = _client(database, tmp_path, support_form_per_ten_minutes=2)
    statuses = [
        client.post("/support/new", data={**FIELDS, "subject": f"Try {n}"}).status_code for n in range(3)
    ]
    assert statuses == [200, 200, 429]
    refused = client.post("/support/new", data=FIELDS)
    assert "try again in ten minutes" in refused.text
    assert _counts(database)[0] == 2
