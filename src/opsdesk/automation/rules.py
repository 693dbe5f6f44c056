"""Triggers (on ticket events) and time-based automations: saving, and running them.

Loop protection: a trigger fires at most once per ticket within one event chain (the event and
every event its actions cause, in the same transaction); a chain deeper than
:data:`MAX_CHAIN_DEPTH` is a cycle between rules and stops with an audit row naming it.
Time-based automations run every five minutes over unsolved tickets and fire once per ticket
state (``status_changed_at``), so "pending 3 days → remind" reminds once per pending stretch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opsdesk import clock, config_cache
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.automation.actions import apply_actions, validate_actions
from opsdesk.automation.conditions import evaluate, validate_conditions
from opsdesk.automation.errors import InvalidRuleError, RuleNotFoundError
from opsdesk.automation.facts import ticket_facts
from opsdesk.automation.models import AutomationRule, RuleFiring
from opsdesk.errors import FieldProblem
from opsdesk.sla.events import SlaBreached
from opsdesk.tickets.enums import UNSOLVED_STATUSES, AuthorKind
from opsdesk.tickets.events import MessageAdded, TicketCreated, TicketUpdated
from opsdesk.tickets.models import Ticket

TRIGGER_EVENTS = ("created", "updated", "customer_replied", "staff_replied", "sla_breached")
MAX_CHAIN_DEPTH = 8
CHAIN_KEY = "automation_chain"


def list_rules(session: Session, actor: Actor, kind: str | None = None) -> list[AutomationRule]:
    require(actor, Permission.TICKET_READ)
    query = select(AutomationRule).order_by(AutomationRule.kind, AutomationRule.position, AutomationRule.id)
    if kind is not None:
        query = query.where(AutomationRule.kind == kind)
    return list(session.scalars(query))


def save_rule(
    session: Session,
    actor: Actor,
    *,
    name: str,
    kind: str,
    conditions: Mapping[str, Any],
    actions: Sequence[Any],
    events: Sequence[str] = (),
    position: int = 0,
    is_active: bool = True,
    rule_id: int | None = None,
) -> AutomationRule:
    """Create or change a trigger or automation; validated completely before anything is saved."""
    require(actor, Permission.RULE_MANAGE)
    problems: list[FieldProblem] = []
    clean_name = name.strip()
    if not clean_name or len(clean_name) > 120:
        problems.append(FieldProblem(("name",), "must be 1 to 120 characters"))
    clash = session.scalars(select(AutomationRule).where(AutomationRule.name == clean_name)).first()
    if clash is not None and clash.id != rule_id:
        problems.append(FieldProblem(("name",), "another rule has this name"))
    if kind not in ("trigger", "automation"):
        problems.append(FieldProblem(("kind",), "trigger or automation"))
    if kind == "trigger":
        bad = [event for event in events if event not in TRIGGER_EVENTS]
        if not events or bad:
            problems.append(FieldProblem(("events",), f"one or more of {', '.join(TRIGGER_EVENTS)}"))
    elif events:
        problems.append(FieldProblem(("events",), "automations run on a schedule, not on events"))
    if not isinstance(conditions, Mapping):
        problems.append(FieldProblem(("conditions",), 'conditions are {"all": [...], "any": [...]}'))
    else:
        problems.extend(validate_conditions(conditions))
        if kind == "automation" and not (conditions.get("all") or conditions.get("any")):
            problems.append(FieldProblem(("conditions",), "an automation needs at least one condition"))
    problems.extend(validate_actions(session, list(actions)))
    if problems:
        raise InvalidRuleError("the rule is not valid", fields=problems)
    if rule_id is None:
        rule = AutomationRule(fire_count=0)
        session.add(rule)
        action_name = "created"
    else:
        found = session.get(AutomationRule, rule_id)
        if found is None:
            raise RuleNotFoundError(f"rule {rule_id} does not exist")
        rule = found
        action_name = "updated"
    rule.name = clean_name
    rule.kind = kind
    rule.events = list(events)
    rule.conditions = dict(conditions)
    rule.actions = list(actions)
    rule.position = position
    rule.is_active = is_active
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="automation_rule",
        entity_id=rule.id,
        action=action_name,
        new={"name": clean_name, "kind": kind, "events": list(events)},
    )
    return rule


@dataclass(frozen=True, slots=True)
class TriggerView:
    """An active trigger as the per-event path reads it (cached per process)."""

    id: int
    name: str
    events: frozenset[str]
    conditions: Mapping[str, Any]
    actions: Sequence[Mapping[str, Any]]


def _load_triggers(session: Session) -> tuple[TriggerView, ...]:
    return tuple(
        TriggerView(
            rule.id, rule.name, frozenset(rule.events or ()), rule.conditions or {}, tuple(rule.actions or ())
        )
        for rule in session.scalars(
            select(AutomationRule)
            .where(AutomationRule.kind == "trigger", AutomationRule.is_active.is_(True))
            .order_by(AutomationRule.position, AutomationRule.id)
        )
    )


def active_triggers(session: Session) -> tuple[TriggerView, ...]:
    """The active triggers in order: no query while the configuration is unchanged."""
    return config_cache.cached(session, "automation.triggers", _load_triggers)


def _count_firing(session: Session, rule: AutomationRule | TriggerView) -> None:
    session.execute(
        update(AutomationRule)
        .where(AutomationRule.id == rule.id)
        .values(fire_count=AutomationRule.fire_count + 1, last_fired_at=clock.now())
        .execution_options(synchronize_session=False)
    )


# ------------------------------------------------------------------ triggers


def run_triggers(session: Session, ticket_id: int, event: str, *, sla_metric: str | None = None) -> list[str]:
    """Fire the matching active triggers of ``event`` on the ticket; returns their names."""
    chain: dict[str, Any] | None = session.info.get(CHAIN_KEY)
    outermost = chain is None
    if chain is None:
        chain = {"depth": 0, "fired": set()}
        session.info[CHAIN_KEY] = chain
    fired_names: list[str] = []
    try:
        if chain["depth"] >= MAX_CHAIN_DEPTH:
            audit.record(
                session,
                Actor.system("triggers", via="rule"),
                entity_type="ticket",
                entity_id=ticket_id,
                action="rule_cycle_stopped",
                new={"event": event, "depth": chain["depth"]},
                ticket_id=ticket_id,
            )
            return []
        chain["depth"] += 1
        for rule in active_triggers(session):
            if event not in rule.events or (ticket_id, rule.id) in chain["fired"]:
                continue
            ticket = session.get(Ticket, ticket_id)
            if ticket is None:
                return fired_names
            facts = ticket_facts(ticket, clock.now(), event=event, sla_metric=sla_metric)
            if not evaluate(rule.conditions, facts):
                continue
            chain["fired"].add((ticket_id, rule.id))
            firing_key = f"trigger:{rule.id}:{ticket_id}:{event}:{clock.now().isoformat()}"
            apply_actions(
                session, ticket, rule.actions, Actor.rule(rule.name, rule.id), firing_key=firing_key
            )
            _count_firing(session, rule)
            fired_names.append(rule.name)
        return fired_names
    finally:
        chain["depth"] -= 1
        if outermost:
            session.info.pop(CHAIN_KEY, None)


def on_ticket_created(session: Session, event: TicketCreated) -> None:
    run_triggers(session, event.ticket_id, "created")


def on_ticket_updated(session: Session, event: TicketUpdated) -> None:
    run_triggers(session, event.ticket_id, "updated")


def on_tickets_updated(session: Session, events: Sequence[TicketUpdated]) -> None:
    """``on_ticket_updated`` for a bulk change: the active triggers are looked up once, and when
    none listens to updates nothing more is read."""
    listening = any("updated" in rule.events for rule in active_triggers(session))
    if not listening:
        return
    for event in events:
        run_triggers(session, event.ticket_id, "updated")


def on_message_added(session: Session, event: MessageAdded) -> None:
    if not event.is_public:
        return
    if event.author_kind == AuthorKind.CUSTOMER.value:
        run_triggers(session, event.ticket_id, "customer_replied")
    elif event.author_kind == AuthorKind.STAFF.value:
        run_triggers(session, event.ticket_id, "staff_replied")


def on_sla_breached(session: Session, event: SlaBreached) -> None:
    run_triggers(session, event.ticket_id, "sla_breached", sla_metric=event.metric)


# ------------------------------------------------------------------ time-based automations


def run_automations(session: Session, *, batch: int = 1000) -> int:
    """Fire every active automation on the unsolved tickets it matches, once per ticket state."""
    rules = list(
        session.scalars(
            select(AutomationRule)
            .where(AutomationRule.kind == "automation", AutomationRule.is_active.is_(True))
            .order_by(AutomationRule.position, AutomationRule.id)
        )
    )
    if not rules:
        return 0
    fired = 0
    now = clock.now()
    last_id = 0
    while True:
        tickets = list(
            session.scalars(
                select(Ticket)
                .where(Ticket.id > last_id, Ticket.status.in_(UNSOLVED_STATUSES))
                .order_by(Ticket.id)
                .limit(batch)
            )
        )
        if not tickets:
            return fired
        last_id = tickets[-1].id
        for ticket in tickets:
            for rule in rules:
                if ticket.status not in UNSOLVED_STATUSES:
                    break
                if not evaluate(rule.conditions or {}, ticket_facts(ticket, now)):
                    continue
                marker = ticket.status_changed_at.isoformat()
                seen = session.scalar(
                    select(RuleFiring.id).where(
                        RuleFiring.rule_id == rule.id,
                        RuleFiring.ticket_id == ticket.id,
                        RuleFiring.marker == marker,
                    )
                )
                if seen is not None:
                    continue
                session.add(RuleFiring(rule_id=rule.id, ticket_id=ticket.id, marker=marker, fired_at=now))
                session.flush()
                apply_actions(
                    session,
                    ticket,
                    rule.actions,
                    Actor.rule(rule.name, rule.id, via="automation"),
                    firing_key=f"automation:{rule.id}:{ticket.id}:{marker}",
                )
                _count_firing(session, rule)
                fired += 1
