"""SLA policies: ordered, chosen for a ticket by conditions, validated before they are saved."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import config_cache
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.sla.enums import CONDITION_FIELDS, Metric
from opsdesk.sla.errors import InvalidPolicyError, PolicyNotFoundError
from opsdesk.sla.models import BusinessCalendarRow, SlaPolicy
from opsdesk.tickets.enums import AccountTier, Channel, Priority
from opsdesk.tickets.models import Ticket

MAX_TARGET_MINUTES = 366 * 24 * 60


def ticket_facts(ticket: Ticket) -> dict[str, Any]:
    """The values policy conditions look at."""
    return {
        "priority": ticket.priority,
        "tier": ticket.account.tier if ticket.account is not None else None,
        "channel": ticket.channel,
        "group_id": ticket.group_id,
        "category": ticket.category,
    }


def matches(conditions: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    return all(facts.get(field) in allowed for field, allowed in conditions.items() if allowed)


def active_policies(session: Session) -> list[SlaPolicy]:
    return list(
        session.scalars(
            select(SlaPolicy).where(SlaPolicy.is_active.is_(True)).order_by(SlaPolicy.position, SlaPolicy.id)
        )
    )


@dataclass(frozen=True, slots=True)
class PolicyView:
    """What the clocks read of a policy; cached per process while the configuration is unchanged."""

    id: int
    name: str
    conditions: Mapping[str, Any]
    targets: Mapping[str, Any]
    calendar_id: int | None
    pause_on_hold: bool


def _load_policy_views(session: Session) -> tuple[PolicyView, ...]:
    return tuple(
        PolicyView(
            policy.id,
            policy.name,
            dict(policy.conditions or {}),
            dict(policy.targets or {}),
            policy.calendar_id,
            policy.pause_on_hold,
        )
        for policy in active_policies(session)
    )


def select_policy(session: Session, ticket: Ticket) -> PolicyView | None:
    """The first active policy, in order, whose conditions the ticket meets."""
    facts = ticket_facts(ticket)
    for policy in config_cache.cached(session, "sla.active_policies", _load_policy_views):
        if matches(policy.conditions, facts):
            return policy
    return None


def list_policies(session: Session, actor: Actor) -> list[SlaPolicy]:
    require(actor, Permission.TICKET_READ)
    return list(session.scalars(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)))


def validate_policy(
    session: Session, conditions: Mapping[str, Any], targets: Mapping[str, Any], calendar_id: int | None
) -> tuple[dict[str, list[Any]], dict[str, dict[str, Any]]]:
    """Clean conditions and targets, or every problem at once."""
    problems: list[FieldProblem] = []
    allowed_values: dict[str, set[Any] | None] = {
        "priority": {member.value for member in Priority},
        "tier": {member.value for member in AccountTier},
        "channel": {member.value for member in Channel},
        "group_id": None,
        "category": None,
    }
    clean_conditions: dict[str, list[Any]] = {}
    for field, values in conditions.items():
        if field not in CONDITION_FIELDS:
            problems.append(FieldProblem(("conditions", field), f"use one of {', '.join(CONDITION_FIELDS)}"))
            continue
        listed = values if isinstance(values, list) else [values]
        allowed = allowed_values[field]
        bad = [value for value in listed if allowed is not None and value not in allowed]
        if bad:
            problems.append(
                FieldProblem(("conditions", field), f"unknown {field} {bad!r}; use {sorted(allowed or [])}")
            )
        if field == "group_id" and not all(isinstance(value, int) for value in listed):
            problems.append(FieldProblem(("conditions", field), "group ids are numbers"))
        if listed:
            clean_conditions[field] = list(listed)
    clean_targets: dict[str, dict[str, Any]] = {}
    metrics = {member.value for member in Metric}
    for metric, spec in targets.items():
        if metric not in metrics:
            problems.append(FieldProblem(("targets", metric), f"use one of {', '.join(sorted(metrics))}"))
            continue
        if not isinstance(spec, Mapping):
            problems.append(FieldProblem(("targets", metric), 'give {"minutes": N, "business_hours": bool}'))
            continue
        minutes = spec.get("minutes")
        if (
            not isinstance(minutes, int)
            or isinstance(minutes, bool)
            or not 1 <= minutes <= MAX_TARGET_MINUTES
        ):
            problems.append(
                FieldProblem(("targets", metric, "minutes"), f"a whole number from 1 to {MAX_TARGET_MINUTES}")
            )
            continue
        clean_targets[metric] = {
            "minutes": minutes,
            "business_hours": bool(spec.get("business_hours", False)),
        }
    if not clean_targets and not problems:
        problems.append(FieldProblem(("targets",), "a policy needs at least one target"))
    if calendar_id is not None and session.get(BusinessCalendarRow, calendar_id) is None:
        problems.append(FieldProblem(("calendar_id",), f"business calendar {calendar_id} does not exist"))
    if problems:
        raise InvalidPolicyError("the SLA policy is not valid", fields=problems)
    return clean_conditions, clean_targets


def save_policy(
    session: Session,
    actor: Actor,
    *,
    name: str,
    conditions: Mapping[str, Any],
    targets: Mapping[str, Any],
    calendar_id: int | None = None,
    position: int | None = None,
    pause_on_hold: bool = False,
    is_active: bool = True,
    description: str = "",
    policy_id: int | None = None,
) -> SlaPolicy:
    """Create or change a policy. Changes apply to targets that start afterwards."""
    require(actor, Permission.RULE_MANAGE)
    clean_name = name.strip()
    name_problems = []
    if not clean_name or len(clean_name) > 120:
        name_problems.append(FieldProblem(("name",), "must be 1 to 120 characters"))
    clash = session.scalars(select(SlaPolicy).where(SlaPolicy.name == clean_name)).first()
    if clash is not None and clash.id != policy_id:
        name_problems.append(FieldProblem(("name",), "another policy has this name"))
    if name_problems:
        raise InvalidPolicyError("the SLA policy is not valid", fields=name_problems)
    clean_conditions, clean_targets = validate_policy(session, conditions, targets, calendar_id)
    if policy_id is None:
        if position is None:
            last = session.scalar(select(SlaPolicy.position).order_by(SlaPolicy.position.desc()).limit(1))
            position = (last or 0) + 10
        policy = SlaPolicy()
        session.add(policy)
        action = "created"
    else:
        found = session.get(SlaPolicy, policy_id)
        if found is None:
            raise PolicyNotFoundError(f"SLA policy {policy_id} does not exist")
        policy = found
        action = "updated"
    policy.name = clean_name
    policy.description = description.strip()[:500]
    policy.conditions = clean_conditions
    policy.targets = clean_targets
    policy.calendar_id = calendar_id
    policy.pause_on_hold = pause_on_hold
    policy.is_active = is_active
    if position is not None:
        policy.position = position
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="sla_policy",
        entity_id=policy.id,
        action=action,
        new={"name": clean_name, "conditions": clean_conditions, "targets": clean_targets},
    )
    return policy
