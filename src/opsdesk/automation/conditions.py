"""Rule conditions as a pure function of a ticket's facts.

``{"all": [c, ...], "any": [c, ...]}``: every ``all`` condition and at least one ``any``
condition (when there are any) must hold. A condition is ``{"field", "operator", "value"}``:

- fields: status, priority, type, category, channel, tier, group_id, assignee_id, subject,
  account_hot, tags, event (created / updated / customer_replied / staff_replied / sla_breached),
  sla_metric, ``custom_fields.<key>``, and time since: hours_since_created, hours_since_updated,
  hours_since_status_change, hours_since_customer_message, hours_since_staff_reply;
- operators: is, is_not, in, not_in, contains, not_contains (tags, subject), greater_than,
  less_than, is_set, is_not_set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opsdesk.errors import FieldProblem

FIELDS = frozenset(
    {
        "status",
        "priority",
        "type",
        "category",
        "channel",
        "tier",
        "group_id",
        "assignee_id",
        "subject",
        "account_hot",
        "tags",
        "event",
        "sla_metric",
        "hours_since_created",
        "hours_since_updated",
        "hours_since_status_change",
        "hours_since_customer_message",
        "hours_since_staff_reply",
    }
)
OPERATORS = frozenset(
    {
        "is",
        "is_not",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "greater_than",
        "less_than",
        "is_set",
        "is_not_set",
    }
)
NUMERIC_OPERATORS = frozenset({"greater_than", "less_than"})
LIST_OPERATORS = frozenset({"in", "not_in"})


def _holds(condition: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    field = str(condition["field"])
    operator = str(condition["operator"])
    expected = condition.get("value")
    if field.startswith("custom_fields."):
        actual = (facts.get("custom_fields") or {}).get(field.split(".", 1)[1])
    else:
        actual = facts.get(field)
    if operator == "is_set":
        return actual not in (None, "", [])
    if operator == "is_not_set":
        return actual in (None, "", [])
    if operator == "is":
        return bool(actual == expected)
    if operator == "is_not":
        return bool(actual != expected)
    if operator == "in":
        return actual in (expected or [])
    if operator == "not_in":
        return actual not in (expected or [])
    if operator in ("contains", "not_contains"):
        if isinstance(actual, list):
            found = expected in actual
        else:
            found = str(expected).lower() in str(actual or "").lower()
        return found if operator == "contains" else not found
    if actual is None:
        return False
    if operator == "greater_than":
        return float(actual) > float(expected)  # type: ignore[arg-type]
    return float(actual) < float(expected)  # type: ignore[arg-type]


def evaluate(conditions: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    every: Sequence[Mapping[str, Any]] = conditions.get("all") or []
    some: Sequence[Mapping[str, Any]] = conditions.get("any") or []
    return all(_holds(condition, facts) for condition in every) and (
        not some or any(_holds(condition, facts) for condition in some)
    )


def validate_conditions(conditions: Mapping[str, Any]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    unknown = set(conditions) - {"all", "any"}
    for key in sorted(unknown):
        problems.append(FieldProblem(("conditions", key), 'conditions are {"all": [...], "any": [...]}'))
    for group in ("all", "any"):
        entries = conditions.get(group) or []
        if not isinstance(entries, list):
            problems.append(FieldProblem(("conditions", group), "must be a list of conditions"))
            continue
        for index, condition in enumerate(entries):
            where = ("conditions", group, index)
            if not isinstance(condition, Mapping):
                problems.append(FieldProblem(where, 'a condition is {"field", "operator", "value"}'))
                continue
            field = str(condition.get("field", ""))
            operator = str(condition.get("operator", ""))
            value = condition.get("value")
            if field not in FIELDS and not (field.startswith("custom_fields.") and len(field) > 14):
                problems.append(FieldProblem((*where, "field"), f"unknown field {field!r}"))
            if operator not in OPERATORS:
                problems.append(
                    FieldProblem(
                        (*where, "operator"), f"unknown operator {operator!r}; use {sorted(OPERATORS)}"
                    )
                )
            elif operator in NUMERIC_OPERATORS and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                problems.append(FieldProblem((*where, "value"), "must be a number"))
            elif operator in LIST_OPERATORS and not isinstance(value, list):
                problems.append(FieldProblem((*where, "value"), "must be a list"))
    return problems
