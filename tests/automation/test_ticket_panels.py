"""The ticket page's SLA panel (side) and "Apply a macro" panel (main): picking, previewing exactly
what will be sent, applying through the macro service, and refusing a stale preview; on SQLite
and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import AuditEvent
from opsdesk.automation import macros
from opsdesk.automation.models import Macro
from opsdesk.sla import policies
from opsdesk.sla.deadlines import start_deadline_target
from opsdesk.tickets.models import Message, Ticket
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_ticket, make_user, staff_actor
from tests.support.web import app_client, sign_in

PASSWORD = "correct horse battery"


def panel(page: str, key: str) -> str:
    start = page.index(f'id="panel-{key}"')
    return page[start : page.index("</section>", start)]


def test_sla_panel_lists_the_targets_beside_the_ticket(
    database: BoundDatabase, db: Session, tmp_path: Path
) -> None:
    agent = make_user(db, role="agent", password=PASSWORD)
    policies.save_policy(
        db,
        SYSTEM,
        name="Everyone",
        conditions={},
        targets={"first_reply": {"minutes": 90}, "resolution": {"minutes": 600}},
    )
    ticket = make_ticket(db, subject="Sync is stuck")
    start_deadline_target(
        db, ticket, due_at=clock.now() + timedelta(days=2, hours=1), reason="Dispute dp_42 evidence due"
    )
    db.commit()
    client = app_client(database, tmp_path)
    sign_in(client, agent.email, PASSWORD)
    page = client.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200
    side = panel(page.text, "sla")
    assert side.count('class="sla-target sla-') == 3
    first = side[side.index('data-metric="First reply"') :]
    assert "active" in first[:400]
    assert "calendar time" in first
    assert "Policy: Everyone" in first
    assert re.search(r"\((1h 29m|1h 30m) left\)", first[:600])
    assert "Reason: Dispute dp_42 evidence due" in side
    assert "2d 1h left" in side or "2d 0h left" in side


def test_macro_panel_previews_exactly_and_applies_through_the_service(
    database: BoundDatabase, db: Session, tmp_path: Path
) -> None:
    agent_user = make_user(db, role="agent", name="Ada Agent", password=PASSWORD)
    other = make_user(db, role="agent", name="Olli Other")
    lead = staff_actor(make_user(db, role="lead"))
    shared = macros.save_macro(
        db,
        lead,
        name="Ask for logs",
        shared=True,
        body_template="Hi {{ ticket.requester.first_name }},\nplease send the logs. {{ agent.name }}",
        actions=[
            {"type": "set_field", "field": "status", "value": "pending"},
            {"type": "add_tags", "tags": ["logs-asked"]},
        ],
    )
    mine = macros.save_macro(db, staff_actor(agent_user), name="My thanks", body_template="Thanks!")
    theirs = macros.save_macro(db, staff_actor(other), name="Olli's secret", body_template="Psst")
    ticket = make_ticket(
        db, subject="App crashes", requester_email="jo@crash.example", requester_name="Jo Park"
    )
    db.commit()
    client = app_client(database, tmp_path)
    token = sign_in(client, agent_user.email, PASSWORD)

    picker = panel(client.get(f"/tickets/{ticket.id}").text, "macros")
    assert "Apply a macro" in picker
    assert f'value="{shared.id}"' in picker
    assert f'value="{mine.id}"' in picker
    assert f'value="{theirs.id}"' not in picker  # another agent's personal macro

    preview = client.get(f"/tickets/{ticket.id}/macros/preview", params={"macro_id": shared.id})
    assert preview.status_code == 200
    text = html.unescape(preview.text)
    assert "Hi Jo,\nplease send the logs. Ada Agent" in text
    assert "Public reply to Jo Park <jo@crash.example>" in text
    assert "<td>Status</td><td>new</td><td>pending</td>" in text
    assert "<td>Tags</td><td>—</td><td>logs-asked</td>" in text
    assert db.scalar(select(func.count()).select_from(Message).where(Message.ticket_id == ticket.id)) == 1
    digest = text.split('name="preview_digest" value="')[1].split('"')[0]

    # The macro is edited between preview and apply: nothing is applied, the new preview is shown.
    macros.save_macro(
        db,
        lead,
        macro_id=shared.id,
        name="Ask for logs",
        shared=True,
        body_template="Hello {{ ticket.requester.first_name }}, logs please.",
        actions=shared.actions,
    )
    db.commit()
    stale = client.post(
        f"/tickets/{ticket.id}/macros/{shared.id}/apply",
        data={"csrf_token": token, "preview_digest": digest},
        follow_redirects=False,
    )
    assert stale.status_code == 409
    stale_text = html.unescape(stale.text)
    assert "changed since the preview" in stale_text
    assert "Hello Jo, logs please." in stale_text
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Message).where(Message.ticket_id == ticket.id)) == 1
    assert db.get_one(Macro, shared.id).usage_count == 0
    assert db.get_one(Ticket, ticket.id).status == "new"
    digest = stale_text.split('name="preview_digest" value="')[1].split('"')[0]

    applied = client.post(
        f"/tickets/{ticket.id}/macros/{shared.id}/apply",
        data={"csrf_token": token, "preview_digest": digest},
        follow_redirects=False,
    )
    assert applied.status_code == 303
    assert applied.headers["location"] == f"/tickets/{ticket.id}"
    db.expire_all()
    sent = db.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)).all()
    assert sent[-1].body_text == "Hello Jo, logs please."
    after = db.get_one(Ticket, ticket.id)
    assert (after.status, after.tags) == ("pending", ["logs-asked"])
    assert db.get_one(Macro, shared.id).usage_count == 1
    assert db.scalars(
        select(AuditEvent.actor_name).where(
            AuditEvent.ticket_id == ticket.id, AuditEvent.action == "macro_applied"
        )
    ).all() == ["Ask for logs (by Ada Agent)"]
    assert (
        client.get(f"/tickets/{ticket.id}/macros/preview", params={"macro_id": theirs.id}).status_code == 404
    )
    assert (
        client.post(
            f"/tickets/{ticket.id}/macros/{shared.id}/apply",
            data={"preview_digest": digest},
            follow_redirects=False,
        ).status_code
        == 403
    )
