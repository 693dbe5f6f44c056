"""The helpdesk pages through the real ASGI app, on SQLite and PostgreSQL: views with counts,
paginated and sorted lists without N+1 queries, the ticket page and its two forms (CSRF, readable
refusals that change nothing), people and accounts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.models import AuditEvent
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Account, CustomFieldDefinition, Message, Ticket, View
from opsdesk.tickets.service import views as views_service
from tests.support.databases import BoundDatabase, recorded_statements
from tests.support.factories import make_account, make_group, make_ticket, make_user, staff_actor
from tests.support.web import app_client, sign_in

PASSWORD = "correct horse battery"


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> Iterator[TestClient]:
    with app_client(database, tmp_path) as test_client:
        yield test_client


@pytest.fixture
def views(db: Session) -> list[View]:
    views_service.ensure_default_views(db)
    db.flush()
    return views_service.visible_views(db, staff_actor(make_user(db, role="admin")))


def _signed_in(client: TestClient, db: Session, role: str = "agent", **fields: Any) -> tuple[str, Any]:
    user = make_user(db, role=role, password=PASSWORD, **fields)
    db.flush()
    return sign_in(client, user.email, PASSWORD), user


def _view(views: list[View], name: str) -> View:
    return next(view for view in views if view.name == name)


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    answer = client.get("/tickets/1")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=/tickets/1")


def test_home_opens_the_first_view_and_lists_counts(
    client: TestClient, db: Session, views: list[View]
) -> None:
    _, agent = _signed_in(client, db)
    make_ticket(db, subject="Charged twice", assignee_id=agent.id)
    make_ticket(db, subject="Export is empty")
    db.flush()
    home = client.get("/")
    assert home.status_code == 303
    assert home.headers["location"] == f"/views/{views[0].id}"
    unassigned = client.get(f"/views/{_view(views, 'Unassigned').id}")
    assert unassigned.status_code == 200
    html = unassigned.text
    assert "Export is empty" in html
    assert "Charged twice" not in html
    sidebar = re.findall(
        r'<span class="view-name">([^<]+)</span> <span class="count"[^>]*>(\d+)</span>', html
    )
    assert dict(sidebar) == {"My open": "1", "Unassigned": "1", "All unsolved": "2", "Recently solved": "0"}


def test_view_pages_by_cursor_and_sorts(client: TestClient, db: Session, views: list[View]) -> None:
    _signed_in(client, db)
    for number in range(55):
        make_ticket(db, subject=f"Question number {number:02d}")
    db.flush()
    base = f"/views/{_view(views, 'All unsolved').id}"
    first = client.get(base, params={"sort": "created_at"})
    subjects = re.findall(r"Question number (\d\d)", first.text)
    assert subjects == [f"{number:02d}" for number in range(50)]
    next_link = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert next_link is not None
    second = client.get(next_link.group(1).replace("&amp;", "&"))
    assert re.findall(r"Question number (\d\d)", second.text) == ["50", "51", "52", "53", "54"]
    assert 'rel="next"' not in second.text
    newest_first = client.get(base, params={"sort": "-id"})
    assert re.findall(r"Question number (\d\d)", newest_first.text)[:2] == ["54", "53"]
    assert 'aria-sort="descending"' in newest_first.text
    stale = client.get(base, params={"cursor": "not-a-cursor"})
    assert stale.status_code == 200
    assert "no longer valid" in stale.text


def test_list_pages_do_not_query_per_ticket(
    client: TestClient, db: Session, database: BoundDatabase, views: list[View]
) -> None:
    _signed_in(client, db)
    group = make_group(db)
    assignee = make_user(db, groups=[group])
    account = make_account(db, domain="many.example", tier="enterprise")

    def add(count: int, offset: int) -> None:
        for number in range(count):
            make_ticket(
                db,
                requester_email=f"p{offset + number}@many.example",
                group_id=group.id,
                assignee_id=assignee.id,
                tags=[f"t{number}"],
            )
        db.flush()

    url = f"/views/{_view(views, 'All unsolved').id}"
    add(3, 0)
    with recorded_statements(database) as few:
        assert client.get(url).status_code == 200
    add(30, 100)
    with recorded_statements(database) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)
    with recorded_statements(database) as account_queries:
        assert client.get(f"/accounts/{account.id}").status_code == 200
    add(10, 200)
    with recorded_statements(database) as more_account_queries:
        assert client.get(f"/accounts/{account.id}").status_code == 200
    assert len(more_account_queries) == len(account_queries)


def test_ticket_page_shows_replies_and_notes_apart_with_the_trail(
    client: TestClient, db: Session, views: list[View]
) -> None:
    _, agent = _signed_in(client, db)
    ticket = make_ticket(db, subject="Sync broken", body="Nothing syncs since Monday.")
    tickets.add_message(
        db, staff_actor(agent), ticket, body_text="Checked the logs: token expired.", public=False
    )
    tickets.add_message(db, staff_actor(agent), ticket, body_text="Please reconnect the integration.")
    db.flush()
    page = client.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'class="message message-customer".*Nothing syncs since Monday', html, re.S)
    assert re.search(r'class="message message-note".*Internal note.*token expired', html, re.S)
    assert re.search(r'class="message message-reply".*Public reply.*reconnect the integration', html, re.S)
    assert "Audit trail" in html
    assert "added an internal note" in html
    assert "changed status" in html
    assert '<option value="open" selected>Open</option>' in html


def test_reply_form_posts_with_csrf(client: TestClient, db: Session, views: list[View]) -> None:
    csrf, agent = _signed_in(client, db)
    ticket = make_ticket(db)
    db.flush()
    answer = client.post(
        f"/tickets/{ticket.id}/messages",
        data={
            "csrf_token": csrf,
            "body": "Could you send a screenshot?",
            "visibility": "public",
            "status": "pending",
        },
    )
    assert answer.status_code == 303
    message = db.scalars(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id.desc())
    ).first()
    assert message is not None
    assert message.body_text == "Could you send a screenshot?"
    assert answer.headers["location"] == f"/tickets/{ticket.id}#message-{message.id}"
    assert message.author_user_id == agent.id
    assert message.is_public
    db.refresh(ticket)
    assert ticket.status == "pending"
    assert ticket.first_reply_at is not None


def test_refused_posts_change_nothing(client: TestClient, db: Session, views: list[View]) -> None:
    csrf, _ = _signed_in(client, db)
    ticket = make_ticket(db)
    db.flush()

    def counts() -> tuple[int, int]:
        messages = db.scalar(select(func.count()).select_from(Message).where(Message.ticket_id == ticket.id))
        events = db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.ticket_id == ticket.id)
        )
        return int(messages or 0), int(events or 0)

    before = counts()
    forged = client.post(f"/tickets/{ticket.id}/messages", data={"body": "Hello", "visibility": "public"})
    assert forged.status_code == 403
    empty = client.post(
        f"/tickets/{ticket.id}/messages",
        data={"csrf_token": csrf, "body": "   ", "visibility": "note", "status": "solved"},
    )
    assert empty.status_code == 422
    assert "Nothing was changed" in empty.text
    assert "body: must not be empty" in empty.text
    assert 'value="note" checked' in empty.text
    unknown_status = client.post(
        f"/tickets/{ticket.id}/messages",
        data={"csrf_token": csrf, "body": "Done", "visibility": "public", "status": "teleported"},
    )
    assert unknown_status.status_code == 422
    assert "unknown status" in unknown_status.text
    assert ">Done</textarea>" in unknown_status.text
    assert counts() == before
    db.refresh(ticket)
    assert ticket.status == "new"
    assert ticket.first_reply_at is None


def test_fields_form_changes_fields_and_refuses_bad_values(
    client: TestClient, db: Session, views: list[View]
) -> None:
    csrf, _ = _signed_in(client, db)
    group = make_group(db, "Billing")
    colleague = make_user(db, name="Sam Billing", groups=[group])
    db.add(CustomFieldDefinition(key="seats", label="Seats", field_type="number", options=[]))
    ticket = make_ticket(db, tags=["billing"])
    db.flush()
    form = {
        "csrf_token": csrf,
        "status": "open",
        "priority": "high",
        "type": "incident",
        "group_id": str(group.id),
        "assignee_id": str(colleague.id),
        "tags": "billing, refund",
        "cf_seats": "12",
    }
    answer = client.post(f"/tickets/{ticket.id}/fields", data=form)
    assert answer.status_code == 303, answer.text
    db.refresh(ticket)
    assert (ticket.status, ticket.priority, ticket.type) == ("open", "high", "incident")
    assert (ticket.group_id, ticket.assignee_id) == (group.id, colleague.id)
    assert ticket.tags == ["billing", "refund"]
    assert ticket.custom_fields == {"seats": 12}
    events_before = db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.ticket_id == ticket.id)
    )

    refused = client.post(
        f"/tickets/{ticket.id}/fields", data={**form, "priority": "low", "cf_seats": "a dozen"}
    )
    assert refused.status_code == 422
    assert "Seats must be a number" in refused.text
    assert 'value="a dozen"' in refused.text
    db.refresh(ticket)
    assert ticket.priority == "high"
    assert ticket.custom_fields == {"seats": 12}
    assert db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.ticket_id == ticket.id)
    ) == (events_before)
    unchanged = client.post(f"/tickets/{ticket.id}/fields", data=form)
    assert unchanged.status_code == 303
    assert db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.ticket_id == ticket.id)
    ) == (events_before)


def test_person_and_account_pages(client: TestClient, db: Session, views: list[View]) -> None:
    _signed_in(client, db)
    csm = make_user(db, role="csm", name="Olivia Owner")
    account = make_account(db, name="Bluepeak Logistics", domain="bluepeak.example", tier="enterprise")
    account.plan_name, account.owner_id, account.is_hot = "Enterprise", csm.id, True
    account.mrr_amount_minor = 1_250_000
    ticket = make_ticket(db, subject="SSO broken for everyone", requester_email="ana@bluepeak.example")
    db.flush()
    person_page = client.get(f"/people/{ticket.requester_id}")
    assert person_page.status_code == 200
    assert "ana@bluepeak.example" in person_page.text
    assert "Bluepeak Logistics" in person_page.text
    assert "SSO broken for everyone" in person_page.text
    account_page = client.get(f"/accounts/{account.id}")
    html = account_page.text
    assert account_page.status_code == 200
    for expected in (
        "Enterprise",
        "$12,500.00",
        "Olivia Owner",
        "Hot account",
        "bluepeak.example",
        "SSO broken",
    ):
        assert expected in html
    assert client.get("/accounts/999999").status_code == 404
    assert "Not found" in client.get("/people/999999").text


def test_contractor_sees_only_their_groups(client: TestClient, db: Session, views: list[View]) -> None:
    mine, theirs = make_group(db, "Frontline"), make_group(db, "Billing")
    _signed_in(client, db, role="contractor", groups=[mine])
    visible = make_ticket(db, subject="In my queue", group_id=mine.id)
    hidden = make_ticket(db, subject="Not my queue", group_id=theirs.id)
    account = db.get_one(Account, make_account(db, tier="business").id)
    account.mrr_amount_minor = 99_900
    db.flush()
    assert client.get(f"/tickets/{visible.id}").status_code == 200
    refused = client.get(f"/tickets/{hidden.id}")
    assert refused.status_code == 404
    assert "text/html" in refused.headers["content-type"]
    unsolved = client.get(f"/views/{_view(views, 'All unsolved').id}").text
    assert "In my queue" in unsolved
    assert "Not my queue" not in unsolved
    assert "MRR" not in client.get(f"/tickets/{visible.id}").text
    assert db.scalar(select(func.count()).select_from(Ticket)) == 2
