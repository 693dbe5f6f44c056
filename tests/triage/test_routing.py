"""Routing rules on new tickets, dry runs, assignment per group and reassignment when an agent
goes away, with every decision on the audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.auth.models import AuditEvent, Group, User
from opsdesk.tickets.models import Ticket
from opsdesk.triage.errors import InvalidAssignmentError, InvalidRuleSetError
from opsdesk.triage.models import RoutingRule
from opsdesk.triage.seed import seed_defaults
from opsdesk.triage.service import assignment, routing
from tests.support.factories import make_account, make_group, make_ticket, make_user, staff_actor


def _agents(db: Session, group: Group, count: int, **values: object) -> list[User]:
    users = []
    for _ in range(count):
        user = make_user(db, groups=[group])
        user.availability = "online"
        for key, value in values.items():
            setattr(user, key, value)
        users.append(user)
    db.flush()
    return users


def _reasons(db: Session, ticket: Ticket, action: str) -> list[str]:
    return [
        str(reason)
        for reason in db.scalars(
            select(AuditEvent.reason)
            .where(AuditEvent.ticket_id == ticket.id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    ]


@pytest.fixture
def billing(db: Session) -> Group:
    seed_defaults(db)
    return make_group(db, "Billing")


def test_refused_rule_set_changes_nothing(db: Session, billing: Group) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    routing.save_rule_set(
        db, lead, [{"name": "Refunds", "conditions": [], "actions": {"group_id": billing.id}}]
    )
    with pytest.raises(InvalidRuleSetError) as refused:
        routing.save_rule_set(
            db,
            lead,
            [
                {
                    "name": "Typo",
                    "conditions": [{"field": "tier", "op": "equals", "value": "x"}],
                    "actions": {"group_id": billing.id},
                },
                {
                    "name": "Bad group",
                    "conditions": [{"field": "channel", "op": "equals", "value": "chat"}],
                    "actions": {"group_id": 999_999},
                },
            ],
        )
    assert [(".".join(map(str, f.location)), f.code) for f in refused.value.fields] == [
        ("rules.0.conditions.0.field", "unknown_field"),
        ("rules.1.actions.group_id", "invalid"),
    ]
    assert [row.name for row in routing.list_rules(db)] == ["Refunds"]
    agent = staff_actor(make_user(db))
    with pytest.raises(PermissionDeniedError, match=r"rule\.manage"):
        routing.save_rule_set(db, agent, [])
    assert db.scalar(select(func.count()).select_from(RoutingRule)) == 1


def test_new_ticket_is_routed_and_assigned_least_loaded_with_reasons(db: Session, billing: Group) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    busy, free = _agents(db, billing, 2, capacity=10)
    assignment.update_group_assignment(db, lead, billing.id, mode="least_loaded")
    make_ticket(db, subject="Earlier", body="old work", group_id=billing.id, assignee_id=busy.id)
    routing.save_rule_set(
        db,
        lead,
        [
            {
                "name": "Refunds to billing",
                "conditions": [{"field": "category", "op": "under", "value": ["billing"]}],
                "actions": {"group_id": billing.id, "priority": "high", "add_tags": ["money"]},
            }
        ],
    )
    ticket = make_ticket(db, subject="Refund", body="Please refund me, I want my money back")
    assert (ticket.category, ticket.group_id, ticket.priority, ticket.assignee_id) == (
        "billing/refund",
        billing.id,
        "high",
        free.id,
    )
    assert ticket.tags == ["money"]
    assert _reasons(db, ticket, "routed") == [
        "rule 'Refunds to billing' matched: category under ['billing'] (yes: category is 'billing/refund')"
    ]
    assert _reasons(db, ticket, "assigned") == [f"{free.name} (least-loaded: 0/10 open; speaks en)"]
    group_row = db.scalars(
        select(AuditEvent).where(AuditEvent.ticket_id == ticket.id, AuditEvent.field == "group_id")
    ).one()
    assert (group_row.actor_kind, group_row.actor_name) == ("rule", "Refunds to billing")


def test_dry_run_explains_without_changing_anything(db: Session, billing: Group) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    ticket = make_ticket(db, subject="Hello", body="How do I export a report?", channel="chat")
    before = db.scalar(select(func.count()).select_from(AuditEvent))
    evaluation = routing.dry_run(
        db,
        lead,
        ticket,
        [
            {
                "name": "Email",
                "conditions": [{"field": "channel", "op": "equals", "value": "email"}],
                "actions": {"group_id": billing.id},
            },
            {
                "name": "Chat how-to",
                "conditions": [
                    {"field": "channel", "op": "equals", "value": "chat"},
                    {"field": "category", "op": "equals", "value": "how_to"},
                ],
                "actions": {"priority": "low"},
            },
        ],
    )
    assert evaluation.rule is not None
    assert evaluation.rule.name == "Chat how-to"
    assert [trace.matched for trace in evaluation.trace] == [False, True]
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == before
    assert ticket.priority == "normal"


def test_round_robin_takes_turns_and_skips_the_unavailable(db: Session, billing: Group) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    first, away, third = _agents(db, billing, 3)
    away.availability = "away"
    db.flush()
    assignment.update_group_assignment(db, lead, billing.id, mode="round_robin")
    assigned = [
        make_ticket(db, subject=f"T{n}", body="x y z", group_id=billing.id).assignee_id for n in range(3)
    ]
    assert assigned == [first.id, third.id, first.id]


def test_senior_agent_for_hot_accounts_and_skills_from_the_group(db: Session, billing: Group) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    junior, senior = _agents(db, billing, 2, skills=["billing_certified"])
    senior.seniority = 3
    uncertified = _agents(db, billing, 1)[0]
    db.flush()
    assignment.update_group_assignment(
        db, lead, billing.id, mode="least_loaded", senior_level=2, required_skills=["Billing_Certified"]
    )
    account = make_account(db, domain="hot.test", tier="business")
    account.is_hot = True
    db.flush()
    hot = make_ticket(db, subject="Help", body="x y z", requester_email="a@hot.test", group_id=billing.id)
    assert hot.assignee_id == senior.id
    plain = make_ticket(db, subject="Help", body="x y z", group_id=billing.id)
    assert plain.assignee_id == junior.id
    assert uncertified.id not in (hot.assignee_id, plain.assignee_id)
    assert "senior (level 2+) for a hot or enterprise account" in _reasons(db, hot, "assigned")[0]
    with pytest.raises(InvalidAssignmentError):
        assignment.update_group_assignment(db, lead, billing.id, mode="random")
    assert assignment.group_assignment(db, billing.id).mode == "least_loaded"


def test_agent_going_away_hands_tickets_to_colleagues(db: Session, billing: Group) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    leaving, staying = _agents(db, billing, 2)
    assignment.update_group_assignment(db, lead, billing.id, mode="manual")
    held = make_ticket(db, subject="Mine", body="x y z", group_id=billing.id, assignee_id=leaving.id)
    assignment.set_availability(db, staff_actor(leaving), leaving.id, "away")
    assert held.assignee_id == staying.id
    assert _reasons(db, held, "assigned") == [
        f"{leaving.name} is away; {staying.name} (least-loaded: 0/20 open)"
    ]
    other = make_ticket(db, subject="Theirs", body="x y z", group_id=billing.id, assignee_id=staying.id)
    assignment.set_availability(db, lead, staying.id, "off_shift")
    assert other.assignee_id is None
    assert held.assignee_id is None
    assert _reasons(db, other, "assigned")[-1].startswith(
        f"{staying.name} is off shift; back to the group queue"
    )
    agent = staff_actor(make_user(db))
    with pytest.raises(PermissionDeniedError, match=r"user\.manage"):
        assignment.set_availability(db, agent, leaving.id, "online")
    assert leaving.availability == "away"


def test_assign_backlog_spreads_the_queue(db: Session, billing: Group) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    agents = _agents(db, billing, 3, capacity=3)
    queued = [make_ticket(db, subject=f"Q{n}", body="x y z", group_id=billing.id) for n in range(10)]
    assignment.update_group_assignment(db, lead, billing.id, mode="least_loaded")
    assert assignment.assign_backlog(db, lead, billing.id) == 9  # capacity 3 each
    counts = assignment.open_counts(db, [agent.id for agent in agents])
    assert sorted(counts.values()) == [3, 3, 3]
    for ticket in queued:
        db.refresh(ticket)
    assert sum(1 for ticket in queued if ticket.assignee_id is None) == 1
    assert len(_reasons(db, queued[0], "assigned")) == 1
