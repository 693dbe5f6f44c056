"""Routing rules and their application to tickets (``triage.route``).

The rule set is saved whole, validated first (an invalid set changes nothing). A new ticket is
routed after classification: the first rule whose conditions hold sets the group (when the ticket
has none), the priority and tags, and the group's assignment mode picks the agent. A ticket handed
off to the needs-triage queue is routed once a person names its category. Every decision is
written to the ticket's audit trail with the rule and the conditions that fired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from opsdesk import bus, clock, config_cache
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import PRIORITY_RANK
from opsdesk.tickets.events import TicketCreated
from opsdesk.tickets.models import Message, Ticket
from opsdesk.triage.enums import Outcome
from opsdesk.triage.errors import InvalidRuleSetError
from opsdesk.triage.events import TicketRouted
from opsdesk.triage.models import RoutingRule, TriagePrediction
from opsdesk.triage.routing_rules import Evaluation, Rule, first_match, rule_from_mapping, validate_rule_set
from opsdesk.triage.service.assignment import assign_in_group
from opsdesk.triage.service.classification import triage_enabled
from opsdesk.triage.service.settings import settings_view
from opsdesk.triage.service.taxonomy import category_paths

ROUTING_ACTOR = Actor.system("routing", via="triage")


def list_rules(session: Session) -> list[RoutingRule]:
    return list(session.scalars(select(RoutingRule).order_by(RoutingRule.position)))


def _load_active_rules(session: Session) -> tuple[Rule, ...]:
    return tuple(
        rule_from_mapping(
            {"name": row.name, "match": row.match, "conditions": row.conditions, "actions": row.actions},
            row.id,
        )
        for row in list_rules(session)
        if row.is_active
    )


def active_rules(session: Session) -> list[Rule]:
    """The active rules in order, parsed once per configuration change (cached per process)."""
    return list(config_cache.cached(session, "triage.routing_rules", _load_active_rules))


def validate_rules(session: Session, submitted: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """Parse and validate a submitted rule set; raise with every problem found."""
    problems: list[FieldProblem] = []
    rules: list[Rule] = []
    for position, data in enumerate(submitted):
        if not isinstance(data, Mapping):
            problems.append(FieldProblem(("rules", position), "a rule is an object"))
            continue
        unknown = set(data) - {"name", "match", "conditions", "actions", "is_active"}
        for key in sorted(unknown):
            problems.append(
                FieldProblem(("rules", position, key), f"unknown key {key!r}", code="unknown_field")
            )
        conditions = data.get("conditions") or []
        if not isinstance(conditions, list) or not all(isinstance(item, Mapping) for item in conditions):
            problems.append(FieldProblem(("rules", position, "conditions"), "a list of {field, op, value}"))
            continue
        if not isinstance(data.get("actions") or {}, Mapping):
            problems.append(FieldProblem(("rules", position, "actions"), "an object of actions"))
            continue
        rules.append(rule_from_mapping(data))
    if not problems:
        group_ids = frozenset(session.scalars(select(Group.id)))
        problems = validate_rule_set(rules, categories=category_paths(session), group_ids=group_ids)
    if problems:
        raise InvalidRuleSetError("the routing rules are not valid; nothing was saved", fields=problems)
    return rules


def save_rule_set(
    session: Session, actor: Actor, submitted: Sequence[Mapping[str, Any]]
) -> list[RoutingRule]:
    """Replace the rule set with ``submitted`` (in order), after validating all of it."""
    require(actor, Permission.RULE_MANAGE)
    validate_rules(session, submitted)
    before = [
        {"name": row.name, "conditions": row.conditions, "actions": row.actions}
        for row in list_rules(session)
    ]
    session.execute(delete(RoutingRule))
    now = clock.now()
    rows: list[RoutingRule] = []
    for position, data in enumerate(submitted):
        row = RoutingRule(
            position=position,
            name=str(data["name"]).strip(),
            match=str(data.get("match", "all")),
            conditions=[dict(item) for item in data.get("conditions") or []],
            actions=dict(data.get("actions") or {}),
            is_active=bool(data.get("is_active", True)),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="routing_rules",
        entity_id=None,
        action="replaced",
        old=before,
        new=[{"name": row.name, "conditions": row.conditions, "actions": row.actions} for row in rows],
    )
    return rows


def ticket_facts(session: Session, ticket: Ticket, prediction: TriagePrediction | None) -> dict[str, Any]:
    """The flat mapping routing conditions read."""
    body = session.scalar(
        select(Message.body_text).where(Message.ticket_id == ticket.id).order_by(Message.id).limit(1)
    )
    account = ticket.account
    email = ticket.requester.primary_email if ticket.requester is not None else None
    facts: dict[str, Any] = {
        "subject": ticket.subject,
        "body": body or "",
        "category": ticket.category,
        "predicted_category": prediction.category if prediction is not None else None,
        "confidence": prediction.confidence if prediction is not None else None,
        "sentiment": prediction.sentiment if prediction is not None else None,
        "priority": ticket.priority,
        "type": ticket.type,
        "channel": ticket.channel,
        "language": ticket.language,
        "account_tier": account.tier if account is not None else None,
        "account_is_hot": bool(account is not None and account.is_hot),
        "account_name": account.name if account is not None else None,
        "account_mrr_amount_minor": account.mrr_amount_minor if account is not None else None,
        "requester_email": email,
        "requester_domain": email.rsplit("@", 1)[-1] if email else None,
        "tags": ticket.tags,
        "group_id": ticket.group_id,
    }
    for key, value in (ticket.custom_fields or {}).items():
        facts[f"custom_fields.{key}"] = value
    return facts


def dry_run(
    session: Session, actor: Actor, ticket: Ticket, rules: Sequence[Mapping[str, Any]] | None = None
) -> Evaluation:
    """Which rule would fire for ``ticket`` (the saved rules, or a submitted set), and why."""
    require(actor, Permission.TICKET_READ)
    candidate = validate_rules(session, rules) if rules is not None else active_rules(session)
    prediction = session.scalar(select(TriagePrediction).where(TriagePrediction.ticket_id == ticket.id))
    return first_match(candidate, ticket_facts(session, ticket, prediction))


_PREDICTION_OF_TICKET = select(TriagePrediction).where(TriagePrediction.ticket_id == bindparam("ticket_id"))


def route_ticket(
    session: Session, ticket: Ticket, *, after_handoff: bool = False, new_ticket: bool = False
) -> Evaluation | None:
    """Apply the first matching rule to ``ticket`` and assign it inside its group.

    ``new_ticket``: created in this transaction, so it has a prediction only if triage is set up
    (no query otherwise)."""
    prediction = (
        None
        if new_ticket and not triage_enabled(session)
        else session.scalar(_PREDICTION_OF_TICKET, {"ticket_id": ticket.id})
    )
    settings = settings_view(session)
    if (
        not after_handoff
        and prediction is not None
        and prediction.outcome == Outcome.HANDOFF.value
        and settings.needs_triage_group_id is not None
        and ticket.group_id == settings.needs_triage_group_id
    ):
        audit.record(
            session,
            ROUTING_ACTOR,
            entity_type="ticket",
            entity_id=ticket.id,
            action="routed",
            new={"group_id": ticket.group_id},
            ticket_id=ticket.id,
            reason="waiting in the needs-triage queue until a person names the category",
        )
        return None
    rules = active_rules(session)
    if not rules and prediction is None:
        # triage is not set up (no taxonomy, no rules): only the group's own assignment applies
        if settings.auto_assign and ticket.group_id is not None and ticket.assignee_id is None:
            assign_in_group(session, ticket)
        return None
    evaluation = first_match(rules, ticket_facts(session, ticket, prediction))
    rule = evaluation.rule
    if rule is not None:
        actor = Actor.rule(rule.name, rule.rule_id, via="routing")
        changes: dict[str, Any] = {}
        group_id = rule.actions.get("group_id")
        in_triage_queue = after_handoff and ticket.group_id == settings.needs_triage_group_id
        if group_id is not None and (ticket.group_id is None or in_triage_queue):
            changes["group_id"] = group_id
        priority = rule.actions.get("priority")
        if priority is not None and PRIORITY_RANK.get(priority, 1) != PRIORITY_RANK.get(ticket.priority, 1):
            changes["priority"] = priority
        if rule.actions.get("add_tags"):
            changes["add_tags"] = list(rule.actions["add_tags"])
        if changes:
            tickets.update_ticket(session, actor, ticket, changes)
        audit.record(
            session,
            actor,
            entity_type="ticket",
            entity_id=ticket.id,
            action="routed",
            new={"rule": rule.name, "group_id": ticket.group_id, "priority": ticket.priority},
            ticket_id=ticket.id,
            reason=evaluation.explanation,
        )
    else:
        audit.record(
            session,
            ROUTING_ACTOR,
            entity_type="ticket",
            entity_id=ticket.id,
            action="routed",
            new={"rule": None, "group_id": ticket.group_id},
            ticket_id=ticket.id,
            reason=evaluation.explanation,
        )
    bus.publish(session, TicketRouted(ticket.id, rule.rule_id if rule is not None else None, ticket.group_id))
    if settings.auto_assign and ticket.group_id is not None and ticket.assignee_id is None:
        skills = frozenset(rule.actions.get("required_skills") or []) if rule is not None else frozenset()
        assign_in_group(session, ticket, extra_skills=skills)
    return evaluation


def route_new_ticket(session: Session, event: TicketCreated) -> None:
    """``triage.route``: the reaction to TicketCreated, after ``triage.classify``."""
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is None:
        return
    route_ticket(session, ticket, new_ticket=True)
