"""The category taxonomy admins edit, and the cold-start keyword rules that vote for categories.

Invariants: a path is lowercase words joined by ``/`` (at most two levels) and a sub-category's
parent exists; a keyword rule names an active category and a pattern that compiles. A path never
changes once created (tickets, training examples and rules refer to it): renaming changes the
label people read. Retiring keeps the row and its history but stops new predictions, keyword
votes and corrections naming it; a parent cannot retire while a sub-category is active, nor a
category an active routing rule or keyword rule still names (retire or edit those first).
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import ConflictError, FieldProblem
from opsdesk.triage.errors import CategoryNotFoundError, InvalidKeywordRuleError, InvalidTaxonomyError
from opsdesk.triage.keyword_rules import KeywordRule, compile_pattern
from opsdesk.triage.models import KeywordRuleRow, TriageCategory

_PATH = re.compile(r"^[a-z][a-z0-9_]{0,40}(/[a-z][a-z0-9_]{0,40})?$")


def list_categories(session: Session, *, active_only: bool = False) -> list[TriageCategory]:
    query = select(TriageCategory).order_by(TriageCategory.position, TriageCategory.path)
    if active_only:
        query = query.where(TriageCategory.is_active.is_(True))
    return list(session.scalars(query))


def category_paths(session: Session) -> frozenset[str]:
    return frozenset(session.scalars(select(TriageCategory.path).where(TriageCategory.is_active.is_(True))))


def create_category(
    session: Session, actor: Actor, *, path: str, label: str | None = None, description: str = ""
) -> TriageCategory:
    require(actor, Permission.FIELD_MANAGE)
    path = path.strip().lower()
    if not _PATH.match(path):
        raise InvalidTaxonomyError(
            "the category path is not valid",
            fields=[FieldProblem(("path",), "lowercase words (a-z, 0-9, _), at most parent/child")],
        )
    if "/" in path:
        parent = path.split("/", 1)[0]
        if session.scalar(select(TriageCategory.id).where(TriageCategory.path == parent)) is None:
            raise InvalidTaxonomyError(
                "the parent category does not exist",
                fields=[FieldProblem(("path",), f"create {parent!r} first")],
            )
    if session.scalar(select(TriageCategory.id).where(TriageCategory.path == path)) is not None:
        raise ConflictError(f"category {path!r} already exists")
    position = len(list_categories(session))
    if position == 0:
        # the first category sets triage up: hand-offs start, so their queue's view appears
        from opsdesk.triage.seed import ensure_needs_triage_view

        ensure_needs_triage_view(session)
    category = TriageCategory(
        path=path,
        label=(label or path.rsplit("/", 1)[-1].replace("_", " ").capitalize()).strip(),
        description=description,
        is_active=True,
        position=position,
        created_at=clock.now(),
    )
    session.add(category)
    session.flush()
    audit.record(
        session, actor, entity_type="triage_category", entity_id=category.id, action="created", new=path
    )
    return category


def access_category(session: Session, category_id: int) -> TriageCategory:
    category = session.get(TriageCategory, category_id)
    if category is None:
        raise CategoryNotFoundError(f"category {category_id} not found")
    return category


def rename_category(session: Session, actor: Actor, category_id: int, *, label: str) -> TriageCategory:
    """Change the label people read; the path (the stable key) stays."""
    return update_category(session, actor, category_id, label=label)


def _checked_label(session: Session, category: TriageCategory, label: str) -> str:
    """The label with its spaces tidied, or the reason it cannot be the category's name."""
    cleaned = " ".join(label.split())
    if not cleaned or len(cleaned) > 120:
        raise InvalidTaxonomyError(
            "the category name is not valid", fields=[FieldProblem(("label",), "must be 1 to 120 characters")]
        )
    taken = session.scalar(
        select(TriageCategory.path).where(
            func.lower(TriageCategory.label) == cleaned.lower(),
            TriageCategory.id != category.id,
            TriageCategory.is_active.is_(True),
        )
    )
    if taken is not None and (taken.rsplit("/", 1)[0] if "/" in taken else None) == category.parent_path:
        raise InvalidTaxonomyError(
            "the category name is taken",
            fields=[FieldProblem(("label",), f"{taken!r} is already called {cleaned!r}")],
        )
    return cleaned


def _retire_blockers(session: Session, category: TriageCategory) -> list[FieldProblem]:
    # routing rules are read as stored rows (the rule module imports this one)
    from opsdesk.triage.models import RoutingRule

    problems: list[FieldProblem] = []
    children = list(
        session.scalars(
            select(TriageCategory.path).where(
                TriageCategory.path.like(category.path + "/%"), TriageCategory.is_active.is_(True)
            )
        )
    )
    if children:
        problems.append(
            FieldProblem(("is_active",), "retire its sub-categories first: " + ", ".join(sorted(children)))
        )
    keyword_count = len(
        list(
            session.scalars(
                select(KeywordRuleRow.id).where(
                    KeywordRuleRow.category == category.path, KeywordRuleRow.is_active.is_(True)
                )
            )
        )
    )
    if keyword_count:
        problems.append(
            FieldProblem(("is_active",), f"{keyword_count} keyword rule(s) vote for it; delete them first")
        )
    for rule in session.scalars(select(RoutingRule).order_by(RoutingRule.position)):
        if category.path in _categories_named(rule.conditions or []):
            problems.append(
                FieldProblem(("is_active",), f"routing rule {rule.name!r} names it; edit the rule first")
            )
    return problems


def _categories_named(conditions: list[dict[str, object]]) -> set[str]:
    named: set[str] = set()
    for condition in conditions:
        if condition.get("field") not in {"category", "predicted_category"}:
            continue
        value = condition.get("value")
        values = value if isinstance(value, list) else [value]
        named.update(str(item) for item in values)
    return named


def set_category_active(session: Session, actor: Actor, category_id: int, *, active: bool) -> TriageCategory:
    """Retire (``active=False``) or bring back a category; refused with the reasons when something
    still depends on it (see the module docstring), changing nothing."""
    return update_category(session, actor, category_id, active=active)


def _check_activation(session: Session, category: TriageCategory, active: bool) -> None:
    if not active and category.is_active:
        problems = _retire_blockers(session, category)
        if problems:
            raise InvalidTaxonomyError(f"{category.path!r} cannot be retired yet", fields=problems)
    if active and not category.is_active and category.parent_path is not None:
        parent_active = session.scalar(
            select(TriageCategory.is_active).where(TriageCategory.path == category.parent_path)
        )
        if not parent_active:
            raise InvalidTaxonomyError(
                f"{category.path!r} cannot come back while its parent is retired",
                fields=[FieldProblem(("is_active",), f"bring back {category.parent_path!r} first")],
            )


def update_category(
    session: Session, actor: Actor, category_id: int, *, label: str | None = None, active: bool | None = None
) -> TriageCategory:
    """Rename and/or retire or bring back a category in one step: the permission, the new label
    and what depends on the category are each checked once, all before anything changes, so a
    refused edit changes nothing."""
    require(actor, Permission.FIELD_MANAGE)
    category = access_category(session, category_id)
    cleaned = _checked_label(session, category, label) if label is not None else None
    if active is not None:
        _check_activation(session, category, active)
    changes: dict[str, tuple[object, object]] = {}
    if cleaned is not None and cleaned != category.label:
        changes["label"] = (category.label, cleaned)
        category.label = cleaned
    if active is not None and category.is_active != active:
        changes["is_active"] = (category.is_active, active)
        category.is_active = active
    audit.record_changes(
        session, actor, entity_type="triage_category", entity_id=category.id, changes=changes
    )
    session.flush()
    return category


def list_keyword_rules(session: Session, *, active_only: bool = False) -> list[KeywordRuleRow]:
    query = select(KeywordRuleRow).order_by(KeywordRuleRow.category, KeywordRuleRow.id)
    if active_only:
        query = query.where(KeywordRuleRow.is_active.is_(True))
    return list(session.scalars(query))


def create_keyword_rule(
    session: Session,
    actor: Actor,
    *,
    category: str,
    pattern: str,
    is_regex: bool = False,
    weight: float = 1.0,
) -> KeywordRuleRow:
    require(actor, Permission.RULE_MANAGE)
    problems: list[FieldProblem] = []
    if category not in category_paths(session):
        problems.append(FieldProblem(("category",), f"{category!r} is not an active category"))
    if not pattern.strip() or len(pattern) > 500:
        problems.append(FieldProblem(("pattern",), "must be 1 to 500 characters"))
    else:
        try:
            compile_pattern(KeywordRule(category, pattern, is_regex, weight))
        except re.error as error:
            problems.append(FieldProblem(("pattern",), f"not a valid regular expression: {error}"))
    if not 0 < weight <= 10:
        problems.append(FieldProblem(("weight",), "must be above 0 and at most 10"))
    if problems:
        raise InvalidKeywordRuleError("the keyword rule is not valid", fields=problems)
    row = KeywordRuleRow(
        category=category,
        pattern=pattern.strip(),
        is_regex=is_regex,
        weight=weight,
        is_active=True,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="triage_keyword_rule",
        entity_id=row.id,
        action="created",
        new={"category": category, "pattern": row.pattern, "is_regex": is_regex, "weight": weight},
    )
    return row


def delete_keyword_rule(session: Session, actor: Actor, rule_id: int) -> None:
    require(actor, Permission.RULE_MANAGE)
    row = session.get(KeywordRuleRow, rule_id)
    if row is None:
        raise CategoryNotFoundError(f"keyword rule {rule_id} not found")
    audit.record(
        session,
        actor,
        entity_type="triage_keyword_rule",
        entity_id=row.id,
        action="deleted",
        old={"category": row.category, "pattern": row.pattern},
    )
    session.delete(row)
    session.flush()


def keyword_rules(session: Session) -> list[KeywordRule]:
    return [
        KeywordRule(row.category, row.pattern, row.is_regex, row.weight)
        for row in list_keyword_rules(session, active_only=True)
    ]
