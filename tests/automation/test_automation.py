"""Triggers, time-based automations, macros and the escalation matrix, on SQLite and PostgreSQL,
with Slack, webhooks and PagerDuty-shaped paging delivered to a real local HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import AuditEvent
from opsdesk.automation import escalations, macros, rules
from opsdesk.automation.errors import InvalidMacroError, InvalidRuleError, MacroNotFoundError
from opsdesk.automation.models import AutomationRule, Macro
from opsdesk.jobs.runner import Runner, RunnerOptions
from opsdesk.outbox import OutboxJob
from opsdesk.sla import policies
from opsdesk.sla.clocks import sweep_breaches
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Message, Ticket
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_account, make_group, make_ticket, make_user, staff_actor
from tests.support.receiver import Receiver, start_receiver

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = start_receiver()
    yield receiver
    receiver.close()


def jobs_with(db: Session, prefix: str) -> list[OutboxJob]:
    return list(
        db.scalars(
            select(OutboxJob).where(OutboxJob.idempotency_key.startswith(prefix)).order_by(OutboxJob.id)
        )
    )


def rule_audit(db: Session, ticket_id: int) -> list[tuple[str, str, str | None]]:
    rows = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.ticket_id == ticket_id, AuditEvent.actor_kind == "rule")
        .order_by(AuditEvent.id)
    )
    return [(row.actor_name, row.action, row.field) for row in rows]


def test_a_trigger_fires_on_creation_and_its_firing_is_in_the_audit_trail(
    db: Session, receiver: Receiver
) -> None:
    group = make_group(db, "Enterprise desk")
    make_account(db, tier="enterprise", domain="vip.example")
    rules.save_rule(
        db,
        SYSTEM,
        name="VIP urgent",
        kind="trigger",
        events=["created"],
        conditions={
            "all": [{"field": "tier", "operator": "is", "value": "enterprise"}],
            "any": [
                {"field": "priority", "operator": "in", "value": ["urgent", "high"]},
                {"field": "subject", "operator": "contains", "value": "outage"},
            ],
        },
        actions=[
            {"type": "add_tags", "tags": ["vip"]},
            {"type": "assign", "group_id": group.id},
            {
                "type": "notify_slack",
                "webhook_url": receiver.url + "/slack",
                "text": "VIP: {{ ticket.subject }}",
            },
            {"type": "webhook", "url": receiver.url + "/hook"},
        ],
    )
    with clock.frozen(START):
        ticket = make_ticket(db, subject="Total outage", requester_email="amy@vip.example", priority="normal")
        plain = make_ticket(db, subject="Total outage", priority="urgent")  # no account: no match
    assert (ticket.tags, ticket.group_id) == (["vip"], group.id)
    assert plain.tags == []
    assert rule_audit(db, ticket.id) == [
        ("VIP urgent", "updated", "group_id"),
        ("VIP urgent", "updated", "tags"),
        ("VIP urgent", "rule_fired", None),
    ]
    slack, hook = jobs_with(db, "trigger:")[-2:]
    assert slack.payload == {"url": receiver.url + "/slack", "json": {"text": "VIP: Total outage"}}
    assert hook.payload["json"]["ticket"]["tags"] == ["vip"]
    rule = db.scalars(select(AutomationRule).where(AutomationRule.name == "VIP urgent")).one()
    db.refresh(rule)
    assert rule.fire_count == 1


def test_triggers_that_undo_each_other_fire_once_per_event_chain(db: Session) -> None:
    agent = staff_actor(make_user(db, role="agent"))
    for name, when, becomes in (("Raise", "high", "urgent"), ("Lower", "urgent", "high")):
        rules.save_rule(
            db,
            SYSTEM,
            name=name,
            kind="trigger",
            events=["updated"],
            conditions={"all": [{"field": "priority", "operator": "is", "value": when}]},
            actions=[{"type": "set_field", "field": "priority", "value": becomes}],
        )
    ticket = make_ticket(db)
    tickets.update_ticket(db, agent, ticket, {"priority": "high"})
    # Raise made it urgent, Lower made it high again; Raise may not fire twice in one chain.
    assert ticket.priority == "high"
    # Firings are recorded innermost first: Lower fired inside Raise's change.
    assert [name for name, action, _ in rule_audit(db, ticket.id) if action == "rule_fired"] == [
        "Lower",
        "Raise",
    ]
    counts = dict(db.execute(select(AutomationRule.name, AutomationRule.fire_count)).all())
    assert counts == {"Raise": 1, "Lower": 1}
    assert "automation_chain" not in db.info


def test_invalid_rules_are_refused_whole_and_nothing_is_saved(db: Session) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    with pytest.raises(InvalidRuleError) as refused:
        rules.save_rule(
            db,
            lead,
            name="Broken",
            kind="trigger",
            events=["created", "someday"],
            conditions={
                "all": [
                    {"field": "mood", "operator": "is", "value": "x"},
                    {"field": "hours_since_created", "operator": "greater_than", "value": "soon"},
                ]
            },
            actions=[
                {"type": "launch_rocket"},
                {"type": "notify_slack", "webhook_url": "ftp://x", "text": "{{ oops"},
            ],
        )
    locations = sorted(".".join(map(str, problem.location)) for problem in refused.value.fields)
    assert locations == [
        "actions.0",
        "actions.1.text",
        "actions.1.webhook_url",
        "conditions.all.0.field",
        "conditions.all.1.value",
        "events",
    ]
    assert db.scalar(select(func.count()).select_from(AutomationRule)) == 0
    agent = staff_actor(make_user(db, role="agent"))
    with pytest.raises(Exception, match=r"may not rule\.manage"):
        rules.save_rule(
            db,
            agent,
            name="Mine",
            kind="trigger",
            events=["created"],
            conditions={},
            actions=[{"type": "add_tags", "tags": ["x"]}],
        )


def test_macro_preview_is_exactly_what_is_sent_and_uses_are_counted(db: Session) -> None:
    lead_user = make_user(db, role="lead", name="Lena Lead")
    lead = staff_actor(lead_user)
    other = staff_actor(make_user(db, role="agent"))
    account = make_account(db, tier="business", domain="acme.example")
    account.plan_name = "Growth"
    macro = macros.save_macro(
        db,
        lead,
        name="Waiting on you",
        shared=True,
        body_template="Hi {{ ticket.requester.first_name }},\n"
        "{{ agent.name }} here about your {{ account.plan_name }} plan.",
        actions=[
            {"type": "set_field", "field": "status", "value": "pending"},
            {"type": "add_tags", "tags": ["asked"]},
        ],
    )
    personal = macros.save_macro(db, lead, name="Mine", body_template="Thanks!")
    ticket = make_ticket(db, requester_email="jo.smith@acme.example", requester_name="Jo Smith")
    preview = macros.preview_macro(db, lead, ticket, macro)
    assert preview.body == "Hi Jo,\nLena Lead here about your Growth plan."
    assert preview.changes == {"status": "pending", "add_tags": ["asked"]}
    assert db.scalar(select(func.count()).select_from(Message).where(Message.ticket_id == ticket.id)) == 1

    message = macros.apply_macro(db, lead, ticket, macro)
    assert message is not None
    assert message.body_text == preview.body
    assert (ticket.status, ticket.tags) == ("pending", ["asked"])
    db.refresh(macro)
    assert macro.usage_count == 1
    actors = db.scalars(
        select(AuditEvent.actor_name).where(
            AuditEvent.ticket_id == ticket.id, AuditEvent.action == "macro_applied"
        )
    ).all()
    assert actors == ["Waiting on you (by Lena Lead)"]

    assert [found.name for found in macros.visible_macros(db, other)] == ["Waiting on you"]
    with pytest.raises(MacroNotFoundError):
        macros.access_macro(db, other, personal.id)
    escape = macros.save_macro(
        db, lead, name="Escape", body_template="{{ ''.__class__.__mro__[1].__subclasses__() }}"
    )
    with pytest.raises(InvalidMacroError, match="cannot be rendered"):
        macros.preview_macro(db, lead, ticket, escape)
    with pytest.raises(InvalidMacroError):
        macros.save_macro(db, lead, name="Bad", body_template="{% if %}")
    assert db.scalar(select(func.count()).select_from(Macro)) == 3


def test_time_based_automations_fire_once_per_state(db: Session) -> None:
    agent = staff_actor(make_user(db, role="agent", email="owner@staff.example.com"))
    rules.save_rule(
        db,
        SYSTEM,
        name="Remind after 3 days",
        kind="automation",
        conditions={
            "all": [
                {"field": "status", "operator": "is", "value": "pending"},
                {"field": "hours_since_status_change", "operator": "greater_than", "value": 72},
            ]
        },
        actions=[
            {"type": "add_tags", "tags": ["reminded"]},
            {
                "type": "notify_email",
                "to": "assignee",
                "subject": "Still waiting: {{ ticket.subject }}",
                "body": "Nudge",
            },
        ],
    )
    rules.save_rule(
        db,
        SYSTEM,
        name="Solve after 7 days",
        kind="automation",
        position=1,
        conditions={
            "all": [
                {"field": "status", "operator": "is", "value": "pending"},
                {"field": "hours_since_status_change", "operator": "greater_than", "value": 168},
            ]
        },
        actions=[{"type": "set_field", "field": "status", "value": "solved"}],
    )
    with clock.frozen(START) as frozen:
        ticket = make_ticket(db, assignee_id=agent.user_id)
        tickets.update_ticket(db, agent, ticket, {"status": "pending"})
        frozen.advance(timedelta(days=2))
        assert rules.run_automations(db) == 0
        frozen.advance(timedelta(days=2))
        assert rules.run_automations(db) == 1
        assert rules.run_automations(db) == 0
        assert ticket.tags == ["reminded"]
        emails = jobs_with(db, "automation:")
        assert [(job.kind, job.payload["to"], job.payload["subject"]) for job in emails] == [
            ("automation.email", "owner@staff.example.com", "Still waiting: Cannot log in")
        ]
        frozen.advance(timedelta(days=4))
        assert rules.run_automations(db) == 1  # the solve; the reminder already fired this stretch
    assert ticket.status == "solved"
    assert [name for name, action, _ in rule_audit(db, ticket.id) if action == "rule_fired"] == [
        "Remind after 3 days",
        "Solve after 7 days",
    ]


def test_urgent_breach_on_a_hot_account_pages_on_call_through_the_outbox(
    database: BoundDatabase, db: Session, receiver: Receiver
) -> None:
    policies.save_policy(
        db,
        SYSTEM,
        name="Urgent",
        conditions={"priority": ["urgent"]},
        targets={"first_reply": {"minutes": 30}},
    )
    escalations.save_escalation(
        db,
        SYSTEM,
        priority="urgent",
        tier=None,
        notify=["group"],
        page_on_call=True,
        paging_url=receiver.url + "/v2/enqueue",
        paging_routing_key="R0UT1NGKEY",
    )
    escalations.save_escalation(
        db,
        SYSTEM,
        priority="urgent",
        tier="enterprise",
        minutes_after_breach=60,
        slack_webhook_url=receiver.url + "/slack",
    )
    rules.save_rule(
        db,
        SYSTEM,
        name="Tag breaches",
        kind="trigger",
        events=["sla_breached"],
        conditions={"all": [{"field": "sla_metric", "operator": "is", "value": "first_reply"}]},
        actions=[{"type": "add_tags", "tags": ["breached"]}],
    )
    group = make_group(db)
    make_user(db, role="lead", email="lead@staff.example.com", groups=[group])
    account = make_account(db, tier="enterprise", domain="hot.example")
    account.is_hot = True
    with clock.frozen(START) as frozen:
        ticket = make_ticket(db, requester_email="kim@hot.example", priority="urgent", group_id=group.id)
        frozen.advance(timedelta(minutes=31))
        assert sweep_breaches(db) == 1
        assert ticket.tags == ["breached"]
        page = [
            job for job in jobs_with(db, "escalation:") if job.payload.get("url", "").endswith("/v2/enqueue")
        ]
        assert len(page) == 1
        event = page[0].payload["json"]
        assert (event["routing_key"], event["event_action"], event["dedup_key"]) == (
            "R0UT1NGKEY",
            "trigger",
            f"opsdesk-ticket-{ticket.id}-first_reply",
        )
        assert event["payload"]["severity"] == "critical"
        assert event["payload"]["custom_details"]["tier"] == "enterprise"
        assert [
            job.payload["to"] for job in jobs_with(db, "escalation:") if job.kind == "automation.email"
        ] == ["lead@staff.example.com"]
        frozen.advance(timedelta(minutes=30))
        assert escalations.sweep_escalations(db) == 0
        frozen.advance(timedelta(minutes=31))
        assert escalations.sweep_escalations(db) == 1
        assert escalations.sweep_escalations(db) == 0
        db.commit()
        runner = Runner(database, options=RunnerOptions(concurrency=1), worker_id="test")
        for job in runner.claim(100):
            if job.kind == "http.post":
                delivered = runner.run_job(job)
                db.expire_all()
                assert delivered, db.get_one(OutboxJob, job.id).last_error
    paged = [request for request in receiver.requests if request.path == "/v2/enqueue"]
    assert [request.body["dedup_key"] for request in paged] == [f"opsdesk-ticket-{ticket.id}-first_reply"]
    assert paged[0].headers["idempotency-key"] == page[0].idempotency_key
    assert [request.path for request in receiver.requests].count("/slack") == 1
    escalated = db.scalars(
        select(AuditEvent.actor_name).where(
            AuditEvent.ticket_id == ticket.id, AuditEvent.action == "escalated"
        )
    ).all()
    assert escalated == [
        "Escalation urgent/any tier at breach",
        "Escalation urgent/enterprise 60 min after breach",
    ]
    assert db.get_one(Ticket, ticket.id).tags == ["breached"]
