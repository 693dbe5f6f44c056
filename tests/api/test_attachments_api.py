"""Attachments over the API and on the ticket page, on SQLite and PostgreSQL: multipart messages,
the size limit (413) and refused types (415) as problems that store nothing, downloads with the
stored type and a safe Content-Disposition, and access through the ticket's rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.tickets.models import Attachment, Message
from tests.support.databases import BoundDatabase
from tests.support.factories import make_group, make_ticket, make_user
from tests.support.web import app_client, bearer_headers, sign_in

LIMIT = 2_000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PASSWORD = "correct horse battery"


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> Iterator[TestClient]:
    with app_client(database, tmp_path, attachment_max_bytes=LIMIT) as test_client:
        yield test_client


def _count(db: Session, model: type[object]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _stored_files(client: TestClient) -> list[Path]:
    root: Path = client.app.state.settings.attachments_dir  # type: ignore[attr-defined]
    return [path for path in root.rglob("*") if path.is_file()]


def test_multipart_message_with_attachments_and_downloads(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db, role="agent"))
    ticket = make_ticket(db)
    answer = client.post(
        f"/api/v1/tickets/{ticket.id}/messages",
        headers=headers,
        data={"body": "Screenshot and log attached", "public": "false"},
        files=[
            ("attachments", ("screen shot.png", PNG, "image/png")),
            ("attachments", ('report"; x=".html', b"<script>alert(1)</script>", "text/html; charset=utf-8")),
        ],
    )
    assert answer.status_code == 201, answer.text
    message = answer.json()
    assert message["public"] is False
    names = [item["filename"] for item in message["attachments"]]
    assert names[0] == "screen shot.png"
    assert names[1].endswith(".html")
    assert not set('"/;\\') & set(names[1])
    assert [(item["content_type"], item["size_bytes"]) for item in message["attachments"]] == [
        ("image/png", len(PNG)),
        ("text/html", 25),
    ]
    image_id, page_id = (item["id"] for item in message["attachments"])
    image = client.get(f"/api/v1/attachments/{image_id}", headers=headers)
    assert image.status_code == 200
    assert image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith('inline; filename="screen shot.png"')
    assert image.headers["x-content-type-options"] == "nosniff"
    html = client.get(f"/api/v1/attachments/{page_id}", headers=headers)
    assert html.status_code == 200
    assert html.content == b"<script>alert(1)</script>"
    assert html.headers["content-disposition"].startswith(f'attachment; filename="{names[1]}"')
    assert "sandbox" in html.headers["content-security-policy"]
    listed = client.get(f"/api/v1/tickets/{ticket.id}/messages", headers=headers).json()
    assert [item["id"] for item in listed[-1]["attachments"]] == [image_id, page_id]


def test_json_messages_still_work_and_bad_input_is_a_problem(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db, role="agent"))
    ticket = make_ticket(db)
    plain = client.post(f"/api/v1/tickets/{ticket.id}/messages", headers=headers, json={"body": "Hello"})
    assert plain.status_code == 201, plain.text
    assert plain.json()["attachments"] == []
    bad = client.post(f"/api/v1/tickets/{ticket.id}/messages", headers=headers, json={"public": "maybe"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert {error["field"] for error in bad.json()["errors"]} == {"body", "public"}
    bad_form = client.post(
        f"/api/v1/tickets/{ticket.id}/messages", headers=headers, data={"public": "yes please"}
    )
    assert bad_form.status_code == 422
    assert {error["field"] for error in bad_form.json()["errors"]} == {"body", "public"}


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status", "code"),
    [
        ("big.log", b"x" * (LIMIT + 1), "text/plain", 413, "attachment_too_large"),
        ("setup.exe", b"hello", "application/octet-stream", 415, "attachment_type_refused"),
        ("notes.txt", b"MZ\x90\x00\x03" + b"\x00" * 40, "text/plain", 415, "attachment_type_refused"),
        ("run", b"#!/bin/sh\necho hi", "application/x-sh", 415, "attachment_type_refused"),
    ],
)
def test_refused_uploads_store_nothing(
    db: Session, client: TestClient, name: str, data: bytes, content_type: str, status: int, code: str
) -> None:
    headers = bearer_headers(db, make_user(db, role="agent"))
    ticket = make_ticket(db)
    messages_before = _count(db, Message)
    answer = client.post(
        f"/api/v1/tickets/{ticket.id}/messages",
        headers=headers,
        data={"body": "see attached"},
        files=[
            ("attachments", ("fine.txt", b"fine", "text/plain")),
            ("attachments", (name, data, content_type)),
        ],
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code
    assert answer.json()["errors"][0]["location"] == ["attachments", 1]
    assert _count(db, Message) == messages_before
    assert _count(db, Attachment) == 0
    assert _stored_files(client) == []


def test_too_many_files_are_refused(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db, role="agent"))
    ticket = make_ticket(db)
    answer = client.post(
        f"/api/v1/tickets/{ticket.id}/messages",
        headers=headers,
        data={"body": "lots"},
        files=[("attachments", (f"f{number}.txt", b"x", "text/plain")) for number in range(11)],
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "attachments"
    assert _count(db, Attachment) == 0


def test_downloads_follow_the_ticket_access_rule(db: Session, client: TestClient) -> None:
    group, other_group = make_group(db), make_group(db)
    agent_headers = bearer_headers(db, make_user(db, role="agent"))
    contractor_headers = bearer_headers(db, make_user(db, role="contractor", groups=[group]))
    visible = make_ticket(db, group_id=group.id)
    hidden = make_ticket(db, group_id=other_group.id)
    ids = []
    for ticket in (visible, hidden):
        posted = client.post(
            f"/api/v1/tickets/{ticket.id}/messages",
            headers=agent_headers,
            data={"body": "log"},
            files=[("attachments", ("log.txt", b"line 1", "text/plain"))],
        )
        assert posted.status_code == 201, posted.text
        ids.append(posted.json()["attachments"][0]["id"])
    assert client.get(f"/api/v1/attachments/{ids[0]}", headers=contractor_headers).status_code == 200
    hidden_answer = client.get(f"/api/v1/attachments/{ids[1]}", headers=contractor_headers)
    assert hidden_answer.status_code == 404
    assert hidden_answer.json()["code"] == "attachment_not_found"
    assert client.get("/api/v1/attachments/987654321", headers=agent_headers).status_code == 404
    assert client.get(f"/api/v1/attachments/{ids[0]}").status_code == 401


def test_ticket_page_shows_attachments_and_replies_with_files(db: Session, client: TestClient) -> None:
    user = make_user(db, role="agent", password=PASSWORD)
    ticket = make_ticket(db)
    db.flush()
    csrf = sign_in(client, user.email, PASSWORD)
    sent = client.post(
        f"/tickets/{ticket.id}/messages",
        data={"csrf_token": csrf, "body": "Here is the export", "visibility": "public"},
        files=[("attachments", ("export.csv", b"id,total\n1,20\n", "text/csv"))],
    )
    assert sent.status_code == 303, sent.text
    page = client.get(f"/tickets/{ticket.id}")
    attachment = db.scalars(select(Attachment)).one()
    assert f'href="/api/v1/attachments/{attachment.id}"' in page.text
    assert "export.csv" in page.text
    download = client.get(f"/api/v1/attachments/{attachment.id}")  # the browser's session cookie
    assert download.status_code == 200
    assert download.content == b"id,total\n1,20\n"
    refused = client.post(
        f"/tickets/{ticket.id}/messages",
        data={"csrf_token": csrf, "body": "and a tool", "visibility": "public"},
        files=[("attachments", ("tool.exe", b"MZ\x00", "application/octet-stream"))],
    )
    assert refused.status_code == 415
    assert "programs and scripts cannot be attached" in refused.text
    assert "and a tool" in refused.text  # the typed reply is kept
    assert _count(db, Attachment) == 1
