"""Routing rules: ordered conditions on a ticket's facts -> group, priority, tags. First match wins.

A rule is ``{"name", "match": "all"|"any", "conditions": [{"field", "op", "value"}], "actions":
{"group_id", "priority", "add_tags", "required_skills"}}``. Facts are a flat mapping built from
the ticket (its fields, the predicted category, the account's tier and hot flag, the requester).

Invariants:
- a rule set is validated as a whole before it is saved (:func:`validate_rule_set`): unknown
  fields, operators that do not fit the field's type, values of the wrong type, bad regular
  expressions, rules that can never match and rules that an earlier rule always shadows are all
  refused with the rule's position and a readable reason;
- evaluation (:func:`first_match`) has no side effects and explains every rule it looked at.
Pure: no I/O, no SQLAlchemy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from opsdesk.errors import FieldProblem

PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("email", "web", "chat", "slack", "api", "phone", "community")
TIERS = ("enterprise", "business", "self_serve", "consumer")
SENTIMENTS = ("negative", "neutral", "positive")
TYPES = ("question", "incident", "problem", "task")

# field -> (type, allowed values or None)
FIELDS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "subject": ("text", None),
    "body": ("text", None),
    "category": ("category", None),
    "predicted_category": ("category", None),
    "confidence": ("number", None),
    "priority": ("choice", PRIORITIES),
    "type": ("choice", TYPES),
    "channel": ("choice", CHANNELS),
    "language": ("string", None),
    "sentiment": ("choice", SENTIMENTS),
    "account_tier": ("choice", TIERS),
    "account_is_hot": ("boolean", None),
    "account_name": ("string", None),
    "account_mrr_amount_minor": ("number", None),
    "requester_email": ("string", None),
    "requester_domain": ("string", None),
    "tags": ("list", None),
    "group_id": ("number", None),
}
CUSTOM_FIELD_PREFIX = "custom_fields."

OPERATORS: dict[str, frozenset[str]] = {
    "text": frozenset({"contains", "not_contains", "matches", "is_set", "is_not_set"}),
    "string": frozenset(
        {
            "equals",
            "not_equals",
            "in",
            "not_in",
            "contains",
            "starts_with",
            "ends_with",
            "matches",
            "is_set",
            "is_not_set",
        }
    ),
    "category": frozenset({"equals", "not_equals", "in", "not_in", "under", "is_set", "is_not_set"}),
    "choice": frozenset({"equals", "not_equals", "in", "not_in", "is_set", "is_not_set"}),
    "number": frozenset(
        {"equals", "not_equals", "greater_than", "less_than", "at_least", "at_most", "is_set", "is_not_set"}
    ),
    "boolean": frozenset({"equals"}),
    "list": frozenset({"includes", "excludes", "is_set", "is_not_set"}),
    "any": frozenset(
        {
            "equals",
            "not_equals",
            "in",
            "not_in",
            "contains",
            "greater_than",
            "less_than",
            "is_set",
            "is_not_set",
        }
    ),
}
ACTION_KEYS = frozenset({"group_id", "priority", "add_tags", "required_skills"})
_VALUELESS = frozenset({"is_set", "is_not_set"})


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    conditions: tuple[Condition, ...]
    actions: Mapping[str, Any]
    match: str = "all"
    rule_id: int | None = None


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """Why one rule did or did not fire."""

    rule_id: int | None
    name: str
    matched: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    rule: Rule | None
    trace: tuple[RuleTrace, ...] = field(default_factory=tuple)

    @property
    def explanation(self) -> str:
        if self.rule is None:
            return "no routing rule matched"
        fired = self.trace[-1]
        return f"rule {self.rule.name!r} matched: " + "; ".join(fired.reasons)


def field_type(name: str) -> str | None:
    if name.startswith(CUSTOM_FIELD_PREFIX) and len(name) > len(CUSTOM_FIELD_PREFIX):
        return "any"
    spec = FIELDS.get(name)
    return spec[0] if spec else None


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


def _describe(condition: Condition) -> str:
    if condition.op in _VALUELESS:
        return f"{condition.field} {condition.op.replace('_', ' ')}"
    value = list(condition.value) if isinstance(condition.value, tuple) else condition.value
    return f"{condition.field} {condition.op.replace('_', ' ')} {value!r}"


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def condition_holds(condition: Condition, facts: Mapping[str, Any]) -> bool:
    actual = facts.get(condition.field)
    op, expected = condition.op, condition.value
    if op == "is_set":
        return actual not in (None, "", [])
    if op == "is_not_set":
        return actual in (None, "", [])
    if op == "includes":
        return _lower(expected) in [_lower(item) for item in (actual or [])]
    if op == "excludes":
        return _lower(expected) not in [_lower(item) for item in (actual or [])]
    if actual is None:
        return op in ("not_equals", "not_in", "not_contains")
    if op == "equals":
        return bool(_lower(actual) == _lower(expected))
    if op == "not_equals":
        return bool(_lower(actual) != _lower(expected))
    if op == "in":
        return _lower(actual) in [_lower(item) for item in expected]
    if op == "not_in":
        return _lower(actual) not in [_lower(item) for item in expected]
    if op == "under":
        text = str(actual)
        return any(text == prefix or text.startswith(prefix + "/") for prefix in expected)
    if op == "contains":
        return str(expected).lower() in str(actual).lower()
    if op == "not_contains":
        return str(expected).lower() not in str(actual).lower()
    if op == "starts_with":
        return str(actual).lower().startswith(str(expected).lower())
    if op == "ends_with":
        return str(actual).lower().endswith(str(expected).lower())
    if op == "matches":
        return _regex(str(expected)).search(str(actual)) is not None
    if not isinstance(actual, int | float) or isinstance(actual, bool):
        return False
    if op == "greater_than":
        return bool(actual > expected)
    if op == "less_than":
        return bool(actual < expected)
    if op == "at_least":
        return bool(actual >= expected)
    if op == "at_most":
        return bool(actual <= expected)
    return False


def evaluate_rule(rule: Rule, facts: Mapping[str, Any]) -> RuleTrace:
    reasons: list[str] = []
    results: list[bool] = []
    for condition in rule.conditions:
        holds = condition_holds(condition, facts)
        results.append(holds)
        actual = facts.get(condition.field)
        verdict = "yes" if holds else "no"
        reasons.append(f"{_describe(condition)} ({verdict}: {condition.field} is {actual!r})")
    if not rule.conditions:
        matched = True
        reasons.append("no conditions: matches every ticket")
    elif rule.match == "any":
        matched = any(results)
    else:
        matched = all(results)
    return RuleTrace(rule.rule_id, rule.name, matched, tuple(reasons))


def first_match(rules: Sequence[Rule], facts: Mapping[str, Any]) -> Evaluation:
    """The first rule whose conditions hold, with the trace of every rule looked at."""
    trace: list[RuleTrace] = []
    for rule in rules:
        result = evaluate_rule(rule, facts)
        trace.append(result)
        if result.matched:
            return Evaluation(rule, tuple(trace))
    return Evaluation(None, tuple(trace))


# ---------------------------------------------------------------- validation


def _check_value(
    condition: Condition, kind: str, choices: tuple[str, ...] | None, where: tuple[str | int, ...]
) -> list[FieldProblem]:
    op, value = condition.op, condition.value
    problems: list[FieldProblem] = []
    if op in _VALUELESS:
        return problems
    if op in ("in", "not_in", "under"):
        if not isinstance(value, list | tuple) or not value:
            return [FieldProblem((*where, "value"), f"{op} needs a non-empty list of values")]
        items = value
    else:
        items = [value]
    for item in items:
        if kind in ("number",) or (kind == "any" and op in ("greater_than", "less_than")):
            if not isinstance(item, int | float) or isinstance(item, bool):
                problems.append(FieldProblem((*where, "value"), f"{condition.field} compares with a number"))
        elif kind == "boolean":
            if not isinstance(item, bool):
                problems.append(FieldProblem((*where, "value"), f"{condition.field} is true or false"))
        elif kind == "any":
            if not isinstance(item, str | int | float | bool):
                problems.append(FieldProblem((*where, "value"), "must be a text, number or boolean"))
        elif not isinstance(item, str) or not item:
            problems.append(
                FieldProblem((*where, "value"), f"{condition.field} compares with a non-empty text")
            )
        elif choices is not None and item not in choices:
            problems.append(
                FieldProblem(
                    (*where, "value"), f"{item!r} is not a {condition.field}: use {', '.join(choices)}"
                )
            )
    if op == "matches" and not problems:
        try:
            re.compile(str(value))
        except re.error as error:
            problems.append(FieldProblem((*where, "value"), f"not a valid regular expression: {error}"))
    return problems


def validate_conditions(
    conditions: Sequence[Condition], where: tuple[str | int, ...], categories: frozenset[str] | None = None
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for index, condition in enumerate(conditions):
        at = (*where, "conditions", index)
        kind = field_type(condition.field)
        if kind is None:
            problems.append(
                FieldProblem((*at, "field"), f"unknown field {condition.field!r}", code="unknown_field")
            )
            continue
        if condition.op not in OPERATORS[kind]:
            allowed = ", ".join(sorted(OPERATORS[kind]))
            problems.append(
                FieldProblem(
                    (*at, "op"),
                    f"{condition.op!r} does not apply to {condition.field}; use {allowed}",
                    code="wrong_type",
                )
            )
            continue
        choices = FIELDS[condition.field][1] if condition.field in FIELDS else None
        value_problems = _check_value(condition, kind, choices, at)
        for problem in value_problems:
            problems.append(FieldProblem(problem.location, problem.message, code="wrong_type"))
        if (
            not value_problems
            and kind == "category"
            and categories is not None
            and condition.op not in _VALUELESS
        ):
            values = condition.value if isinstance(condition.value, list | tuple) else [condition.value]
            for value in values:
                if value not in categories:
                    problems.append(
                        FieldProblem(
                            (*at, "value"),
                            f"{value!r} is not a category of the taxonomy",
                            code="unknown_category",
                        )
                    )
    return problems


def _contradictory(rule: Rule) -> str | None:
    """Why an all-of rule can never match, if it cannot."""
    if rule.match != "all":
        return None
    equals: dict[str, Any] = {}
    for condition in rule.conditions:
        if condition.op == "equals":
            previous = equals.get(condition.field, condition.value)
            if _lower(previous) != _lower(condition.value):
                return f"{condition.field} cannot equal both {previous!r} and {condition.value!r}"
            equals[condition.field] = condition.value
    for condition in rule.conditions:
        if condition.field in equals:
            value = _lower(equals[condition.field])
            if condition.op == "not_equals" and _lower(condition.value) == value:
                return f"{condition.field} cannot both equal and not equal {condition.value!r}"
            if condition.op == "in" and value not in [_lower(item) for item in condition.value]:
                equal = equals[condition.field]
                return f"{condition.field} equals {equal!r}, which is not in {condition.value!r}"
            if condition.op == "is_not_set":
                return f"{condition.field} cannot be both set and not set"
    return None


def _shadows(earlier: Rule, later: Rule) -> bool:
    """True when every ticket that ``later`` matches is already taken by ``earlier``."""
    if not earlier.conditions:
        return True
    if earlier.match != "all" or later.match != "all":
        return False
    later_set = set(later.conditions) if all(_hashable(c) for c in later.conditions) else None
    if later_set is None or not all(_hashable(c) for c in earlier.conditions):
        return False
    return set(earlier.conditions) <= later_set


def _hashable(condition: Condition) -> bool:
    try:
        hash(condition)
    except TypeError:
        return False
    return True


def validate_rule_set(
    rules: Sequence[Rule],
    *,
    categories: frozenset[str] | None = None,
    group_ids: frozenset[int] | None = None,
) -> list[FieldProblem]:
    """Every problem of the rule set; empty when it may be saved."""
    problems: list[FieldProblem] = []
    for position, rule in enumerate(rules):
        where: tuple[str | int, ...] = ("rules", position)
        if not rule.name.strip():
            problems.append(FieldProblem((*where, "name"), "a rule needs a name"))
        if rule.match not in ("all", "any"):
            problems.append(FieldProblem((*where, "match"), "must be all or any"))
        problems.extend(validate_conditions(rule.conditions, where, categories))
        problems.extend(_validate_actions(rule.actions, where, group_ids))
        reason = _contradictory(rule)
        if reason:
            problems.append(
                FieldProblem(where, f"rule {rule.name!r} can never match: {reason}", code="unreachable")
            )
        for earlier_position, earlier in enumerate(rules[:position]):
            if _shadows(earlier, rule):
                problems.append(
                    FieldProblem(
                        where,
                        f"rule {rule.name!r} is unreachable: rule {earlier_position + 1} ({earlier.name!r}) "
                        "matches every ticket it would",
                        code="unreachable",
                    )
                )
                break
    return problems


def _validate_actions(
    actions: Mapping[str, Any], where: tuple[str | int, ...], group_ids: frozenset[int] | None
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    at = (*where, "actions")
    if not actions:
        problems.append(FieldProblem(at, "a rule needs at least one action (group_id, priority, add_tags)"))
    for key in sorted(set(actions) - ACTION_KEYS):
        problems.append(FieldProblem((*at, key), f"unknown action {key!r}", code="unknown_field"))
    group_id = actions.get("group_id")
    if group_id is not None:
        if not isinstance(group_id, int) or isinstance(group_id, bool):
            problems.append(FieldProblem((*at, "group_id"), "must be a group id", code="wrong_type"))
        elif group_ids is not None and group_id not in group_ids:
            problems.append(FieldProblem((*at, "group_id"), f"group {group_id} does not exist"))
    priority = actions.get("priority")
    if priority is not None and priority not in PRIORITIES:
        problems.append(
            FieldProblem((*at, "priority"), f"must be one of {', '.join(PRIORITIES)}", code="wrong_type")
        )
    for key in ("add_tags", "required_skills"):
        value = actions.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value)
        ):
            problems.append(FieldProblem((*at, key), "must be a list of non-empty texts", code="wrong_type"))
    return problems


def rule_from_mapping(data: Mapping[str, Any], rule_id: int | None = None) -> Rule:
    """Build a rule from its stored or submitted form (validation is separate)."""
    conditions = tuple(
        Condition(
            str(item.get("field", "")),
            str(item.get("op", "")),
            # lists become tuples so conditions compare and hash (for shadowed-rule checks)
            tuple(item["value"]) if isinstance(item.get("value"), list | tuple) else item.get("value"),
        )
        for item in data.get("conditions") or []
        if isinstance(item, Mapping)
    )
    return Rule(
        name=str(data.get("name", "")),
        conditions=conditions,
        actions=dict(data.get("actions") or {}),
        match=str(data.get("match", "all")),
        rule_id=rule_id,
    )
