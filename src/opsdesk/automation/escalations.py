"""The escalation matrix: by priority and account tier, who hears of a breach, and when.

Each row fires once per breached target (``escalation_firings`` is unique per target and row):
rows with ``minutes_after_breach = 0`` fire on the :class:`SlaBreached` event itself, later stages
from the scheduled sweep. Urgent breaches on hot accounts with ``page_on_call`` page the on-call
person with a PagerDuty Events API v2 ``trigger`` event, through the outbox; its ``dedup_key``
is per ticket and metric so repeated stages update one incident instead of opening several.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from opsdesk import clock, outbox
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.automation.actions import queue_email, staff_addresses
from opsdesk.automation.errors import EscalationNotFoundError, InvalidEscalationError
from opsdesk.automation.models import EscalationFiring, EscalationRule
from opsdesk.errors import FieldProblem
from opsdesk.sla.events import SlaBreached
from opsdesk.sla.models import SlaTarget
from opsdesk.tickets.enums import UNSOLVED_STATUSES, AccountTier, Priority
from opsdesk.tickets.models import Ticket

PAGE_JOB = "http.post"


def save_escalation(
    session: Session,
    actor: Actor,
    *,
    priority: str,
    tier: str | None,
    minutes_after_breach: int = 0,
    notify: Sequence[str] = (),
    slack_webhook_url: str | None = None,
    page_on_call: bool = False,
    paging_url: str | None = None,
    paging_routing_key: str | None = None,
    is_active: bool = True,
    rule_id: int | None = None,
) -> EscalationRule:
    """Create a matrix row, or replace row ``rule_id`` (a blank routing key keeps the stored one).
    Validated whole before anything is saved."""
    require(actor, Permission.RULE_MANAGE)
    existing: EscalationRule | None = None
    if rule_id is not None:
        existing = session.get(EscalationRule, rule_id)
        if existing is None:
            raise EscalationNotFoundError(f"escalation {rule_id} not found")
        if not paging_routing_key:
            paging_routing_key = existing.paging_routing_key
    notify = [target.strip() for target in notify if target.strip()]
    slack_webhook_url = (slack_webhook_url or "").strip() or None
    paging_url = (paging_url or "").strip() or None
    paging_routing_key = (paging_routing_key or "").strip() or None
    problems: list[FieldProblem] = []
    if priority not in {member.value for member in Priority}:
        problems.append(FieldProblem(("priority",), "low, normal, high or urgent"))
    if tier is not None and tier not in {member.value for member in AccountTier}:
        problems.append(
            FieldProblem(("tier",), f"one of {[member.value for member in AccountTier]} or empty")
        )
    if not 0 <= minutes_after_breach <= 7 * 24 * 60:
        problems.append(FieldProblem(("minutes_after_breach",), "0 to 10080 minutes"))
    for index, target in enumerate(notify):
        if target not in ("assignee", "group") and "@" not in target:
            problems.append(FieldProblem(("notify", index), "assignee, group or an email address"))
    if slack_webhook_url and not slack_webhook_url.startswith(("http://", "https://")):
        problems.append(FieldProblem(("slack_webhook_url",), "an http(s) URL"))
    if page_on_call and not (
        paging_url and paging_url.startswith(("http://", "https://")) and paging_routing_key
    ):
        problems.append(FieldProblem(("paging_url",), "paging needs the Events API URL and a routing key"))
    if paging_routing_key is not None and len(paging_routing_key) > 64:
        problems.append(FieldProblem(("paging_routing_key",), "at most 64 characters"))
    if not notify and not slack_webhook_url and not page_on_call:
        problems.append(FieldProblem(("notify",), "say who is notified"))
    if problems:
        raise InvalidEscalationError("the escalation is not valid", fields=problems)
    rule = existing if existing is not None else EscalationRule()
    rule.priority = priority
    rule.tier = tier
    rule.minutes_after_breach = minutes_after_breach
    rule.notify = list(notify)
    rule.slack_webhook_url = slack_webhook_url
    rule.page_on_call = page_on_call
    rule.paging_url = paging_url
    rule.paging_routing_key = paging_routing_key
    rule.is_active = is_active
    if existing is None:
        session.add(rule)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="escalation_rule",
        entity_id=rule.id,
        action="created" if existing is None else "updated",
        new={
            "priority": priority,
            "tier": tier,
            "minutes_after_breach": minutes_after_breach,
            "notify": list(notify),
            "page_on_call": page_on_call,
            "active": is_active,
        },
    )
    return rule


def delete_escalation(session: Session, actor: Actor, rule_id: int) -> None:
    """Remove a matrix row (its record of past firings goes with it)."""
    require(actor, Permission.RULE_MANAGE)
    rule = session.get(EscalationRule, rule_id)
    if rule is None:
        raise EscalationNotFoundError(f"escalation {rule_id} not found")
    old = {"priority": rule.priority, "tier": rule.tier, "minutes_after_breach": rule.minutes_after_breach}
    session.delete(rule)
    session.flush()
    audit.record(session, actor, entity_type="escalation_rule", entity_id=rule_id, action="deleted", old=old)


def list_escalations(session: Session, actor: Actor) -> list[EscalationRule]:
    require(actor, Permission.TICKET_READ)
    return list(
        session.scalars(
            select(EscalationRule).order_by(
                EscalationRule.priority, EscalationRule.tier, EscalationRule.minutes_after_breach
            )
        )
    )


def _matching_rules(session: Session, ticket: Ticket, *, stage_zero: bool) -> list[EscalationRule]:
    tier = ticket.account.tier if ticket.account is not None else None
    query = select(EscalationRule).where(
        EscalationRule.is_active.is_(True),
        EscalationRule.priority == ticket.priority,
        or_(EscalationRule.tier.is_(None), EscalationRule.tier == tier),
    )
    if stage_zero:
        query = query.where(EscalationRule.minutes_after_breach == 0)
    return list(session.scalars(query.order_by(EscalationRule.id)))


def pagerduty_event(routing_key: str, ticket: Ticket, target: SlaTarget, base_url: str) -> dict[str, object]:
    """A PagerDuty Events API v2 ``trigger`` event for a breached target."""
    account = ticket.account
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": f"opsdesk-ticket-{ticket.id}-{target.metric}",
        "payload": {
            "summary": f"SLA {target.metric.replace('_', ' ')} breached on urgent ticket #{ticket.id}: "
            f"{ticket.subject}"[:1024],
            "source": "opsdesk",
            "severity": "critical",
            "timestamp": (target.breached_at or clock.now()).isoformat(),
            "component": "support",
            "group": account.name if account is not None else "no account",
            "class": "sla_breach",
            "custom_details": {
                "ticket_id": ticket.id,
                "policy": target.policy_name,
                "metric": target.metric,
                "account": account.name if account is not None else None,
                "tier": account.tier if account is not None else None,
            },
        },
        "links": [{"href": f"{base_url.rstrip('/')}/tickets/{ticket.id}", "text": f"Ticket #{ticket.id}"}],
    }


def fire(session: Session, rule: EscalationRule, ticket: Ticket, target: SlaTarget, *, base_url: str) -> bool:
    """Fire one matrix row for one breached target, once; True when it fired now."""
    exists = session.scalar(
        select(EscalationFiring.id).where(
            EscalationFiring.target_id == target.id, EscalationFiring.escalation_rule_id == rule.id
        )
    )
    if exists is not None:
        return False
    session.add(
        EscalationFiring(
            target_id=target.id, escalation_rule_id=rule.id, ticket_id=ticket.id, fired_at=clock.now()
        )
    )
    session.flush()
    stage = "at breach" if rule.minutes_after_breach == 0 else f"{rule.minutes_after_breach} min after breach"
    name = f"Escalation {rule.priority}/{rule.tier or 'any tier'} {stage}"
    actor = Actor.rule(name, rule.id, via="escalation")
    subject = f"[SLA breach] #{ticket.id} {ticket.subject}"
    text = (
        f"The {target.metric.replace('_', ' ')} target ({target.policy_name}) of ticket #{ticket.id} "
        f"breached at {target.breached_at}.\n{base_url.rstrip('/')}/tickets/{ticket.id}\n"
    )
    key = f"escalation:{rule.id}:{target.id}"
    for index, who in enumerate(rule.notify):
        for number, address in enumerate(staff_addresses(session, ticket, who)):
            queue_email(session, address, subject, text, f"{key}:email:{index}:{number}")
    if rule.slack_webhook_url:
        outbox.enqueue(
            session,
            "http.post",
            {"url": rule.slack_webhook_url, "json": {"text": f"{subject}\n{text}"}},
            idempotency_key=f"{key}:slack",
        )
    paged = False
    account = ticket.account
    if (
        rule.page_on_call
        and ticket.priority == Priority.URGENT.value
        and account is not None
        and account.is_hot
        and rule.paging_url
        and rule.paging_routing_key
    ):
        body = pagerduty_event(rule.paging_routing_key, ticket, target, base_url)
        outbox.enqueue(
            session, PAGE_JOB, {"url": rule.paging_url, "json": body}, idempotency_key=f"{key}:page"
        )
        paged = True
    audit.record(
        session,
        actor,
        entity_type="ticket",
        entity_id=ticket.id,
        action="escalated",
        new={"rule": name, "metric": target.metric, "notified": list(rule.notify), "paged": paged},
        ticket_id=ticket.id,
    )
    return True


def on_sla_breached(session: Session, event: SlaBreached) -> None:
    ticket = session.get(Ticket, event.ticket_id)
    target = session.get(SlaTarget, event.target_id)
    if ticket is None or target is None:
        return
    for rule in _matching_rules(session, ticket, stage_zero=True):
        fire(session, rule, ticket, target, base_url=_base_url())


def sweep_escalations(session: Session) -> int:
    """Later stages: rows whose delay after the breach has passed, for unsolved tickets."""
    now = clock.now()
    fired = 0
    rules = list(
        session.scalars(
            select(EscalationRule).where(
                EscalationRule.is_active.is_(True), EscalationRule.minutes_after_breach > 0
            )
        )
    )
    for rule in rules:
        cutoff = now - timedelta(minutes=rule.minutes_after_breach)
        rows = session.execute(
            select(SlaTarget, Ticket)
            .join(Ticket, Ticket.id == SlaTarget.ticket_id)
            .where(
                SlaTarget.status == "breached",
                SlaTarget.breached_at <= cutoff,
                SlaTarget.breached_at > cutoff - timedelta(days=2),
                Ticket.priority == rule.priority,
                Ticket.status.in_(UNSOLVED_STATUSES),
                ~select(EscalationFiring.id)
                .where(
                    EscalationFiring.target_id == SlaTarget.id, EscalationFiring.escalation_rule_id == rule.id
                )
                .exists(),
            )
            .limit(1000)
        ).all()
        for target, ticket in rows:
            tier = ticket.account.tier if ticket.account is not None else None
            if rule.tier is not None and rule.tier != tier:
                continue
            fired += fire(session, rule, ticket, target, base_url=_base_url())
    return fired


def _base_url() -> str:
    from opsdesk.config import Settings

    return Settings().base_url
